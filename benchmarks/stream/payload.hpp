#pragma once
// The benchmark's payload: deterministic pseudo-random bytes, made piece by piece at any offset
// (so no transfer holds the whole payload), and BLAKE2b (libsodium crypto_generichash) over
// what a receiver got.
#include <sodium.h>

#include <array>
#include <cstdint>
#include <span>

namespace kadnet::bench {

// Byte i of the payload is byte (i % 8) of splitmix64(seed + i / 8): any range can be made alone.
void fill_payload(std::uint64_t seed, std::uint64_t offset, std::span<std::uint8_t> out);

class payload_hash {
 public:
  payload_hash();
  void update(std::span<const std::uint8_t> bytes);
  std::array<std::uint8_t, 32> final();

 private:
  crypto_generichash_state state_;
};

// The hash of the first `bytes` bytes of the payload, and how fast BLAKE2b ran meanwhile (MB/s,
// the hashing alone, for the report: a verifying receiver spends that much CPU).
struct expected_payload {
  std::array<std::uint8_t, 32> hash;
  double blake2b_mbps = 0;
};
expected_payload hash_payload(std::uint64_t seed, std::uint64_t bytes);

}  // namespace kadnet::bench
