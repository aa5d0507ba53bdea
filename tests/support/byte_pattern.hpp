#pragma once
// Deterministic pseudo-random bytes for transfer tests: a different sequence per seed, cheap to
// regenerate on the receiving side for comparison.
#include <cstdint>

#include "kadnet/core/bytes.hpp"

namespace kadnet::testing {

inline byte_vector byte_pattern(std::size_t size, std::uint32_t seed) {
  byte_vector b(size);
  std::uint32_t x = seed * 2654435761u + 1;  // xorshift32 from a seed-dependent start
  for (auto& v : b) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    v = static_cast<std::uint8_t>(x);
  }
  return b;
}

}  // namespace kadnet::testing
