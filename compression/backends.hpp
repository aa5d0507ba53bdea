#pragma once
// Internal to compression/: the backend factories that codec.cpp's registry calls, the capped
// output buffer every decompressor writes through, and the loops that drive the streaming
// libraries (zlib, libbz2, liblzma) over a whole buffer. Not installed API.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "kadnet/compression/codec.hpp"

namespace kadnet::compression::detail {

// Each returns a process-wide instance that lives until exit.
const codec& bz2_codec_instance();
const codec& gzip_codec_instance();
const codec& lzma_codec_instance();
const codec& zlib_codec_instance();
const codec& snappy_codec_instance();
const codec& zstd_codec_instance();

// The output side of a streaming decompressor. The library writes into room(), reports what it
// wrote with wrote(), and the caller checks over_limit() after every step.
//
// room() hands out at most `chunk` bytes at a time and never more than max_output + 1 bytes in
// total: that one extra byte is how an output of exactly max_output (accepted) is told apart
// from a longer one (output_limit_exceeded). The vector's capacity grows geometrically but is
// never reserved past its original size + max_output + 1, so a bomb costs at most that.
// finish() trims the vector to the bytes actually written; call it before returning success.
class capped_output {
 public:
  static constexpr std::size_t chunk = 64 * 1024;

  capped_output(std::vector<std::uint8_t>& out, std::size_t max_output)
      : out_(out),
        base_(out.size()),
        limit_(max_output == std::numeric_limits<std::size_t>::max() ? max_output
                                                                      : max_output + 1),
        max_output_(max_output) {}

  // Writable space after the bytes written so far; empty once the limit has been reached.
  std::span<std::uint8_t> room() {
    std::size_t end = base_ + written_;
    if (out_.size() > end) return {out_.data() + end, out_.size() - end};
    std::size_t want = std::min(chunk, limit_ - written_);
    if (want == 0) return {};
    std::size_t needed = end + want;
    if (needed > out_.capacity()) {
      // Geometric growth keeps appends amortised O(n); the clamp keeps a bomb from doubling
      // its way past the cap.
      std::size_t ceiling = limit_ > std::numeric_limits<std::size_t>::max() - base_
                                ? std::numeric_limits<std::size_t>::max()
                                : base_ + limit_;
      out_.reserve(std::max(needed, std::min(out_.capacity() * 2, ceiling)));
    }
    out_.resize(needed);
    return {out_.data() + end, want};
  }

  void wrote(std::size_t n) { written_ += n; }
  std::size_t written() const { return written_; }
  bool over_limit() const { return written_ > max_output_; }
  void finish() { out_.resize(base_ + written_); }

 private:
  std::vector<std::uint8_t>& out_;
  std::size_t base_;
  std::size_t limit_;
  std::size_t max_output_;
  std::size_t written_ = 0;
};

// One call into a streaming library, as seen by stream_compress and stream_decompress: the
// step is offered an input window and an output window, and reports how much of each it used.
enum class step_status {
  more,        // call again
  member_end,  // a member ended; the step starts a new one if called again (formats that allow
               // concatenation, as their reference tools do)
  stream_end,  // the stream ended; anything after it is corrupt_input
  failed,      // compress_failed or corrupt_input, by direction
};
struct step_result {
  std::size_t consumed;
  std::size_t produced;
  step_status status;
};

// Windows are never longer than max_window, for libraries whose avail_in/avail_out are 32-bit;
// longer buffers then go through in slices.

// Appends the compressed form of input to out, sized first for `bound` bytes (the library's
// single-pass worst case, so it normally never regrows). step(in, room, finish) must return
// more or stream_end or failed; finish is true once `in` reaches the end of input.
template <class Step>
boost::system::error_code stream_compress(std::span<const std::uint8_t> input,
                                          std::vector<std::uint8_t>& out, std::size_t bound,
                                          std::size_t max_window, Step&& step) {
  const std::size_t base = out.size();
  out.resize(base + bound);
  std::size_t in_pos = 0;
  std::size_t out_pos = base;
  for (;;) {
    if (out_pos == out.size()) out.resize(out.size() + capped_output::chunk);
    auto in = input.subspan(in_pos, std::min(input.size() - in_pos, max_window));
    std::span<std::uint8_t> room(out.data() + out_pos, std::min(out.size() - out_pos, max_window));
    step_result r = step(in, room, in_pos + in.size() == input.size());
    in_pos += r.consumed;
    out_pos += r.produced;
    if (r.status == step_status::stream_end) break;
    if (r.status == step_status::failed) {
      out.resize(base);
      return errc::compress_failed;
    }
  }
  out.resize(out_pos);
  return {};
}

// Appends the decompressed form of input to out through a capped_output. step(in, room) may
// throw std::bad_alloc when the library runs out of memory (a local failure, not the peer's
// fault). Input that ends inside the stream, or that continues after stream_end, is
// corrupt_input.
template <class Step>
boost::system::error_code stream_decompress(std::span<const std::uint8_t> input,
                                            std::size_t max_output, std::vector<std::uint8_t>& out,
                                            std::size_t max_window, Step&& step) {
  capped_output sink(out, max_output);
  std::size_t in_pos = 0;
  for (;;) {
    auto in = input.subspan(in_pos, std::min(input.size() - in_pos, max_window));
    std::span<std::uint8_t> room = sink.room();
    room = room.first(std::min(room.size(), max_window));
    step_result r = step(in, room);
    in_pos += r.consumed;
    sink.wrote(r.produced);
    if (sink.over_limit()) return errc::output_limit_exceeded;
    switch (r.status) {
      case step_status::more:
        // Some libraries (libbz2) answer "more" forever on a truncated stream; with output room
        // on offer, a step that used nothing and produced nothing means the input ran out.
        if (r.consumed == 0 && r.produced == 0) return errc::corrupt_input;
        continue;
      case step_status::member_end:
        if (in_pos < input.size()) continue;
        [[fallthrough]];
      case step_status::stream_end:
        if (in_pos < input.size()) return errc::corrupt_input;
        sink.finish();
        return {};
      case step_status::failed:
        return errc::corrupt_input;
    }
  }
}

}  // namespace kadnet::compression::detail
