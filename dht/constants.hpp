#pragma once
// Kademlia's constants (seed 003 names them ℓ, k, α, τ); every one is a default that
// dht::config may override. docs/PROTOCOL.md, "DHT", gives the reasons for each value.
#include <chrono>
#include <cstddef>

namespace kadnet::dht {

inline constexpr std::size_t default_k = 20;      // bucket size and replication factor
inline constexpr std::size_t default_alpha = 3;   // lookups in flight per lookup
inline constexpr int tau = 256;                   // id bits
inline constexpr std::size_t default_ell = 32;    // ℓ: self-initiated connections a node keeps
inline constexpr std::size_t default_max_value_size = 64 * 1024;
inline constexpr std::chrono::hours default_value_ttl{24};
inline constexpr std::chrono::hours default_republish_interval{1};
inline constexpr std::chrono::hours default_refresh_interval{1};

}  // namespace kadnet::dht
