#pragma once
// Transport URIs: "tcp://host:port", "udp://host:port", "ws://host:port" (WebSocket). Hosts are IPv4 literals,
// bracketed IPv6 literals ("tcp://[::1]:4000") or names; port 0 asks the OS for a free port.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kadnet::transports {

struct uri {
  std::string scheme;  // "tcp", "udp" or "ws"
  std::string host;    // without IPv6 brackets
  std::uint16_t port = 0;

  std::string to_string() const;
  // "host:port", the host bracketed when IPv6: what follows "scheme://" (an HTTP Host header).
  std::string authority() const;
  friend bool operator==(const uri&, const uri&) = default;
};

// Parses a URI; on failure returns nullopt and sets `problem` to a sentence naming what is wrong.
std::optional<uri> parse_uri(std::string_view text, std::string* problem = nullptr);

}  // namespace kadnet::transports
