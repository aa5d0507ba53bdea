// The zstd backend: one zstd frame (RFC 8878) at level 3, zstd's default, as `zstd` writes.
#include <zstd.h>
#include <zstd_errors.h>

#include <memory>
#include <new>

#include "kadnet/compression/backends.hpp"

namespace kadnet::compression::detail {
namespace {

constexpr int level = 3;

struct dctx_deleter {
  void operator()(ZSTD_DCtx* dctx) const { ZSTD_freeDCtx(dctx); }
};
struct cctx_deleter {
  void operator()(ZSTD_CCtx* cctx) const { ZSTD_freeCCtx(cctx); }
};

// Contexts are reused per thread: creating one costs more than compressing a small message,
// and the codec stays stateless and thread-safe for its callers.
ZSTD_CCtx* thread_cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, cctx_deleter> cctx(ZSTD_createCCtx());
  if (!cctx) throw std::bad_alloc();
  return cctx.get();
}
ZSTD_DCtx* thread_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, dctx_deleter> dctx(ZSTD_createDCtx());
  if (!dctx) throw std::bad_alloc();
  ZSTD_DCtx_reset(dctx.get(), ZSTD_reset_session_only);
  return dctx.get();
}

class zstd_codec final : public codec {
 public:
  codec_id id() const override { return codec_id::zstd; }

  boost::system::error_code compress(std::span<const std::uint8_t> input,
                                     std::vector<std::uint8_t>& out) const override {
    const std::size_t base = out.size();
    out.resize(base + ZSTD_compressBound(input.size()));
    std::size_t n = ZSTD_compressCCtx(thread_cctx(), out.data() + base, out.size() - base,
                                      input.data(), input.size(), level);
    if (ZSTD_isError(n)) {
      out.resize(base);
      return errc::compress_failed;
    }
    out.resize(base + n);
    return {};
  }

  // Streams rather than calling ZSTD_decompress: the frame header's content size is the
  // peer's claim, so sizing a buffer from it (ZSTD_getFrameContentSize) would let one small
  // frame make us allocate whatever it says. The window size (up to zstd's default 128 MiB
  // limit, what `zstd -d` accepts) is allocated but only touched as output is written.
  // Not stream_decompress: zstd's buffers carry their own positions and have no 32-bit limit,
  // and a frame error is reported ahead of the cap, so this loop is already shorter alone.
  boost::system::error_code decompress(std::span<const std::uint8_t> input,
                                       std::size_t max_output,
                                       std::vector<std::uint8_t>& out) const override {
    ZSTD_DCtx* dctx = thread_dctx();
    ZSTD_inBuffer in{input.data(), input.size(), 0};
    capped_output sink(out, max_output);
    for (;;) {
      std::span<std::uint8_t> room = sink.room();
      ZSTD_outBuffer o{room.data(), room.size(), 0};
      std::size_t rc = ZSTD_decompressStream(dctx, &o, &in);
      sink.wrote(o.pos);
      if (ZSTD_isError(rc)) {
        if (ZSTD_getErrorCode(rc) == ZSTD_error_memory_allocation) throw std::bad_alloc();
        return errc::corrupt_input;
      }
      if (sink.over_limit()) return errc::output_limit_exceeded;
      if (rc == 0) {
        // A frame just ended. Further frames are legal (`zstd -d` decodes them all), and a
        // partial frame after it is caught like any other truncation.
        if (in.pos == in.size) {
          sink.finish();
          return {};
        }
        continue;
      }
      // Mid-frame: with output room left over, zstd has flushed all it can and needs input.
      if (in.pos == in.size && o.pos < o.size) return errc::corrupt_input;
    }
  }
};

}  // namespace

const codec& zstd_codec_instance() {
  static const zstd_codec instance;
  return instance;
}

}  // namespace kadnet::compression::detail
