// The zlib backend: deflate in the zlib wrapper (RFC 1950), byte for byte what Python's
// zlib.compress(data) produces (level 6, 32 KiB window, no preset dictionary).
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <new>

#include "compression/backends.hpp"

namespace kadnet::compression::detail {
namespace {

constexpr int zlib_window_bits = 15;

struct deflate_stream {
  z_stream zs{};
  bool open = false;
  ~deflate_stream() {
    if (open) deflateEnd(&zs);
  }
};

struct inflate_stream {
  z_stream zs{};
  bool open = false;
  ~inflate_stream() {
    if (open) inflateEnd(&zs);
  }
};

class zlib_codec final : public codec {
 public:
  codec_id id() const override { return codec_id::zlib; }

  boost::system::error_code compress(std::span<const std::uint8_t> input,
                                     std::vector<std::uint8_t>& out) const override {
    deflate_stream s;
    if (deflateInit2(&s.zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, zlib_window_bits, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      return errc::compress_failed;
    }
    s.open = true;
    const std::size_t base = out.size();
    // deflateBound is a single-pass upper bound, so the loop below normally never regrows.
    out.resize(base + deflateBound(&s.zs, input.size()));
    std::size_t in_pos = 0;
    std::size_t out_pos = base;
    for (;;) {
      // avail_in and avail_out are 32-bit, so very large buffers go through in slices.
      if (s.zs.avail_in == 0 && in_pos < input.size()) {
        std::size_t n = std::min<std::size_t>(input.size() - in_pos, UINT_MAX);
        s.zs.next_in = const_cast<Bytef*>(input.data() + in_pos);
        s.zs.avail_in = static_cast<uInt>(n);
        in_pos += n;
      }
      if (out_pos == out.size()) out.resize(out.size() + capped_output::chunk);
      std::size_t room = std::min<std::size_t>(out.size() - out_pos, UINT_MAX);
      s.zs.next_out = out.data() + out_pos;
      s.zs.avail_out = static_cast<uInt>(room);
      int rc = deflate(&s.zs, in_pos == input.size() ? Z_FINISH : Z_NO_FLUSH);
      out_pos += room - s.zs.avail_out;
      if (rc == Z_STREAM_END) break;
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        out.resize(base);
        return errc::compress_failed;
      }
    }
    out.resize(out_pos);
    return {};
  }

  boost::system::error_code decompress(std::span<const std::uint8_t> input,
                                       std::size_t max_output,
                                       std::vector<std::uint8_t>& out) const override {
    inflate_stream s;
    int rc = inflateInit2(&s.zs, zlib_window_bits);
    // Running out of memory is a local failure, not the peer's fault: report it like a vector.
    if (rc == Z_MEM_ERROR) throw std::bad_alloc();
    if (rc != Z_OK) return errc::corrupt_input;
    s.open = true;
    capped_output sink(out, max_output);
    std::size_t in_pos = 0;
    for (;;) {
      if (s.zs.avail_in == 0 && in_pos < input.size()) {
        std::size_t n = std::min<std::size_t>(input.size() - in_pos, UINT_MAX);
        s.zs.next_in = const_cast<Bytef*>(input.data() + in_pos);
        s.zs.avail_in = static_cast<uInt>(n);
        in_pos += n;
      }
      std::span<std::uint8_t> room = sink.room();
      std::size_t offered = std::min<std::size_t>(room.size(), UINT_MAX);
      s.zs.next_out = room.data();
      s.zs.avail_out = static_cast<uInt>(offered);
      rc = inflate(&s.zs, Z_NO_FLUSH);
      sink.wrote(offered - s.zs.avail_out);
      if (sink.over_limit()) return errc::output_limit_exceeded;
      switch (rc) {
        case Z_OK:
          continue;
        case Z_STREAM_END:
          // Unlike gzip, the zlib format has no notion of concatenated streams: one stream,
          // then nothing.
          if (s.zs.avail_in != 0 || in_pos != input.size()) return errc::corrupt_input;
          sink.finish();
          return {};
        case Z_BUF_ERROR:
          // The output had room, so no progress means the input ended inside the stream.
          return errc::corrupt_input;
        case Z_MEM_ERROR:
          throw std::bad_alloc();
        default:
          // Z_DATA_ERROR, and Z_NEED_DICT: kadnet never negotiates a preset dictionary.
          return errc::corrupt_input;
      }
    }
  }
};

}  // namespace

const codec& zlib_codec_instance() {
  static const zlib_codec instance;
  return instance;
}

}  // namespace kadnet::compression::detail
