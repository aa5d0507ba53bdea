#pragma once
// Internal to compression/: the backend factories that codec.cpp's registry calls, and the
// capped output buffer every decompressor writes through. Not installed API.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "compression/codec.hpp"

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

}  // namespace kadnet::compression::detail
