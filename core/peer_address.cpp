#include "kadnet/core/peer_address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>

namespace kadnet::core {

fixed_address::fixed_address(byte_span bytes) : size_(static_cast<std::uint8_t>(bytes.size())) {
  if (bytes.size() > capacity)
    throw std::invalid_argument("a transport address has at most 18 bytes, not " + std::to_string(bytes.size()));
  std::copy(bytes.begin(), bytes.end(), bytes_.begin());
}

std::string address_text(byte_span address) {
  if (address.size() != 18) return {};
  static constexpr std::uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char text[INET6_ADDRSTRLEN] = {};
  std::string host;
  if (std::memcmp(address.data(), v4_mapped, 12) == 0) {
    inet_ntop(AF_INET, address.data() + 12, text, sizeof text);
    host = text;
  } else {
    inet_ntop(AF_INET6, address.data(), text, sizeof text);
    host = "[" + std::string(text) + "]";
  }
  unsigned port = static_cast<unsigned>(address[16]) << 8 | address[17];
  return host + ":" + std::to_string(port);
}

std::string host_of_address_text(const std::string& text) {
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    return close == std::string::npos ? std::string() : text.substr(1, close - 1);
  }
  auto colon = text.rfind(':');
  return colon == std::string::npos ? std::string() : text.substr(0, colon);
}

// A port: 1..65535 in decimal digits and nothing else.
static bool is_port(const std::string& port) {
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return false;
  const unsigned long number = std::stoul(port);
  return number >= 1 && number <= 65535;
}

bool is_address_text(const std::string& text) {
  const bool v6 = !text.empty() && text.front() == '[';
  const auto colon = v6 ? text.find("]:") : text.rfind(':');
  if (colon == std::string::npos || !is_port(text.substr(colon + (v6 ? 2 : 1)))) return false;
  const std::string host = v6 ? text.substr(1, colon - 1) : text.substr(0, colon);
  std::array<unsigned char, 16> parsed{};
  return inet_pton(v6 ? AF_INET6 : AF_INET, host.c_str(), parsed.data()) == 1;
}

// Compares IP literals by value, so "::ffff:127.0.0.1" and "127.0.0.1" are the same host.
static bool same_ip(const std::string& a, const std::string& b) {
  std::array<unsigned char, 16> x{}, y{};
  auto parse = [](const std::string& s, std::array<unsigned char, 16>& out) {
    if (inet_pton(AF_INET6, s.c_str(), out.data()) == 1) return true;
    std::array<unsigned char, 4> v4{};
    if (inet_pton(AF_INET, s.c_str(), v4.data()) != 1) return false;
    out = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, v4[0], v4[1], v4[2], v4[3]};
    return true;
  };
  return parse(a, x) && parse(b, y) && x == y;
}

std::optional<std::string> checked_announcement(const std::string& uri, const std::string& source_ip) {
  auto scheme_end = uri.find("://");
  if (scheme_end == std::string::npos || source_ip.empty()) return std::nullopt;
  std::string scheme = uri.substr(0, scheme_end);
  std::string rest = uri.substr(scheme_end + 3);
  std::string host, port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') return std::nullopt;
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    auto colon = rest.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  // The URI is handed to other nodes as a contact, so "80/x" or "99999" must not pass for a port.
  if (!is_port(port)) return std::nullopt;
  bool wildcard = host == "0.0.0.0" || host == "::";
  if (!wildcard && !same_ip(host, source_ip)) return std::nullopt;
  if (!wildcard) return uri;
  bool v6 = source_ip.find(':') != std::string::npos;
  return scheme + "://" + (v6 ? "[" + source_ip + "]" : source_ip) + ":" + port;
}

}  // namespace kadnet::core
