#include "kadnet/dht/contact.hpp"

#include <array>
#include <cstdio>

#include <arpa/inet.h>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/node_engine.hpp"

namespace kadnet::dht {

std::optional<std::string> network_prefix(const contact& c) {
  if (c.addresses.empty()) return std::nullopt;
  const std::string& uri = c.addresses.front();
  auto scheme_end = uri.find("://");
  if (scheme_end == std::string::npos) return std::nullopt;
  std::string rest = uri.substr(scheme_end + 3);
  std::string host;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) return std::nullopt;
    host = rest.substr(1, close - 1);
  } else {
    host = rest.substr(0, rest.rfind(':'));
  }
  std::array<unsigned char, 16> raw{};
  char text[64];
  if (inet_pton(AF_INET, host.c_str(), raw.data()) == 1) {
    std::snprintf(text, sizeof text, "v4:%u.%u.%u", raw[0], raw[1], raw[2]);
    return std::string(text);
  }
  if (inet_pton(AF_INET6, host.c_str(), raw.data()) == 1) {
    std::snprintf(text, sizeof text, "v6:%02x%02x:%02x%02x:%02x%02x:%02x%02x", raw[0], raw[1], raw[2],
                  raw[3], raw[4], raw[5], raw[6], raw[7]);
    return std::string(text);
  }
  return std::nullopt;
}

std::chrono::microseconds smooth_rtt(std::chrono::microseconds old, std::chrono::microseconds sample) {
  if (old.count() == 0) return sample;
  return old + (sample - old) / 8;
}

bool unreachable(const core::reply& r) {
  using core::errc;
  return r.ec == errc::timeout || r.ec == errc::not_connected || r.ec == errc::connection_closed ||
         r.ec == errc::peer_cut_off || r.ec == errc::shutting_down;
}

}  // namespace kadnet::dht
