#pragma once
// A counter kept under one DHT key by compare-and-swap, as the CAS tests increment it: the value
// is the count as a u64 (big-endian), and `increment` is update()'s function for it.
#include <cstdint>
#include <optional>
#include <stdexcept>

#include "kadnet/core/bytes.hpp"
#include "kadnet/dht/cas_proposer.hpp"

namespace kadnet::testing {

inline byte_vector counter_bytes(std::uint64_t n) {
  byte_vector out;
  byte_writer(out).u64(n);
  return out;
}

inline std::uint64_t counter_of(const byte_vector& b) {
  std::uint64_t n = 0;
  byte_reader r(b);
  if (!r.u64(n) || !r.empty()) throw std::runtime_error("not a counter");
  return n;
}

// update()'s function: 1 for a key that holds nothing, else one more.
inline std::optional<byte_vector> increment(const std::optional<dht::versioned_value>& current) {
  return counter_bytes(current ? counter_of(current->value) + 1 : 1);
}

// update()'s function that declines: the update is a quorum read.
inline std::optional<byte_vector> read_only(const std::optional<dht::versioned_value>&) { return std::nullopt; }

}  // namespace kadnet::testing
