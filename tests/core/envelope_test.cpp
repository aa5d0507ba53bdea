#include "kadnet/core/envelope.hpp"

#include <cstdint>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "kadnet/core/errors.hpp"

namespace kadnet::core {
namespace {

namespace kc = kadnet::compression;

constexpr std::size_t max_size = 64 * 1024;

codec_set all_accepted() { return codec_set().set(); }

// Text that every codec shrinks well.
byte_vector compressible(std::size_t n) {
  const std::string phrase = "kadnet stores values at the nodes closest to their key. ";
  byte_vector out;
  while (out.size() < n) out.push_back(static_cast<std::uint8_t>(phrase[out.size() % phrase.size()]));
  return out;
}

byte_vector random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  byte_vector out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

byte_vector encode(const byte_vector& message, std::optional<kc::codec_id> method,
                   std::size_t threshold = default_compression_threshold) {
  byte_vector out;
  encode_envelope(message, method, threshold, out);
  return out;
}

std::uint32_t original_size_field(const byte_vector& envelope) {
  byte_reader r(envelope);
  std::uint8_t encoding;
  std::uint32_t size = 0;
  EXPECT_TRUE(r.u8(encoding) && r.u32(size));
  return size;
}

void set_original_size_field(byte_vector& envelope, std::uint32_t size) {
  byte_vector field;
  byte_writer(field).u32(size);
  std::copy(field.begin(), field.end(), envelope.begin() + 1);
}

TEST(Envelope, PlainRoundTrip) {
  const byte_vector message = compressible(1000);
  byte_vector env = encode(message, std::nullopt);
  ASSERT_EQ(env.size(), message.size() + 1);
  EXPECT_EQ(env[0], envelope_plain);
  EXPECT_TRUE(std::equal(message.begin(), message.end(), env.begin() + 1));
  byte_vector out;
  EXPECT_FALSE(decode_envelope(env, all_accepted(), max_size, out));
  EXPECT_EQ(out, message);
}

TEST(Envelope, PlainEmptyMessage) {
  byte_vector env = encode({}, kc::codec_id::zstd, 0);
  EXPECT_EQ(env, (byte_vector{envelope_plain}));
  byte_vector out{1, 2, 3};
  EXPECT_FALSE(decode_envelope(env, codec_set(), max_size, out));
  EXPECT_TRUE(out.empty());
}

TEST(Envelope, PlainNeedsNoAcceptedCodec) {
  const byte_vector message = compressible(300);
  byte_vector out;
  EXPECT_FALSE(decode_envelope(encode(message, std::nullopt), codec_set(), max_size, out));
  EXPECT_EQ(out, message);
}

TEST(Envelope, EncodeAppendsAfterExistingBytes) {
  const byte_vector message = compressible(2000);
  byte_vector out{0xaa, 0xbb};
  encode_envelope(message, kc::codec_id::zstd, default_compression_threshold, out);
  ASSERT_GT(out.size(), 2u);
  EXPECT_EQ(out[0], 0xaa);
  EXPECT_EQ(out[1], 0xbb);
  EXPECT_EQ(out[2], static_cast<std::uint8_t>(kc::codec_id::zstd));
  byte_vector decoded;
  EXPECT_FALSE(decode_envelope(byte_span(out).subspan(2), all_accepted(), max_size, decoded));
  EXPECT_EQ(decoded, message);
}

TEST(Envelope, DecodeReplacesPreviousContent) {
  const byte_vector message = compressible(500);
  byte_vector out(7000, 0x11);
  EXPECT_FALSE(decode_envelope(encode(message, kc::codec_id::zlib), all_accepted(), max_size, out));
  EXPECT_EQ(out, message);
}

TEST(Envelope, BelowThresholdStaysPlain) {
  const byte_vector small = compressible(default_compression_threshold - 1);
  for (auto id : kc::all_codecs()) {
    byte_vector env = encode(small, id);
    EXPECT_EQ(env[0], envelope_plain) << kc::codec_name(id);
    EXPECT_EQ(env.size(), small.size() + 1) << kc::codec_name(id);
  }
  // The threshold itself is inclusive.
  byte_vector at = encode(compressible(default_compression_threshold), kc::codec_id::zstd);
  EXPECT_EQ(at[0], static_cast<std::uint8_t>(kc::codec_id::zstd));
  // A custom threshold is honoured.
  EXPECT_EQ(encode(compressible(1000), kc::codec_id::zstd, 1001)[0], envelope_plain);
  EXPECT_EQ(encode(compressible(1000), kc::codec_id::zstd, 1000)[0],
            static_cast<std::uint8_t>(kc::codec_id::zstd));
}

TEST(Envelope, IncompressibleDataStaysPlain) {
  constexpr std::uint32_t seed = 4242;
  SCOPED_TRACE("seed " + std::to_string(seed));
  const byte_vector noise = random_bytes(4096, seed);
  for (auto id : kc::all_codecs()) {
    byte_vector env = encode(noise, id);
    ASSERT_EQ(env[0], envelope_plain) << kc::codec_name(id);
    EXPECT_EQ(env.size(), noise.size() + 1) << kc::codec_name(id);
    byte_vector out;
    EXPECT_FALSE(decode_envelope(env, codec_set(), max_size, out));
    EXPECT_EQ(out, noise);
  }
}

TEST(Envelope, UnknownEncodingIsRefused) {
  byte_vector out;
  for (int encoding : {6, 7, 100, 0xFE}) {
    byte_vector env{static_cast<std::uint8_t>(encoding), 0, 0, 0, 1, 0};
    EXPECT_EQ(decode_envelope(env, all_accepted(), max_size, out), errc::option_refused)
        << encoding;
  }
}

TEST(Envelope, EmptyInputIsTruncated) {
  byte_vector out;
  EXPECT_EQ(decode_envelope(byte_span(), all_accepted(), max_size, out), errc::truncated);
}

TEST(Envelope, PlainAboveMaxIsTooLarge) {
  byte_vector env = encode(compressible(101), std::nullopt);
  byte_vector out;
  EXPECT_EQ(decode_envelope(env, all_accepted(), 100, out), errc::too_large);
  EXPECT_FALSE(decode_envelope(env, all_accepted(), 101, out));
  EXPECT_EQ(out.size(), 101u);
}

// One suite per codec, as in Arrow's compression_test.
class EnvelopeCodec : public ::testing::TestWithParam<kc::codec_id> {
 protected:
  kc::codec_id id() const { return GetParam(); }
  std::uint8_t wire() const { return static_cast<std::uint8_t>(GetParam()); }
};

TEST_P(EnvelopeCodec, CompressedRoundTrip) {
  for (std::size_t n : {std::size_t{256}, std::size_t{1000}, std::size_t{20000}}) {
    const byte_vector message = compressible(n);
    byte_vector env = encode(message, id());
    ASSERT_EQ(env[0], wire()) << n;
    EXPECT_EQ(original_size_field(env), n);
    EXPECT_LT(env.size(), message.size() + 1) << n;
    byte_vector out;
    EXPECT_FALSE(decode_envelope(env, all_accepted(), max_size, out)) << n;
    EXPECT_EQ(out, message) << n;
  }
}

TEST_P(EnvelopeCodec, BodyIsTheLibrarysOwnFormat) {
  const byte_vector message = compressible(3000);
  byte_vector env = encode(message, id());
  ASSERT_EQ(env[0], wire());
  byte_vector out;
  EXPECT_FALSE(kc::get_codec(id()).decompress(byte_span(env).subspan(5), max_size, out));
  EXPECT_EQ(out, message);
}

TEST_P(EnvelopeCodec, OnlyThisCodecAcceptedIsEnough) {
  const byte_vector message = compressible(1000);
  codec_set only;
  only.set(wire());
  byte_vector out;
  EXPECT_FALSE(decode_envelope(encode(message, id()), only, max_size, out));
  EXPECT_EQ(out, message);
}

TEST_P(EnvelopeCodec, CodecNotAcceptedIsRefused) {
  byte_vector env = encode(compressible(1000), id());
  ASSERT_EQ(env[0], wire());
  codec_set others = all_accepted();
  others.reset(wire());
  byte_vector out;
  EXPECT_EQ(decode_envelope(env, others, max_size, out), errc::option_refused);
  EXPECT_EQ(decode_envelope(env, codec_set(), max_size, out), errc::option_refused);
}

TEST_P(EnvelopeCodec, OriginalSizeAboveMaxIsTooLarge) {
  const byte_vector message = compressible(1000);
  byte_vector env = encode(message, id());
  ASSERT_EQ(env[0], wire());
  byte_vector out;
  EXPECT_EQ(decode_envelope(env, all_accepted(), 999, out), errc::too_large);
  EXPECT_FALSE(decode_envelope(env, all_accepted(), 1000, out));
  // A header claiming more than the maximum is refused before decompressing anything.
  set_original_size_field(env, 0xffffffffu);
  EXPECT_EQ(decode_envelope(env, all_accepted(), max_size, out), errc::too_large);
}

TEST_P(EnvelopeCodec, OriginalSizeLargerThanDataIsBadLength) {
  const byte_vector message = compressible(1000);
  byte_vector env = encode(message, id());
  ASSERT_EQ(env[0], wire());
  for (std::uint32_t claimed : {1001u, 1500u, 60000u}) {
    set_original_size_field(env, claimed);
    byte_vector out;
    EXPECT_EQ(decode_envelope(env, all_accepted(), max_size, out), errc::bad_length) << claimed;
  }
}

TEST_P(EnvelopeCodec, OriginalSizeSmallerThanDataIsBadLength) {
  const byte_vector message = compressible(1000);
  byte_vector env = encode(message, id());
  ASSERT_EQ(env[0], wire());
  for (std::uint32_t claimed : {999u, 500u, 1u, 0u}) {
    set_original_size_field(env, claimed);
    byte_vector out;
    EXPECT_EQ(decode_envelope(env, all_accepted(), max_size, out), errc::bad_length) << claimed;
  }
}

TEST_P(EnvelopeCodec, EveryTruncationFails) {
  const byte_vector message = compressible(2000);
  const byte_vector env = encode(message, id());
  ASSERT_EQ(env[0], wire());
  for (std::size_t n = 0; n < env.size(); ++n) {
    // Copy, so a read past the truncation point is caught by sanitizers.
    const byte_vector cut(env.begin(), env.begin() + static_cast<std::ptrdiff_t>(n));
    byte_vector out;
    auto ec = decode_envelope(cut, all_accepted(), max_size, out);
    if (n < 5) {
      EXPECT_EQ(ec, errc::truncated) << "length " << n;
    } else {
      EXPECT_EQ(ec, kc::errc::corrupt_input) << "length " << n << ": " << ec.message();
    }
  }
}

TEST_P(EnvelopeCodec, TrailingBytesAreCorrupt) {
  byte_vector env = encode(compressible(2000), id());
  ASSERT_EQ(env[0], wire());
  for (std::uint8_t junk : {0x00, 0x5a, 0xff}) {
    byte_vector longer = env;
    longer.push_back(junk);
    byte_vector out;
    EXPECT_EQ(decode_envelope(longer, all_accepted(), max_size, out), kc::errc::corrupt_input)
        << "junk " << int(junk);
  }
}

TEST_P(EnvelopeCodec, GarbageBodyIsCorrupt) {
  byte_vector env{wire()};
  byte_writer(env).u32(100);
  env.insert(env.end(), 64, 0x00);  // no codec's format starts like this
  byte_vector out;
  EXPECT_EQ(decode_envelope(env, all_accepted(), max_size, out), kc::errc::corrupt_input);
}

std::string codec_param_name(const ::testing::TestParamInfo<kc::codec_id>& info) {
  return std::string(kc::codec_name(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, EnvelopeCodec, ::testing::ValuesIn(kc::all_codecs()),
                         codec_param_name);

}  // namespace
}  // namespace kadnet::core
