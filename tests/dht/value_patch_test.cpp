// Value patches (dht/value_patch.hpp): the wire form, applying splices, and hostile input.
#include "kadnet/dht/value_patch.hpp"

#include <gtest/gtest.h>

#include "kadnet/core/errors.hpp"

namespace kadnet::dht {
namespace {

byte_vector text(std::string_view s) { return byte_vector(s.begin(), s.end()); }

TEST(ValuePatch, SplicesApplyInOrderAgainstTheBase) {
  value_patch p{{splice{0, 5, text("Howdy")}, splice{7, 5, text("kadnet")}, splice{13, 0, text(" and all")}}};
  byte_vector out;
  ASSERT_FALSE(apply_patch(text("Hello, world!"), p, {}, out));
  EXPECT_EQ(out, text("Howdy, kadnet! and all"));
}

TEST(ValuePatch, TheWireFormIsByteExact) {
  value_patch p{{splice{2, 1, text("hi")}, splice{0x30, 0, text("abc")}}};
  byte_vector wire;
  encode_patch(p, wire);
  EXPECT_EQ(to_hex(wire), "0002" "00000002" "00000001" "00000002" "6869" "00000030" "00000000" "00000003" "616263");
  EXPECT_EQ(encoded_size(p), wire.size());
  value_patch back;
  ASSERT_FALSE(decode_patch(wire, {}, back));
  EXPECT_EQ(back, p);
}

TEST(ValuePatch, MalformedWireIsRefusedWithoutAllocating) {
  value_patch p;
  EXPECT_EQ(decode_patch(byte_vector{0x00}, {}, p), core::errc::truncated);
  // 65,535 splices claimed in 2 bytes: refused from the count and the length alone.
  EXPECT_EQ(decode_patch(byte_vector{0xff, 0xff}, {}, p), core::errc::too_large);
  patch_limits many;
  many.max_splices = 70000;
  EXPECT_EQ(decode_patch(byte_vector{0xff, 0xff}, many, p), core::errc::truncated);
  // One splice that claims 4 GiB of inserted bytes.
  byte_vector huge = {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(decode_patch(huge, {}, p), core::errc::too_large);
  byte_vector wire;
  encode_patch(value_patch{{splice{0, 0, text("x")}}}, wire);
  wire.push_back(0);
  EXPECT_EQ(decode_patch(wire, {}, p), core::errc::trailing_bytes);
  EXPECT_TRUE(p.splices.empty()) << "untouched on error";
}

TEST(ValuePatch, SplicesOutOfRangeOrOutOfOrderAreRefused) {
  const byte_vector base = text("0123456789");
  byte_vector out = text("untouched");
  auto refused = [&](value_patch p) { return apply_patch(base, p, {}, out) == core::errc::bad_field; };
  EXPECT_TRUE(refused({{splice{11, 0, {}}}})) << "offset past the end";
  EXPECT_TRUE(refused({{splice{8, 3, {}}}})) << "removes past the end";
  EXPECT_TRUE(refused({{splice{0xffffffff, 0xffffffff, {}}}})) << "offset + removed wraps in 32 bits";
  EXPECT_TRUE(refused({{splice{5, 2, {}}, splice{6, 0, {}}}})) << "overlaps the previous splice";
  EXPECT_TRUE(refused({{splice{5, 0, {}}, splice{4, 0, {}}}})) << "goes backwards";
  EXPECT_EQ(out, text("untouched"));
  EXPECT_FALSE(apply_patch(base, {{splice{10, 0, text("!")}}}, {}, out)) << "appending at the end is fine";
  EXPECT_EQ(out, text("0123456789!"));
}

TEST(ValuePatch, AResultOverTheLimitIsRefused) {
  patch_limits small;
  small.max_value = 12;
  byte_vector out;
  EXPECT_EQ(apply_patch(text("0123456789"), {{splice{0, 0, text("abc")}}}, small, out), core::errc::too_large);
  EXPECT_FALSE(apply_patch(text("0123456789"), {{splice{0, 1, text("ab")}, splice{5, 0, text("c")}}}, small, out));
  EXPECT_EQ(out.size(), 12u);
}

TEST(ValuePatch, MakePatchSendsOnlyTheChangedRuns) {
  byte_vector from(64 * 1024);
  for (std::size_t i = 0; i < from.size(); ++i) from[i] = static_cast<std::uint8_t>(i * 31);
  byte_vector to = from;
  to[100] ^= 1;
  to[105] ^= 1;        // close to the first: one run
  to[40000] ^= 0xff;   // far away: a run of its own
  value_patch p = make_patch(from, to);
  ASSERT_EQ(p.splices.size(), 2u);
  EXPECT_EQ(p.splices[0].offset, 100u);
  EXPECT_EQ(p.splices[0].inserted.size(), 6u);
  EXPECT_EQ(p.splices[1].offset, 40000u);
  EXPECT_LT(encoded_size(p), 40u) << "a few bytes instead of 64 KiB";
  byte_vector out;
  ASSERT_FALSE(apply_patch(from, p, {}, out));
  EXPECT_EQ(out, to);
}

TEST(ValuePatch, MakePatchHandlesInsertionsDeletionsAndEqualValues) {
  for (auto [a, b] : {std::pair{"abcdef", "abXYZcdef"}, std::pair{"abcdef", "abef"}, std::pair{"", "new"},
                      std::pair{"old", ""}, std::pair{"same", "same"}, std::pair{"aaaa", "aaaaaa"}}) {
    value_patch p = make_patch(text(a), text(b));
    byte_vector out;
    ASSERT_FALSE(apply_patch(text(a), p, {}, out)) << a << " -> " << b;
    EXPECT_EQ(out, text(b)) << a << " -> " << b;
    if (std::string_view(a) == b) {
      EXPECT_TRUE(p.splices.empty());
    }
  }
}

}  // namespace
}  // namespace kadnet::dht
