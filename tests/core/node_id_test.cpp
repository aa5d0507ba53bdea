#include "kadnet/core/node_id.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>
#include <sodium.h>

namespace kadnet::core {
namespace {

constexpr std::uint32_t property_seed = 0x6b61646e;  // "kadn"

node_id random_id(std::mt19937& rng) {
  node_id::bytes_type b;
  for (auto& byte : b) byte = static_cast<std::uint8_t>(rng());
  return node_id(b);
}

node_id with_bit_flipped(node_id id, int bit) {
  auto b = id.bytes();
  b[bit / 8] ^= static_cast<std::uint8_t>(0x80 >> (bit % 8));
  return node_id(b);
}

// A fixed, non-trivial id: bytes 0x00, 0x07, 0x0e, ...
node_id sample_id() {
  node_id::bytes_type b;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(i * 7);
  return node_id(b);
}

TEST(NodeId, DefaultIsAllZero) {
  node_id id;
  for (auto b : id.bytes()) EXPECT_EQ(b, 0);
  EXPECT_EQ(id.to_hex(), std::string(64, '0'));
}

TEST(NodeId, HexRoundTrip) {
  node_id id = sample_id();
  std::string hex = id.to_hex();
  ASSERT_EQ(hex.size(), 64u);
  EXPECT_EQ(hex.substr(0, 8), "00070e15");
  EXPECT_EQ(id.short_hex(), hex.substr(0, 12));
  auto back = node_id::from_hex(hex);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, id);
}

TEST(NodeId, HexAcceptsUpperCase) {
  std::string upper = "ABCDEF" + std::string(58, 'F');
  auto id = node_id::from_hex(upper);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->bytes()[0], 0xab);
  EXPECT_EQ(id->bytes()[1], 0xcd);
  EXPECT_EQ(id->to_hex(), "abcdef" + std::string(58, 'f'));
}

TEST(NodeId, HexRejectsWrongLength) {
  std::string good = sample_id().to_hex();
  EXPECT_FALSE(node_id::from_hex("").has_value());
  EXPECT_FALSE(node_id::from_hex(good.substr(0, 62)).has_value());  // 31 bytes
  EXPECT_FALSE(node_id::from_hex(good.substr(0, 63)).has_value());  // odd
  EXPECT_FALSE(node_id::from_hex(good + "0").has_value());          // odd
  EXPECT_FALSE(node_id::from_hex(good + "00").has_value());         // 33 bytes
}

TEST(NodeId, HexRejectsNonHexDigits) {
  std::string good = sample_id().to_hex();
  for (char bad : {'g', 'G', 'x', ' ', '-', '\0', ':'}) {
    for (std::size_t pos : {std::size_t{0}, std::size_t{31}, std::size_t{63}}) {
      std::string text = good;
      text[pos] = bad;
      EXPECT_FALSE(node_id::from_hex(text).has_value()) << "char " << int(bad) << " at " << pos;
    }
  }
}

TEST(NodeId, FromBytesNeedsExactly32Bytes) {
  std::vector<std::uint8_t> raw(33, 0x5a);
  EXPECT_FALSE(node_id::from_bytes(byte_span(raw).first(31)).has_value());
  EXPECT_FALSE(node_id::from_bytes(byte_span(raw)).has_value());
  EXPECT_FALSE(node_id::from_bytes(byte_span()).has_value());
  auto id = node_id::from_bytes(byte_span(raw).first(32));
  ASSERT_TRUE(id.has_value());
  std::string expected;
  for (int i = 0; i < 32; ++i) expected += "5a";
  EXPECT_EQ(id->to_hex(), expected);
}

TEST(NodeId, DistanceIsSymmetricAndZeroOnlyForEqualIds) {
  std::mt19937 rng(property_seed);
  SCOPED_TRACE("seed " + std::to_string(property_seed));
  const node_id zero;
  for (int i = 0; i < 200; ++i) {
    node_id a = random_id(rng), b = random_id(rng);
    EXPECT_EQ(a.distance(b), b.distance(a));
    EXPECT_EQ(a.distance(a), zero);
    EXPECT_EQ(a.distance(b) == zero, a == b);
    EXPECT_NE(a.distance(with_bit_flipped(a, i % id_bits)), zero);
  }
}

