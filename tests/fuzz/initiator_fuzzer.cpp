// libFuzzer target for the dialing side of a session (core/session.cpp, initiator_handshake of
// core/crypto/handshake.cpp).
//
// The input is everything "the responder" sends back, cut into handle_bytes() calls whose sizes
// come from the bytes themselves. The session dials a fixed NodeId whose secret key the fuzzer
// does not have, and the responder's signature must cover our fresh hello: so whatever the
// input, the session may never report `established` (nor hold a peer or accept a message).
// Besides: nothing after `failed`, and what the initiator writes stays small (its hello, at
// most two re-sent hellos after cookie challenges, and a refuse).
// Seed corpus: the packet_hello vector.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <variant>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/core/session.hpp"

using namespace kadnet;
using namespace kadnet::core;

namespace {

constexpr std::size_t max_transmit = 4096;

identity seeded(std::uint8_t fill) {
  std::array<std::uint8_t, 32> seed;
  seed.fill(fill);
  return identity::from_seed(seed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const identity self = seeded(0x05);
  static const node_id expected = seeded(0x06).id();

  session s = session::dial(self, {.dynamic_ip = (size & 1) != 0, .offer_aes_gcm = (size & 2) != 0},
                            expected, session_limits{});
  std::size_t transmitted = s.take_transmit().size();
  if (transmitted != 4 + 161) std::abort();  // the first hello, queued at once

  byte_span stream(data, size);
  bool failed = false;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    std::size_t n = 1 + (stream[pos] ^ static_cast<std::uint8_t>(pos)) % 200;
    if (n > stream.size() - pos) n = stream.size() - pos;
    s.handle_bytes(stream.subspan(pos, n), 1'000'000 + pos);
    pos += n;

    transmitted += s.take_transmit().size();
    while (auto e = s.poll_event()) {
      if (failed) std::abort();
      if (!std::holds_alternative<session::failed>(*e)) std::abort();  // established or message
      failed = true;
    }
    if (s.is_established() || s.peer()) std::abort();
    if (failed != s.is_failed()) std::abort();
    if (transmitted > max_transmit) std::abort();
    if (s.send(stream.first(0), std::nullopt) != make_error_code(errc::not_connected))
      std::abort();
  }
  return 0;
}
