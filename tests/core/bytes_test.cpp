#include "kadnet/core/bytes.hpp"

#include <array>
#include <cstdint>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace kadnet {
namespace {

TEST(ByteWriter, WritesBigEndian) {
  byte_vector out;
  byte_writer w(out);
  w.u8(0x01);
  w.u16(0x0203);
  w.u24(0x040506);
  w.u32(0x0708090a);
  w.u64(0x0b0c0d0e0f101112ull);
  EXPECT_EQ(w.size(), 1u + 2 + 3 + 4 + 8);
  byte_vector expected;
  for (std::uint8_t b = 1; b <= 0x12; ++b) expected.push_back(b);
  EXPECT_EQ(out, expected);
}

TEST(ByteWriter, U24DropsTheTopByte) {
  byte_vector out;
  byte_writer(out).u24(0xaabbccdd);
  EXPECT_EQ(out, (byte_vector{0xbb, 0xcc, 0xdd}));
}

TEST(ByteWriter, AppendsToExistingContent) {
  byte_vector out{0xee};
  byte_writer w(out);
  w.u16(0xffff);
  std::array<std::uint8_t, 2> a{0x10, 0x20};
  w.bytes(a);
  w.bytes(as_bytes("hi"));
  EXPECT_EQ(out, (byte_vector{0xee, 0xff, 0xff, 0x10, 0x20, 'h', 'i'}));
  EXPECT_EQ(w.size(), out.size());
}

TEST(ByteReader, ReadsBigEndian) {
  byte_vector in;
  for (std::uint8_t b = 1; b <= 0x12; ++b) in.push_back(b);
  byte_reader r(in);
  std::uint8_t v8 = 0;
  std::uint16_t v16 = 0;
  std::uint32_t v24 = 0, v32 = 0;
  std::uint64_t v64 = 0;
  ASSERT_TRUE(r.u8(v8));
  ASSERT_TRUE(r.u16(v16));
  ASSERT_TRUE(r.u24(v24));
  ASSERT_TRUE(r.u32(v32));
  ASSERT_TRUE(r.u64(v64));
  EXPECT_EQ(v8, 0x01);
  EXPECT_EQ(v16, 0x0203);
  EXPECT_EQ(v24, 0x040506u);
  EXPECT_EQ(v32, 0x0708090au);
  EXPECT_EQ(v64, 0x0b0c0d0e0f101112ull);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.position(), in.size());
}

TEST(ByteReader, RoundTripsExtremeValues) {
  byte_vector buf;
  byte_writer w(buf);
  w.u16(0);
  w.u16(0xffff);
  w.u24(0xffffff);
  w.u32(0xffffffffu);
  w.u64(0xffffffffffffffffull);
  w.u64(0x8000000000000001ull);
  byte_reader r(buf);
  std::uint16_t a = 1, b = 0;
  std::uint32_t c = 0, d = 0;
  std::uint64_t e = 0, f = 0;
  ASSERT_TRUE(r.u16(a) && r.u16(b) && r.u24(c) && r.u32(d) && r.u64(e) && r.u64(f));
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 0xffff);
  EXPECT_EQ(c, 0xffffffu);
  EXPECT_EQ(d, 0xffffffffu);
  EXPECT_EQ(e, 0xffffffffffffffffull);
  EXPECT_EQ(f, 0x8000000000000001ull);
  EXPECT_TRUE(r.empty());
}

TEST(ByteReader, RandomValuesRoundTrip) {
  constexpr std::uint32_t seed = 20240601;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 500; ++i) {
    std::uint64_t x = rng();
    byte_vector buf;
    byte_writer w(buf);
    w.u16(static_cast<std::uint16_t>(x));
    w.u24(static_cast<std::uint32_t>(x) & 0xffffff);
    w.u32(static_cast<std::uint32_t>(x));
    w.u64(x);
    byte_reader r(buf);
    std::uint16_t a;
    std::uint32_t b, c;
    std::uint64_t d;
    ASSERT_TRUE(r.u16(a) && r.u24(b) && r.u32(c) && r.u64(d));
    EXPECT_EQ(a, static_cast<std::uint16_t>(x));
    EXPECT_EQ(b, static_cast<std::uint32_t>(x) & 0xffffff);
    EXPECT_EQ(c, static_cast<std::uint32_t>(x));
    EXPECT_EQ(d, x);
  }
}

