#include "kadnet/compression/codec.hpp"

#include <array>
#include <string>

#include "kadnet/compression/backends.hpp"

namespace kadnet::compression {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "kadnet.compression"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::unsupported_method: return "unsupported compression method";
      case errc::output_limit_exceeded: return "decompressed data exceeds the output limit";
      case errc::corrupt_input: return "corrupt compressed data";
      case errc::compress_failed: return "compression failed";
    }
    return "unknown compression error " + std::to_string(value);
  }
};

constexpr std::array<codec_id, codec_count> ids{codec_id::bz2,  codec_id::gzip,
                                                codec_id::lzma, codec_id::zlib,
                                                codec_id::snappy, codec_id::zstd};
constexpr std::array<std::string_view, codec_count> names{"bz2",  "gzip",   "lzma",
                                                          "zlib", "snappy", "zstd"};

}  // namespace

const boost::system::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

const codec* find_codec(std::uint8_t wire_number) {
  // Built on first use, so no backend depends on static initialisation order.
  static const std::array<const codec*, codec_count> registry{
      &detail::bz2_codec_instance(),  &detail::gzip_codec_instance(),
      &detail::lzma_codec_instance(), &detail::zlib_codec_instance(),
      &detail::snappy_codec_instance(), &detail::zstd_codec_instance()};
  return wire_number < codec_count ? registry[wire_number] : nullptr;
}

std::string_view codec_name(codec_id id) {
  auto index = static_cast<std::uint8_t>(id);
  return index < codec_count ? names[index] : std::string_view{};
}

std::optional<codec_id> codec_from_name(std::string_view name) {
  for (std::size_t i = 0; i < codec_count; ++i) {
    if (names[i] == name) return ids[i];
  }
  return std::nullopt;
}

std::span<const codec_id> all_codecs() { return ids; }

}  // namespace kadnet::compression
