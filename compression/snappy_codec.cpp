// The snappy backend: one raw snappy block (varint length, then tagged literals and copies),
// what python-snappy's snappy.compress() and snappy::Compress produce. Not the framing format.
#include <snappy.h>

#include <cstdint>
#include <limits>

#include "kadnet/compression/backends.hpp"

namespace kadnet::compression::detail {
namespace {

class snappy_codec final : public codec {
 public:
  codec_id id() const override { return codec_id::snappy; }

  boost::system::error_code compress(std::span<const std::uint8_t> input,
                                     std::vector<std::uint8_t>& out) const override {
    // The block header stores the length as a 32-bit varint.
    if (input.size() > std::numeric_limits<std::uint32_t>::max()) return errc::compress_failed;
    const std::size_t base = out.size();
    out.resize(base + snappy::MaxCompressedLength(input.size()));
    std::size_t n = 0;
    snappy::RawCompress(reinterpret_cast<const char*>(input.data()), input.size(),
                        reinterpret_cast<char*>(out.data() + base), &n);
    out.resize(base + n);
    return {};
  }

  // A raw block has no streaming decoder, but its header states the exact output size, so the
  // cap is enforced before any allocation, and the block is validated (a pass that writes
  // nothing) before the output is sized to it: a lying header costs no memory. The output
  // buffer then holds exactly the decompressed bytes, never more than max_output.
  boost::system::error_code decompress(std::span<const std::uint8_t> input,
                                       std::size_t max_output,
                                       std::vector<std::uint8_t>& out) const override {
    const char* data = reinterpret_cast<const char*>(input.data());
    std::size_t length = 0;
    if (!snappy::GetUncompressedLength(data, input.size(), &length)) {
      return errc::corrupt_input;
    }
    if (length > max_output) return errc::output_limit_exceeded;
    if (!snappy::IsValidCompressedBuffer(data, input.size())) return errc::corrupt_input;
    const std::size_t base = out.size();
    out.resize(base + length);
    // The block must fill exactly `length` bytes, so trailing bytes (which would decode as
    // further literals or copies) fail here too.
    if (!snappy::RawUncompress(data, input.size(), reinterpret_cast<char*>(out.data() + base))) {
      return errc::corrupt_input;
    }
    return {};
  }
};

}  // namespace

const codec& snappy_codec_instance() {
  static const snappy_codec instance;
  return instance;
}

}  // namespace kadnet::compression::detail
