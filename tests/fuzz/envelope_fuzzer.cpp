// libFuzzer target for the message envelope (core/envelope.cpp, PROTOCOL.md 4.2).
//
// Every codec is accepted and the cap is 1 MiB. A decoded envelope is at most the cap (and,
// compressed, exactly its announced original size; plain, exactly its body); the output buffer
// never grows past the cap plus one 64 KiB chunk (the bomb guarantee of compression/codec.hpp);
// and what decoded survives our own encoding under the same method. A small cap is tried too so
// that too_large is reached with small inputs, and with no codec accepted only plain passes.
// Seed corpus: a plain envelope and a zstd one.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>

#include "kadnet/core/envelope.hpp"

using namespace kadnet;
using namespace kadnet::core;

namespace {

constexpr std::size_t cap = 1024 * 1024;
constexpr std::size_t chunk = 64 * 1024;

void check(byte_span in, const codec_set& accepted, std::size_t limit, bool round_trip) {
  byte_vector message;
  auto ec = decode_envelope(in, accepted, limit, message);
  if (message.capacity() > limit + chunk) std::abort();
  if (ec) return;
  if (message.size() > limit) std::abort();
  if (in.empty()) std::abort();
  std::optional<compression::codec_id> method;
  if (in[0] == envelope_plain) {
    if (message.size() != in.size() - 1 || !std::equal(message.begin(), message.end(), in.begin() + 1))
      std::abort();
  } else {
    if (in[0] >= compression::codec_count || !accepted.test(in[0]) || in.size() < 5) std::abort();
    const std::uint32_t original = (std::uint32_t{in[1]} << 24) | (std::uint32_t{in[2]} << 16) |
                                   (std::uint32_t{in[3]} << 8) | in[4];
    if (message.size() != original) std::abort();
    method = static_cast<compression::codec_id>(in[0]);
  }
  if (!round_trip) return;
  byte_vector again, back;
  encode_envelope(message, method, 0, again);
  if (decode_envelope(again, accepted, limit, back) || back != message) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  byte_span in(data, size);
  codec_set all;
  all.set();
  check(in, all, cap, true);
  check(in, all, 64, false);
  byte_vector message;
  if (!decode_envelope(in, codec_set{}, cap, message) && in[0] != envelope_plain) std::abort();
  return 0;
}