TEST(NodeId, DistanceComposesByXor) {
  std::mt19937 rng(property_seed + 1);
  SCOPED_TRACE("seed " + std::to_string(property_seed + 1));
  for (int i = 0; i < 200; ++i) {
    node_id a = random_id(rng), b = random_id(rng), c = random_id(rng);
    EXPECT_EQ(a.distance(c), a.distance(b).distance(b.distance(c)));
  }
}

TEST(NodeId, DistanceIsBytewiseXor) {
  node_id::bytes_type x{}, y{};
  x[0] = 0xf0;
  y[0] = 0x0f;
  x[31] = 0x01;
  y[31] = 0x03;
  node_id d = node_id(x).distance(node_id(y));
  EXPECT_EQ(d.bytes()[0], 0xff);
  EXPECT_EQ(d.bytes()[31], 0x02);
  for (std::size_t i = 1; i < 31; ++i) EXPECT_EQ(d.bytes()[i], 0);
}

TEST(NodeId, BitZeroIsTheMostSignificant) {
  node_id::bytes_type b{};
  b[0] = 0x80;
  b[31] = 0x01;
  node_id id(b);
  EXPECT_TRUE(id.bit(0));
  EXPECT_FALSE(id.bit(1));
  EXPECT_FALSE(id.bit(254));
  EXPECT_TRUE(id.bit(255));
}

TEST(NodeId, FirstBitDifferingGivesCpl0AndBucket255) {
  node_id a = sample_id();
  node_id b = with_bit_flipped(a, 0);
  EXPECT_EQ(a.common_prefix_length(b), 0);
  EXPECT_EQ(b.common_prefix_length(a), 0);
  EXPECT_EQ(a.bucket_index(b), 255);
}

TEST(NodeId, EqualIdsGiveCpl256AndBucketMinus1) {
  node_id a = sample_id();
  EXPECT_EQ(a.common_prefix_length(a), 256);
  EXPECT_EQ(a.bucket_index(a), -1);
  node_id zero;
  EXPECT_EQ(zero.common_prefix_length(node_id()), 256);
  EXPECT_EQ(zero.bucket_index(node_id()), -1);
}

TEST(NodeId, LastBitDifferingGivesCpl255AndBucket0) {
  node_id a = sample_id();
  node_id b = with_bit_flipped(a, 255);
  EXPECT_EQ(a.common_prefix_length(b), 255);
  EXPECT_EQ(a.bucket_index(b), 0);
}

TEST(NodeId, EveryBitPositionGivesItsCplAndBucket) {
  node_id a = sample_id();
  for (int bit = 0; bit < id_bits; ++bit) {
    node_id b = with_bit_flipped(a, bit);
    EXPECT_EQ(a.common_prefix_length(b), bit) << "bit " << bit;
    EXPECT_EQ(a.bucket_index(b), 255 - bit) << "bit " << bit;
    // Lower bits differing too do not change the shared prefix.
    if (bit < 255) {
      node_id c = with_bit_flipped(b, 255);
      EXPECT_EQ(a.common_prefix_length(c), bit) << "bit " << bit;
    }
  }
}

TEST(NodeId, BucketIndexMatchesDistanceRange) {
  // bucket i holds ids at distance in [2^i, 2^(i+1)): the highest set bit of the distance.
  std::mt19937 rng(property_seed + 2);
  SCOPED_TRACE("seed " + std::to_string(property_seed + 2));
  for (int i = 0; i < 200; ++i) {
    node_id a = random_id(rng);
    node_id b = random_id(rng);
    // Force a long shared prefix sometimes, so low buckets are exercised.
    int keep = static_cast<int>(rng() % 256);
    auto bb = b.bytes();
    for (int bit = 0; bit < keep; ++bit) {
      std::uint8_t mask = static_cast<std::uint8_t>(0x80 >> (bit % 8));
      bb[bit / 8] = static_cast<std::uint8_t>((bb[bit / 8] & ~mask) | (a.bytes()[bit / 8] & mask));
    }
    b = node_id(bb);
    node_id d = a.distance(b);
    int highest = -1;
    for (int bit = 0; bit < id_bits; ++bit) {
      if (d.bit(bit)) {
        highest = 255 - bit;
        break;
      }
    }
    EXPECT_EQ(a.bucket_index(b), highest);
    EXPECT_EQ(b.bucket_index(a), highest);
  }
}

