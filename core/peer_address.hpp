#pragma once
// Transport addresses as the engine sees them, and the check that keeps a peer from announcing
// an address that is not its own (seed 001: an announcement must match the sender's real source
// address). Pure formatting and comparison: no sockets, no name resolution.
#include <optional>
#include <string>

#include "core/bytes.hpp"

namespace kadnet::core {

// "203.0.113.7:4000" or "[2001:db8::1]:4000" from 16 bytes (IPv6, or IPv4-mapped) ‖ 2-byte
// port; "" when `address` is not 18 bytes.
std::string address_text(byte_span address);

// The host part of address_text()'s output, without brackets ("" when there is none).
std::string host_of_address_text(const std::string& text);

// An announced URI ("tcp://0.0.0.0:4000") checked against the peer's source IP: a wildcard
// host (0.0.0.0, ::) becomes `source_ip`; a host equal to `source_ip` passes as it is; any other
// host, or a URI that does not parse, yields nullopt.
std::optional<std::string> checked_announcement(const std::string& uri, const std::string& source_ip);

}  // namespace kadnet::core
