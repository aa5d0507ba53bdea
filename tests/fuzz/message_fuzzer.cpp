// libFuzzer target for the opcode-message decoder (core/wire/message.cpp).
//
// Any input must decode to an error or to a message whose encoding is exactly the input and
// decodes back to the same message. Small limits are tried too, so the too_large paths are
// reached with small inputs. Seed corpus: the hex-decoded tests/vectors files (PROTOCOL.md,
// "Test vectors").
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kadnet/core/wire/message.hpp"

using namespace kadnet;
using namespace kadnet::core::wire;

namespace {

void check(byte_span in, const decode_limits& limits) {
  message m;
  if (decode(in, m, limits)) return;
  byte_vector again;
  encode(m, again);
  if (again.size() != in.size() || !std::equal(again.begin(), again.end(), in.begin())) {
    std::abort();  // the encoding is canonical: a decoded message re-encodes to its input
  }
  message twice;
  if (decode(again, twice, limits) || !(twice == m)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  byte_span in(data, size);
  check(in, decode_limits{});
  decode_limits tight;
  tight.max_text = 4;
  tight.max_value = 8;
  tight.max_payload = 16;
  check(in, tight);
  std::uint8_t opcode;
  std::uint32_t id;
  (void)decode_header(in, opcode, id);
  return 0;
}
