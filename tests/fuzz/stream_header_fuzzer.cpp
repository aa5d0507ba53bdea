// libFuzzer target for a byte stream's protocol header (core/wire/stream_header.hpp, PROTOCOL.md
// 9.6), fed in pieces as a stream's bytes arrive: the first input byte sets the pieces' size.
// It must never crash, never take more than it wants, and a header it accepts must name a valid
// protocol that encodes back to the bytes it read.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kadnet/core/wire/stream_header.hpp"

using namespace kadnet;
using namespace kadnet::core::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0] % 16;
  byte_span rest(data + 1, size - 1);
  byte_vector read;
  stream_header_reader reader;
  while (reader.wanted() > 0 && !rest.empty()) {
    const std::size_t n = std::min({piece, reader.wanted(), rest.size()});
    read.insert(read.end(), rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(n));
    reader.feed(rest.first(n));
    rest = rest.subspan(n);
  }
  if (reader.done()) {
    if (!valid_stream_protocol(reader.protocol())) std::abort();
    if (encode_stream_header(reader.protocol()) != read) std::abort();
  }
  if (reader.done() && reader.failed()) std::abort();
  return 0;
}
