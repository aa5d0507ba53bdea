#pragma once
// One interface over the compression libraries kadnet negotiates per connection. Each codec
// writes and reads its library's standard format (a .gz member, a .bz2 stream, an .xz stream,
// a zlib stream, a raw snappy block, a zstd frame), so the reference tools interoperate.
//
// Decompression always has an output cap: a codec stops and fails with
// errc::output_limit_exceeded as soon as the output would exceed `max_output`, holding no more
// than about max_output bytes, so a decompression bomb costs little memory. Codecs are
// stateless and safe to use from any thread.
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include <boost/system/error_code.hpp>

namespace kadnet::compression {

// Wire numbers of seed 003 / DESIGN.md (connection settings for options 0 and 1).
enum class codec_id : std::uint8_t { bz2 = 0, gzip = 1, lzma = 2, zlib = 3, snappy = 4, zstd = 5 };
inline constexpr std::uint8_t codec_count = 6;

enum class errc {
  unsupported_method = 1,  // no codec with that number or name
  output_limit_exceeded,   // decompressed data would exceed the caller's cap
  corrupt_input,           // the compressed data is not valid for the format
  compress_failed,         // the library reported an internal failure while compressing
};
const boost::system::error_category& error_category() noexcept;
inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

class codec {
 public:
  virtual ~codec() = default;
  virtual codec_id id() const = 0;
  // Appends the compressed form of input to out.
  virtual boost::system::error_code compress(std::span<const std::uint8_t> input,
                                             std::vector<std::uint8_t>& out) const = 0;
  // Appends the decompressed form of input to out, or fails (out then holds unspecified bytes
  // past its original size). Trailing garbage after the compressed stream is corrupt_input.
  virtual boost::system::error_code decompress(std::span<const std::uint8_t> input,
                                               std::size_t max_output,
                                               std::vector<std::uint8_t>& out) const = 0;
};

// The codec for a wire number; nullptr for a number with no codec.
const codec* find_codec(std::uint8_t wire_number);
inline const codec& get_codec(codec_id id) { return *find_codec(static_cast<std::uint8_t>(id)); }
// "bz2", "gzip", "lzma", "zlib", "snappy", "zstd".
std::string_view codec_name(codec_id id);
std::optional<codec_id> codec_from_name(std::string_view name);
// Every codec id, in wire order.
std::span<const codec_id> all_codecs();

}  // namespace kadnet::compression

template <>
struct boost::system::is_error_code_enum<kadnet::compression::errc> : std::true_type {};
