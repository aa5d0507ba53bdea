// The zlib library's two formats, which share deflate and differ only in the wrapper:
// - gzip: the gzip wrapper (RFC 1952), the format of `gzip`. Concatenated members are accepted,
//   as `gzip -d` does.
// - zlib: the zlib wrapper (RFC 1950), byte for byte what Python's zlib.compress(data) produces
//   (32 KiB window, no preset dictionary). One stream; trailing bytes are corrupt_input.
// Both compress at level 6 (zlib's default), what `gzip` and zlib.compress use without options.
#include <zlib.h>

#include <climits>
#include <new>

#include "kadnet/compression/backends.hpp"

namespace kadnet::compression::detail {
namespace {

struct format {
  codec_id id;
  int window_bits;     // 15 is a 32 KiB window; + 16 asks zlib for the gzip wrapper
  bool concatenated;   // whether further members may follow the first
  int slot;            // index of this format's per-thread deflate stream
};
constexpr format gzip_format{codec_id::gzip, 15 + 16, true, 0};
constexpr format zlib_format{codec_id::zlib, 15, false, 1};

// Streams are reused per thread, as zstd_codec.cpp does with its contexts: setting one up costs
// more than compressing a small message, and the codecs stay stateless and thread-safe for their
// callers. A stream is reset at the start of every use, so one left mid-stream by an exception
// does no harm.
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

// deflateReset keeps the wrapper, and deflate has no call to change it, so each format has its
// own deflate stream. nullptr if zlib could not set one up.
z_stream* thread_deflater(const format& f) {
  thread_local deflate_stream streams[2];
  deflate_stream& s = streams[f.slot];
  if (s.open) {
    if (deflateReset(&s.zs) != Z_OK) return nullptr;
  } else {
    s.zs = z_stream{};
    if (deflateInit2(&s.zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, f.window_bits, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      return nullptr;
    }
    s.open = true;
  }
  return &s.zs;
}

// inflateReset2 switches the wrapper (and keeps the window, both formats using 32 KiB), so one
// inflate stream serves both formats. Returns zlib's status.
int thread_inflater(const format& f, z_stream*& zs) {
  thread_local inflate_stream s;
  int rc;
  if (s.open) {
    rc = inflateReset2(&s.zs, f.window_bits);
  } else {
    s.zs = z_stream{};
    rc = inflateInit2(&s.zs, f.window_bits);
    s.open = rc == Z_OK;
  }
  zs = &s.zs;
  return rc;
}

class deflate_codec final : public codec {
 public:
  explicit constexpr deflate_codec(format f) : format_(f) {}

  codec_id id() const override { return format_.id; }

  boost::system::error_code compress(std::span<const std::uint8_t> input,
                                     std::vector<std::uint8_t>& out) const override {
    z_stream* zs = thread_deflater(format_);
    if (!zs) return errc::compress_failed;
    return stream_compress(
        input, out, deflateBound(zs, input.size()), UINT_MAX,
        [zs](std::span<const std::uint8_t> in, std::span<std::uint8_t> room, bool finish) {
          zs->next_in = const_cast<Bytef*>(in.data());
          zs->avail_in = static_cast<uInt>(in.size());
          zs->next_out = room.data();
          zs->avail_out = static_cast<uInt>(room.size());
          int rc = deflate(zs, finish ? Z_FINISH : Z_NO_FLUSH);
          step_result r{in.size() - zs->avail_in, room.size() - zs->avail_out, step_status::more};
          if (rc == Z_STREAM_END) r.status = step_status::stream_end;
          else if (rc != Z_OK && rc != Z_BUF_ERROR) r.status = step_status::failed;
          return r;
        });
  }

  boost::system::error_code decompress(std::span<const std::uint8_t> input,
                                       std::size_t max_output,
                                       std::vector<std::uint8_t>& out) const override {
    z_stream* zs = nullptr;
    int rc = thread_inflater(format_, zs);
    // Running out of memory is a local failure, not the peer's fault: report it like a vector.
    if (rc == Z_MEM_ERROR) throw std::bad_alloc();
    if (rc != Z_OK) return errc::corrupt_input;
    bool new_member = false;
    return stream_decompress(
        input, max_output, out, UINT_MAX,
        [zs, &new_member, this](std::span<const std::uint8_t> in, std::span<std::uint8_t> room) {
          if (new_member && inflateReset(zs) != Z_OK) {
            return step_result{0, 0, step_status::failed};
          }
          new_member = false;
          zs->next_in = const_cast<Bytef*>(in.data());
          zs->avail_in = static_cast<uInt>(in.size());
          zs->next_out = room.data();
          zs->avail_out = static_cast<uInt>(room.size());
          int rc = inflate(zs, Z_NO_FLUSH);
          step_result r{in.size() - zs->avail_in, room.size() - zs->avail_out, step_status::more};
          switch (rc) {
            case Z_OK:
              break;
            case Z_STREAM_END:
              // gzip -d reads bytes after a member as further members (RFC 1952 section 2.2),
              // so gzip does too, and anything that is not a valid member is corrupt_input. The
              // zlib format has no notion of concatenated streams: one stream, then nothing.
              new_member = format_.concatenated;
              r.status = new_member ? step_status::member_end : step_status::stream_end;
              break;
            case Z_MEM_ERROR:
              throw std::bad_alloc();
            default:
              // Z_BUF_ERROR: the output had room, so no progress means the input ended inside
              // the stream. Z_DATA_ERROR, and Z_NEED_DICT: kadnet never negotiates a preset
              // dictionary.
              r.status = step_status::failed;
          }
          return r;
        });
  }

 private:
  format format_;
};

}  // namespace

const codec& gzip_codec_instance() {
  static const deflate_codec instance(gzip_format);
  return instance;
}

const codec& zlib_codec_instance() {
  static const deflate_codec instance(zlib_format);
  return instance;
}

}  // namespace kadnet::compression::detail
