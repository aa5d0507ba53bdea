// libFuzzer target for value patches (dht/value_patch.cpp): byte splices from a peer.
//
// The first input byte picks how much of a fixed base value the patch applies to; the rest is a
// patch on the wire. Decoding must never crash or read out of bounds; a patch that decodes
// re-encodes to exactly its bytes; applying it either fails cleanly or yields a value within the
// limit whose size is what the splices say; and make_patch of (base, result) applied to base
// gives the result back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kadnet/dht/value_patch.hpp"

using namespace kadnet;
using namespace kadnet::dht;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  byte_vector base(static_cast<std::size_t>(data[0]) * 4);
  for (std::size_t i = 0; i < base.size(); ++i) base[i] = static_cast<std::uint8_t>(i * 7 + 3);
  patch_limits limits;
  limits.max_value = 4096;
  limits.max_splices = 64;

  value_patch p;
  byte_span wire(data + 1, size - 1);
  if (decode_patch(wire, limits, p)) return 0;
  byte_vector again;
  encode_patch(p, again);
  if (again.size() != wire.size() || !std::equal(again.begin(), again.end(), wire.begin())) std::abort();
  if (encoded_size(p) != again.size()) std::abort();

  byte_vector result;
  if (apply_patch(base, p, limits, result)) return 0;
  if (result.size() > limits.max_value) std::abort();
  std::size_t expected = base.size();
  for (const splice& s : p.splices) expected = expected - s.removed + s.inserted.size();
  if (result.size() != expected) std::abort();

  byte_vector round;
  if (apply_patch(base, make_patch(base, result), limits, round) || round != result) std::abort();
  return 0;
}
