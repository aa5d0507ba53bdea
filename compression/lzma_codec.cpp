// The lzma backend: liblzma writing a standard .xz stream (LZMA2, CRC64 check), as `xz` does.
#include <lzma.h>

#include <algorithm>
#include <cstdint>
#include <new>

#include "kadnet/compression/backends.hpp"

namespace kadnet::compression::detail {
namespace {

// xz's default preset. Its 8 MiB dictionary costs the encoder about 94 MiB of tables, most of
// it wasted on kadnet's small messages, so compress() shrinks the dictionary to the input
// size: a dictionary larger than the input cannot find more matches, so the output is as
// small as plain preset 6, the encoder allocates a fraction, and the decoder that reads the
// smaller dictionary size from the block header needs less memory too.
constexpr std::uint32_t preset = 6;

// Enough for a stream from any xz preset (-9 needs 65 MiB to decode); more is refused. The
// dictionary is malloc'd but only touched as output is written, and output stops at the cap.
constexpr std::uint64_t decoder_memlimit = 80ull << 20;

struct xz_stream {
  lzma_stream strm = LZMA_STREAM_INIT;
  ~xz_stream() { lzma_end(&strm); }
};

class lzma_codec final : public codec {
 public:
  codec_id id() const override { return codec_id::lzma; }

  boost::system::error_code compress(std::span<const std::uint8_t> input,
                                     std::vector<std::uint8_t>& out) const override {
    lzma_options_lzma options;
    if (lzma_lzma_preset(&options, preset)) return errc::compress_failed;
    options.dict_size = static_cast<std::uint32_t>(std::clamp<std::size_t>(
        input.size(), LZMA_DICT_SIZE_MIN, options.dict_size));
    const lzma_filter filters[] = {{LZMA_FILTER_LZMA2, &options},
                                   {LZMA_VLI_UNKNOWN, nullptr}};
    xz_stream s;
    if (lzma_stream_encoder(&s.strm, filters, LZMA_CHECK_CRC64) != LZMA_OK) {
      return errc::compress_failed;
    }
    // avail_in and avail_out are size_t, so the whole input is on offer from the start and
    // every call may say LZMA_FINISH.
    return stream_compress(
        input, out, lzma_stream_buffer_bound(input.size()), SIZE_MAX,
        [&s](std::span<const std::uint8_t> in, std::span<std::uint8_t> room, bool) {
          set_windows(s.strm, in, room);
          lzma_ret rc = lzma_code(&s.strm, LZMA_FINISH);
          step_result r{in.size() - s.strm.avail_in, room.size() - s.strm.avail_out,
                        step_status::more};
          if (rc == LZMA_STREAM_END) r.status = step_status::stream_end;
          else if (rc != LZMA_OK) r.status = step_status::failed;
          return r;
        });
  }

  boost::system::error_code decompress(std::span<const std::uint8_t> input,
                                       std::size_t max_output,
                                       std::vector<std::uint8_t>& out) const override {
    xz_stream s;
    // LZMA_CONCATENATED: `xz -d` accepts concatenated .xz streams (and stream padding), so we
    // do too, inside liblzma: its one stream_end comes after the last of them, and anything
    // else after a stream is still an error.
    lzma_ret rc = lzma_stream_decoder(&s.strm, decoder_memlimit, LZMA_CONCATENATED);
    if (rc == LZMA_MEM_ERROR) throw std::bad_alloc();
    if (rc != LZMA_OK) return errc::corrupt_input;
    return stream_decompress(
        input, max_output, out, SIZE_MAX,
        [&s](std::span<const std::uint8_t> in, std::span<std::uint8_t> room) {
          set_windows(s.strm, in, room);
          // All input is on offer from the start, so every call may say LZMA_FINISH.
          lzma_ret rc = lzma_code(&s.strm, LZMA_FINISH);
          step_result r{in.size() - s.strm.avail_in, room.size() - s.strm.avail_out,
                        step_status::more};
          switch (rc) {
            case LZMA_OK:
              break;
            case LZMA_STREAM_END:
              r.status = step_status::stream_end;
              break;
            case LZMA_MEM_ERROR:
              // Running out of memory is a local failure, not the peer's fault.
              throw std::bad_alloc();
            default:
              // LZMA_BUF_ERROR (input ended mid-stream), LZMA_FORMAT_ERROR, LZMA_DATA_ERROR,
              // LZMA_OPTIONS_ERROR, and LZMA_MEMLIMIT_ERROR: a stream needing more than
              // decoder_memlimit was not made by any xz preset and is refused as malformed.
              r.status = step_status::failed;
          }
          return r;
        });
  }

 private:
  static void set_windows(lzma_stream& strm, std::span<const std::uint8_t> in,
                          std::span<std::uint8_t> room) {
    strm.next_in = in.data();
    strm.avail_in = in.size();
    strm.next_out = room.data();
    strm.avail_out = room.size();
  }
};

}  // namespace

const codec& lzma_codec_instance() {
  static const lzma_codec instance;
  return instance;
}

}  // namespace kadnet::compression::detail
