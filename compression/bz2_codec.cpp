// The bz2 backend: libbz2's stream API writing a standard .bz2 stream, as `bzip2 -9` does.
#include <bzlib.h>

#include <algorithm>
#include <climits>
#include <new>

#include "compression/backends.hpp"

namespace kadnet::compression::detail {
namespace {

// 900 KiB blocks, bzip2's default; smaller blocks only trade ratio for memory.
constexpr int block_size_100k = 9;

struct compress_stream {
  bz_stream bs{};
  bool open = false;
  ~compress_stream() {
    if (open) BZ2_bzCompressEnd(&bs);
  }
};

struct decompress_stream {
  bz_stream bs{};
  bool open = false;
  ~decompress_stream() { close(); }
  int reopen() {
    close();
    int rc = BZ2_bzDecompressInit(&bs, 0, 0);
    open = rc == BZ_OK;
    return rc;
  }
  void close() {
    if (open) BZ2_bzDecompressEnd(&bs);
    open = false;
  }
};

class bz2_codec final : public codec {
 public:
  codec_id id() const override { return codec_id::bz2; }

  boost::system::error_code compress(std::span<const std::uint8_t> input,
                                     std::vector<std::uint8_t>& out) const override {
    compress_stream s;
    if (BZ2_bzCompressInit(&s.bs, block_size_100k, 0, 0) != BZ_OK) {
      return errc::compress_failed;
    }
    s.open = true;
    const std::size_t base = out.size();
    // bzip2's documented worst case is 1% + 600 bytes; start there to avoid regrowing.
    out.resize(base + input.size() + input.size() / 100 + 600);
    std::size_t in_pos = 0;
    std::size_t out_pos = base;
    for (;;) {
      // avail_in and avail_out are 32-bit, so very large buffers go through in slices.
      if (s.bs.avail_in == 0 && in_pos < input.size()) {
        std::size_t n = std::min<std::size_t>(input.size() - in_pos, UINT_MAX);
        s.bs.next_in = reinterpret_cast<char*>(const_cast<std::uint8_t*>(input.data() + in_pos));
        s.bs.avail_in = static_cast<unsigned>(n);
        in_pos += n;
      }
      if (out_pos == out.size()) out.resize(out.size() + capped_output::chunk);
      std::size_t room = std::min<std::size_t>(out.size() - out_pos, UINT_MAX);
      s.bs.next_out = reinterpret_cast<char*>(out.data() + out_pos);
      s.bs.avail_out = static_cast<unsigned>(room);
      int rc = BZ2_bzCompress(&s.bs, in_pos == input.size() ? BZ_FINISH : BZ_RUN);
      out_pos += room - s.bs.avail_out;
      if (rc == BZ_STREAM_END) break;
      if (rc != BZ_RUN_OK && rc != BZ_FINISH_OK) {
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
    decompress_stream s;
    int rc = s.reopen();
    // Running out of memory is a local failure, not the peer's fault: report it like a vector.
    if (rc == BZ_MEM_ERROR) throw std::bad_alloc();
    if (rc != BZ_OK) return errc::corrupt_input;
    capped_output sink(out, max_output);
    std::size_t in_pos = 0;
    for (;;) {
      if (s.bs.avail_in == 0 && in_pos < input.size()) {
        std::size_t n = std::min<std::size_t>(input.size() - in_pos, UINT_MAX);
        s.bs.next_in = reinterpret_cast<char*>(const_cast<std::uint8_t*>(input.data() + in_pos));
        s.bs.avail_in = static_cast<unsigned>(n);
        in_pos += n;
      }
      std::span<std::uint8_t> room = sink.room();
      std::size_t offered = std::min<std::size_t>(room.size(), UINT_MAX);
      s.bs.next_out = reinterpret_cast<char*>(room.data());
      s.bs.avail_out = static_cast<unsigned>(offered);
      rc = BZ2_bzDecompress(&s.bs);
      std::size_t produced = offered - s.bs.avail_out;
      sink.wrote(produced);
      if (sink.over_limit()) return errc::output_limit_exceeded;
      switch (rc) {
        case BZ_OK:
          // libbz2 answers BZ_OK forever on a truncated stream; with output room on offer,
          // a step that consumed nothing new and produced nothing means the input ran out.
          if (produced == 0 && s.bs.avail_in == 0 && in_pos == input.size()) {
            return errc::corrupt_input;
          }
          continue;
        case BZ_STREAM_END: {
          if (s.bs.avail_in == 0 && in_pos == input.size()) {
            sink.finish();
            return {};
          }
          // `bzip2 -d` decodes concatenated streams (what pbzip2 writes), so we do too; the
          // leftover input carries over into the fresh decoder.
          char* next_in = s.bs.next_in;
          unsigned avail_in = s.bs.avail_in;
          rc = s.reopen();
          if (rc == BZ_MEM_ERROR) throw std::bad_alloc();
          if (rc != BZ_OK) return errc::corrupt_input;
          s.bs.next_in = next_in;
          s.bs.avail_in = avail_in;
          continue;
        }
        case BZ_MEM_ERROR:
          throw std::bad_alloc();
        default:
          // BZ_DATA_ERROR, BZ_DATA_ERROR_MAGIC, BZ_PARAM_ERROR.
          return errc::corrupt_input;
      }
    }
  }
};

}  // namespace

const codec& bz2_codec_instance() {
  static const bz2_codec instance;
  return instance;
}

}  // namespace kadnet::compression::detail
