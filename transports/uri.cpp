#include "kadnet/transports/uri.hpp"

#include <charconv>

namespace kadnet::transports {

std::string uri::authority() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string uri::to_string() const { return scheme + "://" + authority(); }

std::optional<uri> parse_uri(std::string_view text, std::string* problem) {
  auto fail = [&](std::string why) -> std::optional<uri> {
    if (problem) *problem = "bad URI '" + std::string(text) + "': " + why;
    return std::nullopt;
  };
  auto sep = text.find("://");
  if (sep == std::string_view::npos) return fail("expected scheme://host:port");
  uri out;
  out.scheme = std::string(text.substr(0, sep));
  if (out.scheme != "tcp" && out.scheme != "udp" && out.scheme != "ws")
    return fail("unsupported scheme '" + out.scheme + "' (supported: tcp, udp, ws)");
  std::string_view rest = text.substr(sep + 3);
  if (auto slash = rest.find('/'); slash != std::string_view::npos)
    return fail("a path ('" + std::string(rest.substr(slash)) + "') is not supported: the form is scheme://host:port");
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return fail("unclosed '[' in IPv6 host");
    out.host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return fail("missing :port");
    port_text = rest.substr(1);
  } else {
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return fail("missing :port");
    out.host = std::string(rest.substr(0, colon));
    port_text = rest.substr(colon + 1);
  }
  if (out.host.empty()) return fail("empty host");
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535 || port_text.empty())
    return fail("port must be a number from 0 to 65535");
  out.port = static_cast<std::uint16_t>(port);
  return out;
}

}  // namespace kadnet::transports