TEST(NodeId, CloserToSortsLikeBruteForce) {
  std::mt19937 rng(property_seed + 3);
  SCOPED_TRACE("seed " + std::to_string(property_seed + 3));
  node_id target = random_id(rng);
  std::vector<node_id> ids;
  for (int i = 0; i < 200; ++i) ids.push_back(random_id(rng));
  ids.push_back(target);  // distance zero sorts first

  // Brute force: compare the XOR distances byte by byte as 256-bit big-endian numbers.
  auto dist_bytes = [&](const node_id& x) {
    std::array<std::uint8_t, 32> d;
    for (std::size_t i = 0; i < 32; ++i) d[i] = x.bytes()[i] ^ target.bytes()[i];
    return d;
  };
  std::vector<node_id> expected = ids;
  std::sort(expected.begin(), expected.end(), [&](const node_id& x, const node_id& y) {
    auto dx = dist_bytes(x), dy = dist_bytes(y);
    for (std::size_t i = 0; i < 32; ++i) {
      if (dx[i] != dy[i]) return dx[i] < dy[i];
    }
    return false;
  });

  std::vector<node_id> sorted = ids;
  std::sort(sorted.begin(), sorted.end(), closer_to(target));
  EXPECT_EQ(sorted, expected);
  EXPECT_EQ(sorted.front(), target);

  closer_to cmp(target);
  for (std::size_t i = 0; i + 1 < sorted.size(); ++i) {
    EXPECT_FALSE(cmp(sorted[i + 1], sorted[i])) << i;
  }
  EXPECT_FALSE(cmp(target, target));
}

TEST(NodeId, CloserToUsesXorNotNumericDistance) {
  // target 0x80.., a = 0x7f.. (numerically adjacent but first bit differs), b = 0xff..
  node_id::bytes_type t{}, a{}, b{};
  t[0] = 0x80;
  a.fill(0xff);
  a[0] = 0x7f;
  b.fill(0xff);
  closer_to cmp{node_id(t)};
  EXPECT_TRUE(cmp(node_id(b), node_id(a)));
  EXPECT_FALSE(cmp(node_id(a), node_id(b)));
}

TEST(NodeId, HashOfIsBlake2b256OfTheText) {
  ASSERT_GE(sodium_init(), 0);
  for (std::string text : {std::string(), std::string("hello"), std::string("kadnet key"),
                           std::string(1000, 'x')}) {
    std::array<std::uint8_t, 32> expected;
    crypto_generichash(expected.data(), expected.size(),
                       reinterpret_cast<const unsigned char*>(text.data()), text.size(), nullptr,
                       0);
    EXPECT_EQ(node_id::hash_of(as_bytes(text)).bytes(), expected) << "text size " << text.size();
  }
}

TEST(NodeId, HashOfKnownVector) {
  // BLAKE2b-256("abc"), as computed by Python: hashlib.blake2b(b"abc", digest_size=32).
  EXPECT_EQ(node_id::hash_of(as_bytes("abc")).to_hex(),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

TEST(NodeId, StdHashIsUsableInUnorderedSet) {
  std::mt19937 rng(property_seed + 4);
  std::unordered_set<node_id> set;
  std::vector<node_id> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(random_id(rng));
  for (const auto& id : ids) set.insert(id);
  for (const auto& id : ids) set.insert(id);
  EXPECT_EQ(set.size(), ids.size());
  for (const auto& id : ids) EXPECT_EQ(set.count(id), 1u);
}

}  // namespace
}  // namespace kadnet::core