// Every read asking for more than remains fails, leaves the output alone and consumes nothing.
TEST(ByteReader, ReadPastTheEndFailsAndConsumesNothing) {
  const byte_vector in{0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7};  // 7 bytes
  for (std::size_t skip = 0; skip <= in.size(); ++skip) {
    SCOPED_TRACE("after skipping " + std::to_string(skip));
    byte_reader r(in);
    byte_span skipped;
    ASSERT_TRUE(r.span(skip, skipped));
    const std::size_t left = in.size() - skip;

    std::uint8_t v8 = 0x55;
    std::uint16_t v16 = 0x5555;
    std::uint32_t v24 = 0x55555555, v32 = 0x55555555;
    std::uint64_t v64 = 0x5555555555555555ull;
    std::array<std::uint8_t, 4> arr{9, 9, 9, 9};
    byte_span sp = as_bytes("unchanged");

    if (left < 1) {
      EXPECT_FALSE(r.u8(v8));
      EXPECT_EQ(v8, 0x55);
    }
    if (left < 2) {
      EXPECT_FALSE(r.u16(v16));
      EXPECT_EQ(v16, 0x5555);
    }
    if (left < 3) {
      EXPECT_FALSE(r.u24(v24));
      EXPECT_EQ(v24, 0x55555555u);
    }
    if (left < 4) {
      EXPECT_FALSE(r.u32(v32));
      EXPECT_EQ(v32, 0x55555555u);
    }
    if (left < 4) {
      EXPECT_FALSE(r.array(arr));
      EXPECT_EQ(arr, (std::array<std::uint8_t, 4>{9, 9, 9, 9}));
    }
    EXPECT_FALSE(r.u64(v64));  // 8 > 7 always
    EXPECT_EQ(v64, 0x5555555555555555ull);
    EXPECT_FALSE(r.span(left + 1, sp));
    EXPECT_EQ(as_chars(sp), "unchanged");

    EXPECT_EQ(r.position(), skip);
    EXPECT_EQ(r.remaining(), left);
    // What remains is still readable in full.
    byte_span rest;
    ASSERT_TRUE(r.span(left, rest));
    EXPECT_EQ(rest.size(), left);
    if (left > 0) {
      EXPECT_EQ(rest.front(), in[skip]);
    }
    EXPECT_TRUE(r.empty());
  }
}

TEST(ByteReader, SpanAndArrayAndRest) {
  const byte_vector in{1, 2, 3, 4, 5, 6};
  byte_reader r(in);
  byte_span s;
  ASSERT_TRUE(r.span(2, s));
  EXPECT_EQ(byte_vector(s.begin(), s.end()), (byte_vector{1, 2}));
  std::array<std::uint8_t, 2> a{};
  ASSERT_TRUE(r.array(a));
  EXPECT_EQ(a, (std::array<std::uint8_t, 2>{3, 4}));
  ASSERT_TRUE(r.span(0, s));
  EXPECT_TRUE(s.empty());
  byte_span rest = r.rest();
  EXPECT_EQ(byte_vector(rest.begin(), rest.end()), (byte_vector{5, 6}));
  EXPECT_TRUE(r.empty());
  EXPECT_TRUE(r.rest().empty());
  std::uint8_t v = 0;
  EXPECT_FALSE(r.u8(v));
}

TEST(ByteReader, EmptyInput) {
  byte_reader r{byte_span()};
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.remaining(), 0u);
  std::uint8_t v = 7;
  EXPECT_FALSE(r.u8(v));
  EXPECT_EQ(v, 7);
  EXPECT_TRUE(r.rest().empty());
}

TEST(Hex, ToHexIsLowerCase) {
  EXPECT_EQ(to_hex(byte_vector{0x00, 0x0f, 0xab, 0xff, 0x10}), "000fabff10");
  EXPECT_EQ(to_hex(byte_span()), "");
}

TEST(Hex, RoundTripsEveryByteValue) {
  byte_vector all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<std::uint8_t>(b));
  std::string hex = to_hex(all);
  ASSERT_EQ(hex.size(), 512u);
  byte_vector back;
  ASSERT_TRUE(from_hex(hex, back));
  EXPECT_EQ(back, all);
}

TEST(Hex, FromHexAcceptsBothCases) {
  byte_vector out;
  ASSERT_TRUE(from_hex("aBcD09Ef", out));
  EXPECT_EQ(out, (byte_vector{0xab, 0xcd, 0x09, 0xef}));
  ASSERT_TRUE(from_hex("", out));
  EXPECT_TRUE(out.empty());
}

TEST(Hex, FromHexRejectsOddLengthLeavingOutputAlone) {
  for (std::string text : {"0", "abc", "00112"}) {
    byte_vector out{0x42};
    EXPECT_FALSE(from_hex(text, out)) << text;
    EXPECT_EQ(out, (byte_vector{0x42})) << text;
  }
}

TEST(Hex, FromHexRejectsNonHexLeavingOutputAlone) {
  // Characters just outside each accepted range, in either position of a pair.
  for (char bad : {'/', ':', '@', 'G', '`', 'g', ' ', 'x', '\0', '\xff'}) {
    for (int pos = 0; pos < 4; ++pos) {
      std::string text = "a0b1";
      text[pos] = bad;
      byte_vector out{0x42};
      EXPECT_FALSE(from_hex(text, out)) << "char " << int(bad) << " at " << pos;
      EXPECT_EQ(out, (byte_vector{0x42}));
    }
  }
}

TEST(Bytes, AsBytesAndAsCharsRoundTrip) {
  std::string text("a\0b", 3);
  byte_span b = as_bytes(text);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[1], 0);
  EXPECT_EQ(as_chars(b), text);
}

}  // namespace
}  // namespace kadnet
