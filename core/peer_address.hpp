#pragma once
// Transport addresses as the engine sees them, and the check that keeps a peer from announcing
// an address that is not its own (seed 001: an announcement must match the sender's real source
// address). Pure formatting and comparison: no sockets, no name resolution.
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "kadnet/core/bytes.hpp"

namespace kadnet::core {

// A transport address (16-byte IPv6 or IPv4-mapped ‖ 2-byte port, or none) held inline: the
// engine keeps one per session and files datagram sessions under it, where a heap copy cost
// more than the bytes.
class fixed_address {
 public:
  static constexpr std::size_t capacity = 18;
  fixed_address() = default;
  // Throws std::invalid_argument when `bytes` is longer than 18 bytes.
  explicit fixed_address(byte_span bytes);
  byte_span bytes() const { return byte_span(bytes_.data(), size_); }
  bool empty() const { return size_ == 0; }
  friend bool operator==(const fixed_address&, const fixed_address&) = default;

  // noexcept, so that unordered containers need not store each key's hash.
  struct hash {
    std::size_t operator()(const fixed_address& a) const noexcept {
      return std::hash<std::string_view>()(std::string_view(reinterpret_cast<const char*>(a.bytes_.data()), a.size_));
    }
  };

 private:
  std::array<std::uint8_t, capacity> bytes_{};
  std::uint8_t size_ = 0;
};

// "203.0.113.7:4000" or "[2001:db8::1]:4000" from 16 bytes (IPv6, or IPv4-mapped) ‖ 2-byte
// port; "" when `address` is not 18 bytes.
std::string address_text(byte_span address);

// The host part of address_text()'s output, without brackets ("" when there is none).
std::string host_of_address_text(const std::string& text);

// Whether `text` has address_text()'s form: an IPv4 literal, or an IPv6 literal in brackets,
// then ':' and a port from 1 to 65535 (what a peer's ACK of our ANNOUNCE must say).
bool is_address_text(const std::string& text);

// An announced URI ("tcp://0.0.0.0:4000") checked against the peer's source IP: a wildcard
// host (0.0.0.0, ::) becomes `source_ip`; a host equal to `source_ip` passes as it is; any other
// host, or a URI that does not parse, yields nullopt.
std::optional<std::string> checked_announcement(const std::string& uri, const std::string& source_ip);

}  // namespace kadnet::core
