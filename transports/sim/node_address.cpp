#include "kadnet/transports/sim/node_address.hpp"

#include <array>
#include <stdexcept>

#include <arpa/inet.h>

#include "kadnet/transports/uri.hpp"

namespace kadnet::sim {
namespace {

std::array<std::uint8_t, 4> ipv4_of(endpoint_id e) {
  if (e > max_node_endpoint)
    throw std::out_of_range("sim: endpoint " + std::to_string(e) + " has no address in 10.0.0.0/8");
  return {10, static_cast<std::uint8_t>(e), static_cast<std::uint8_t>(e >> 8), static_cast<std::uint8_t>(e >> 16)};
}

endpoint_id endpoint_of_ipv4(std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return endpoint_id{b} | (endpoint_id{c} << 8) | (endpoint_id{d} << 16);
}

}  // namespace

byte_vector node_transport_address(endpoint_id e) {
  auto ip = ipv4_of(e);
  byte_vector a(18, 0);
  a[10] = a[11] = 0xff;
  for (std::size_t i = 0; i < 4; ++i) a[12 + i] = ip[i];
  a[16] = static_cast<std::uint8_t>(node_port >> 8);
  a[17] = static_cast<std::uint8_t>(node_port);
  return a;
}

std::string node_uri(endpoint_id e) {
  auto ip = ipv4_of(e);
  return "udp://" + std::to_string(ip[0]) + "." + std::to_string(ip[1]) + "." + std::to_string(ip[2]) + "." +
         std::to_string(ip[3]) + ":" + std::to_string(node_port);
}

std::optional<endpoint_id> endpoint_of_transport_address(byte_span a) {
  static constexpr std::uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (a.size() != 18) return std::nullopt;
  for (std::size_t i = 0; i < 12; ++i)
    if (a[i] != mapped_prefix[i]) return std::nullopt;
  if (a[12] != 10 || ((a[16] << 8) | a[17]) != node_port) return std::nullopt;
  return endpoint_of_ipv4(a[13], a[14], a[15]);
}

std::optional<endpoint_id> endpoint_of_uri(std::string_view text) {
  auto u = transports::parse_uri(text);
  if (!u || u->scheme != "udp" || u->port != node_port) return std::nullopt;
  std::array<std::uint8_t, 4> ip{};
  if (inet_pton(AF_INET, u->host.c_str(), ip.data()) != 1 || ip[0] != 10) return std::nullopt;
  return endpoint_of_ipv4(ip[1], ip[2], ip[3]);
}

}  // namespace kadnet::sim
