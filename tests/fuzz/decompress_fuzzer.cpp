// libFuzzer target for the decompressors (compression/*_codec.cpp).
//
// The first byte picks the codec (modulo codec_count), the rest is decompressed with a 1 MiB
// cap. Any input must end in corrupt_input or output_limit_exceeded, or decode to at most
// 1 MiB; the output buffer may never grow past the cap plus one 64 KiB chunk (the bomb
// guarantee of compression/codec.hpp); and whatever decodes must survive our own round trip.
// Seed corpus: streams of each format, each prefixed with its codec's wire number.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "kadnet/compression/codec.hpp"

namespace kc = kadnet::compression;

namespace {

constexpr std::size_t cap = 1024 * 1024;
constexpr std::size_t chunk = 64 * 1024;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const kc::codec* codec = kc::find_codec(data[0] % kc::codec_count);
  if (codec == nullptr) std::abort();
  std::span<const std::uint8_t> input(data + 1, size - 1);

  std::vector<std::uint8_t> out;
  boost::system::error_code ec = codec->decompress(input, cap, out);
  if (out.capacity() > cap + chunk) std::abort();
  if (ec) {
    if (ec != kc::errc::corrupt_input && ec != kc::errc::output_limit_exceeded) std::abort();
    return 0;
  }
  if (out.size() > cap) std::abort();

  std::vector<std::uint8_t> packed, again;
  if (codec->compress(out, packed)) std::abort();
  if (codec->decompress(packed, out.size(), again) || again != out) std::abort();
  return 0;
}
