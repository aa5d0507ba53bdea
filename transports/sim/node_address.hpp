#pragma once
// Where a full node on the simulated network lives, in the forms its protocol engine uses: an
// 18-byte transport address (IPv4-mapped IPv6 ‖ port) and the URI it ANNOUNCEs. The engine checks
// an ANNOUNCE against the packets' source address and hands the URI out in DHT contacts, so both
// must be IP-shaped; they are bytes only and never reach a real socket.
//
// Endpoint e lives at 10.(e & 0xff).((e >> 8) & 0xff).(e >> 16), port 4000, announced as
// "udp://10.a.b.c:4000". The low bits come first so that endpoints below 65,536 each have a /24 of
// their own: the routing table's per-/24 limit treats them as the distinct hosts they model.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kadnet/core/bytes.hpp"
#include "kadnet/transports/sim/network.hpp"

namespace kadnet::sim {

inline constexpr endpoint_id max_node_endpoint = (1u << 24) - 1;  // 10.0.0.0/8 holds 2^24 hosts
inline constexpr std::uint16_t node_port = 4000;

// Both throw std::out_of_range for an endpoint beyond max_node_endpoint (local misuse).
byte_vector node_transport_address(endpoint_id e);
std::string node_uri(endpoint_id e);

// The endpoint behind a transport address or a URI of the forms above; nullopt for anything else.
std::optional<endpoint_id> endpoint_of_transport_address(byte_span address);
std::optional<endpoint_id> endpoint_of_uri(std::string_view uri);

}  // namespace kadnet::sim
