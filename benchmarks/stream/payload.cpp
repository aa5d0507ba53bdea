#include "benchmarks/stream/payload.hpp"

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace kadnet::bench {
namespace {
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

void fill_payload(std::uint64_t seed, std::uint64_t offset, std::span<std::uint8_t> out) {
  std::size_t i = 0;
  std::uint64_t word = offset / 8;
  // A leading partial word, then whole words, then a trailing partial word (little-endian bytes).
  auto bytes_of = [&](std::uint64_t w, std::size_t from, std::size_t count) {
    std::uint64_t v = splitmix64(seed + w);
    for (std::size_t k = 0; k < count; ++k) out[i++] = static_cast<std::uint8_t>(v >> (8 * (from + k)));
  };
  if (std::size_t skip = offset % 8; skip != 0 && !out.empty()) {
    bytes_of(word++, skip, std::min<std::size_t>(8 - skip, out.size()));
  }
  for (; i + 8 <= out.size(); ++word, i += 8) {
    std::uint64_t v = splitmix64(seed + word);
    std::memcpy(out.data() + i, &v, 8);  // x86-64: little-endian, as bytes_of
  }
  if (i < out.size()) bytes_of(word, 0, out.size() - i);
}

payload_hash::payload_hash() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  crypto_generichash_init(&state_, nullptr, 0, 32);
}

void payload_hash::update(std::span<const std::uint8_t> bytes) {
  crypto_generichash_update(&state_, bytes.data(), bytes.size());
}

std::array<std::uint8_t, 32> payload_hash::final() {
  std::array<std::uint8_t, 32> out{};
  crypto_generichash_final(&state_, out.data(), out.size());
  return out;
}

expected_payload hash_payload(std::uint64_t seed, std::uint64_t bytes) {
  std::vector<std::uint8_t> chunk(1 << 20);
  payload_hash h;
  std::chrono::steady_clock::duration hashing{};
  for (std::uint64_t at = 0; at < bytes; at += chunk.size()) {
    std::span<std::uint8_t> piece(chunk.data(), std::min<std::uint64_t>(chunk.size(), bytes - at));
    fill_payload(seed, at, piece);
    auto t0 = std::chrono::steady_clock::now();
    h.update(piece);
    hashing += std::chrono::steady_clock::now() - t0;
  }
  expected_payload e{h.final(), 0};
  double s = std::chrono::duration<double>(hashing).count();
  e.blake2b_mbps = s > 0 ? static_cast<double>(bytes) / s / 1e6 : 0;
  return e;
}

}  // namespace kadnet::bench
