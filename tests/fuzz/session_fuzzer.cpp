// libFuzzer target for the responder side of a session (core/session.cpp, the responder of
// core/crypto/handshake.cpp).
//
// Input: one control byte, then the byte stream an initiator would send. Control bit 0 sets
// under_load; the other bits pick how the stream is cut into handle_bytes() calls (the chunk
// sizes come from the stream bytes themselves) and how fast the clock runs. After each chunk the
// session is drained the way a driver drains it.
//
// Checks: under load nobody gets past the cookie (no public-key work, no session: the cookie is
// a keyed BLAKE2b the fuzzer cannot compute); a session is established at most once, and only
// as the first event; after `failed` nothing more happens; what the responder writes stays
// small (a cookie, a refuse or its own hello per hello, at most three hellos), and a session
// never grows anything it holds for the peer beyond a bound. Randomness (cookie secrets,
// ephemeral keys) is a fixed stream so a crash replays.
// Seed corpus: the packet_hello vector, alone and behind control bytes 0x00 and 0x01, and the
// initiator hello of the session_aes_gcm vector (flags bit 1) behind 0x00.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <variant>

#include "kadnet/core/crypto/cookie_jar.hpp"
#include "kadnet/core/crypto/handshake.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/core/session.hpp"

using namespace kadnet;
using namespace kadnet::core;

namespace {

constexpr std::size_t max_transmit = 4096;

const identity& self() {
  static const identity id = [] {
    std::array<std::uint8_t, 32> seed;
    seed.fill(0x07);
    return identity::from_seed(seed);
  }();
  return id;
}

// A deterministic random source (splitmix64 from a fixed seed).
crypto::random_source fixed_random(std::uint64_t seed) {
  return [state = seed](mutable_byte_span out) mutable {
    for (auto& b : out) {
      state += 0x9e3779b97f4a7c15ull;
      std::uint64_t z = state;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      b = static_cast<std::uint8_t>(z ^ (z >> 31));
    }
  };
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t control = data[0];
  const bool under_load = control & 1;
  const std::size_t max_chunk = 1 + ((control >> 1) & 7) * 37;  // 1 .. 260 bytes
  const std::uint64_t tick_ms = (control >> 4) * 7'500;          // 0 .. 112.5 s per chunk
  byte_span stream(data + 1, size - 1);

  // Offers AES-256-GCM: a hello with flags bit 1 (the session_aes_gcm seed) gets a session
  // sealed with it, any other a ChaCha20-Poly1305 one.
  crypto::responder responder(self(), {.offer_aes_gcm = true}, fixed_random(1));
  crypto::cookie_jar jar(fixed_random(2));
  responder_context context{&responder, &jar, under_load};
  byte_vector address(18, 0);
  address[10] = address[11] = 0xff;  // ::ffff:192.0.2.1 port 4242
  address[12] = 192, address[14] = 2, address[15] = 1, address[16] = 0x10, address[17] = 0x92;
  session s = session::accept(context, address, session_limits{});

  std::uint64_t now_ms = 1'000'000;
  std::size_t transmitted = 0;
  int events = 0, established = 0;
  bool failed = false;
  std::size_t pos = 0, bytes_in = 0;
  while (pos < stream.size()) {
    std::size_t n = 1 + stream[pos] % max_chunk;
    if (n > stream.size() - pos) n = stream.size() - pos;
    if (!s.is_failed()) bytes_in += n;  // a failed session ignores its input
    s.handle_bytes(stream.subspan(pos, n), now_ms);
    pos += n;
    now_ms += tick_ms;

    transmitted += s.take_transmit().size();
    if (s.has_transmit()) std::abort();
    while (auto e = s.poll_event()) {
      if (failed) std::abort();  // nothing after `failed`
      ++events;
      if (std::holds_alternative<session::established>(*e)) {
        if (++established > 1 || events != 1) std::abort();
        if (!s.peer()) std::abort();
      } else if (std::holds_alternative<session::failed>(*e)) {
        failed = true;
      }
      // A message needs a sealed packet under the initiator's key: nobody can forge one, but a
      // message is still no breach, so it is only counted.
    }
    if (failed != s.is_failed()) std::abort();
    if ((established == 1) != (s.is_established() || (failed && s.peer().has_value())))
      std::abort();
    if (transmitted > max_transmit) std::abort();
    if (under_load && (established != 0 || responder.expensive_operations() != 0)) std::abort();
    if (s.counters().bytes_in != bytes_in) std::abort();
  }
  // A responder that did not finish a handshake sends nothing but handshake replies.
  if (established == 0 && s.peer()) std::abort();
  return 0;
}
