#pragma once
// Small helpers for tests of sealed packets (core/crypto/session_cipher.hpp): a recognisable key,
// a recognisable plaintext, and a packet parsed back into its view.
#include <numeric>

#include <gtest/gtest.h>

#include "kadnet/core/crypto/session_cipher.hpp"
#include "kadnet/core/wire/packet.hpp"

namespace kadnet::testing {

// 32 bytes counting up from `fill`.
inline core::crypto::key test_key(std::uint8_t fill) {
  core::crypto::key k;
  std::iota(k.begin(), k.end(), fill);
  return k;
}

// `n` bytes counting up from `start`.
inline byte_vector counting_bytes(std::size_t n, std::uint8_t start = 0) {
  byte_vector v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

// The view of one whole packet; the test fails if it does not parse.
inline core::wire::packet_view parse(const byte_vector& packet) {
  core::wire::packet_view p;
  EXPECT_FALSE(core::wire::parse_packet(packet, p));
  return p;
}

}  // namespace kadnet::testing
