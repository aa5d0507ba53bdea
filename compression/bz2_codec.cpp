// The bz2 backend: libbz2's stream API writing a standard .bz2 stream, as `bzip2 -9` does.
#include <bzlib.h>

#include <climits>
#include <new>

#include "kadnet/compression/backends.hpp"

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
    // bzip2's documented worst case is 1% + 600 bytes; start there to avoid regrowing.
    return stream_compress(
        input, out, input.size() + input.size() / 100 + 600, UINT_MAX,
        [&s](std::span<const std::uint8_t> in, std::span<std::uint8_t> room, bool finish) {
          set_windows(s.bs, in, room);
          int rc = BZ2_bzCompress(&s.bs, finish ? BZ_FINISH : BZ_RUN);
          step_result r{in.size() - s.bs.avail_in, room.size() - s.bs.avail_out,
                        step_status::more};
          if (rc == BZ_STREAM_END) r.status = step_status::stream_end;
          else if (rc != BZ_RUN_OK && rc != BZ_FINISH_OK) r.status = step_status::failed;
          return r;
        });
  }

  boost::system::error_code decompress(std::span<const std::uint8_t> input,
                                       std::size_t max_output,
                                       std::vector<std::uint8_t>& out) const override {
    decompress_stream s;
    int rc = s.reopen();
    // Running out of memory is a local failure, not the peer's fault: report it like a vector.
    if (rc == BZ_MEM_ERROR) throw std::bad_alloc();
    if (rc != BZ_OK) return errc::corrupt_input;
    bool new_member = false;
    return stream_decompress(
        input, max_output, out, UINT_MAX,
        [&s, &new_member](std::span<const std::uint8_t> in, std::span<std::uint8_t> room) {
          if (new_member) {
            // libbz2 has no reset, so the next stream gets a fresh decoder.
            int rc = s.reopen();
            if (rc == BZ_MEM_ERROR) throw std::bad_alloc();
            if (rc != BZ_OK) return step_result{0, 0, step_status::failed};
            new_member = false;
          }
          set_windows(s.bs, in, room);
          int rc = BZ2_bzDecompress(&s.bs);
          step_result r{in.size() - s.bs.avail_in, room.size() - s.bs.avail_out,
                        step_status::more};
          switch (rc) {
            case BZ_OK:
              // A truncated stream answers BZ_OK forever; stream_decompress catches that.
              break;
            case BZ_STREAM_END:
              // `bzip2 -d` decodes concatenated streams (what pbzip2 writes), so we do too.
              new_member = true;
              r.status = step_status::member_end;
              break;
            case BZ_MEM_ERROR:
              throw std::bad_alloc();
            default:
              // BZ_DATA_ERROR, BZ_DATA_ERROR_MAGIC, BZ_PARAM_ERROR.
              r.status = step_status::failed;
          }
          return r;
        });
  }

 private:
  // avail_in and avail_out are 32-bit; stream_compress and stream_decompress keep the windows
  // within UINT_MAX.
  static void set_windows(bz_stream& bs, std::span<const std::uint8_t> in,
                          std::span<std::uint8_t> room) {
    bs.next_in = reinterpret_cast<char*>(const_cast<std::uint8_t*>(in.data()));
    bs.avail_in = static_cast<unsigned>(in.size());
    bs.next_out = reinterpret_cast<char*>(room.data());
    bs.avail_out = static_cast<unsigned>(room.size());
  }
};

}  // namespace

const codec& bz2_codec_instance() {
  static const bz2_codec instance;
  return instance;
}

}  // namespace kadnet::compression::detail
