#pragma once
// Deterministic identities for tests: identity n is derived from a seed of bytes equal to n.
#include <array>

#include "kadnet/core/identity.hpp"

namespace kadnet::testing {

inline core::identity fixed_identity(std::uint8_t n) {
  std::array<std::uint8_t, 32> seed;
  seed.fill(n);
  return core::identity::from_seed(seed);
}

}  // namespace kadnet::testing
