#pragma once
// Stateless handshake cookies (docs/PROTOCOL.md 3.3).
//
// A responder under load answers an uncookied hello with  cookie = BLAKE2b-256 keyed with
// secret[slot] (address ‖ slot as u64),  slot = floor(now / 60 s), and keeps nothing per peer.
// The jar holds two secrets only, the current slot's and the previous slot's; each time `now`
// enters a new slot the previous secret is dropped (wiped) and a fresh random one is drawn, so a
// cookie lives between 60 and 120 seconds. A jump of two slots or more drops both.
//
// `now_ms` is the caller's monotonic clock in milliseconds; the jar never reads a clock. Time
// running backwards does not rewind the jar: make() keeps issuing cookies for the newest slot seen.
// `address` is the 16-byte IPv6 (or IPv4-mapped) source address ‖ 2-byte port, though any bytes
// work. Not thread-safe; one jar per node, shared by its listeners on the node's strand.
#include <array>
#include <cstdint>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/crypto/random_source.hpp"

namespace kadnet::core::crypto {

class cookie_jar {
 public:
  using cookie = std::array<std::uint8_t, 32>;
  static constexpr std::uint64_t slot_ms = 60'000;

  explicit cookie_jar(random_source random = {});
  cookie_jar(const cookie_jar&) = delete;
  cookie_jar& operator=(const cookie_jar&) = delete;
  ~cookie_jar();

  // The cookie for `address` in the slot of `now_ms` (rotating secrets first if needed).
  cookie make(byte_span address, std::uint64_t now_ms);
  // Whether `cookie` was issued for `address` in the current or the previous slot. Compares in
  // constant time. An all-zero cookie (the "none yet" value of a first hello) never passes.
  bool check(const cookie& c, byte_span address, std::uint64_t now_ms);

  // The slot the jar is in: floor(now / 60 s) of the latest call.
  std::uint64_t current_slot() const { return slot_; }

 private:
  void advance(std::uint64_t now_ms);
  static cookie compute(const cookie& secret, byte_span address, std::uint64_t slot);

  random_source random_;
  cookie current_{};
  cookie previous_{};
  std::uint64_t slot_ = 0;
  bool started_ = false;
  bool have_previous_ = false;
};

}  // namespace kadnet::core::crypto
