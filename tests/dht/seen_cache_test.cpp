#include "kadnet/dht/seen_cache.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "tests/support/fixed_keys.hpp"

namespace kadnet::dht {
namespace {

using namespace std::chrono_literals;

TEST(SeenCache, ANameIsNewOnceThenSeen) {
  seen_cache seen(8, 10s);
  auto a = testing::fixed_identity(1).id(), b = testing::fixed_identity(2).id();
  core::time_point t0{};
  EXPECT_TRUE(seen.insert(a, 7, t0));
  EXPECT_FALSE(seen.insert(a, 7, t0 + 1s));
  EXPECT_TRUE(seen.contains(a, 7, t0 + 1s));
  // Another sequence, or the same sequence from another origin, is another message.
  EXPECT_TRUE(seen.insert(a, 8, t0));
  EXPECT_TRUE(seen.insert(b, 7, t0));
}

TEST(SeenCache, NamesAreForgottenAfterTheirLifetime) {
  seen_cache seen(8, 10s);
  auto a = testing::fixed_identity(1).id();
  core::time_point t0{};
  EXPECT_TRUE(seen.insert(a, 1, t0));
  EXPECT_TRUE(seen.insert(a, 2, t0 + 5s));
  EXPECT_FALSE(seen.contains(a, 1, t0 + 10s));
  EXPECT_TRUE(seen.contains(a, 2, t0 + 10s));
  EXPECT_TRUE(seen.insert(a, 1, t0 + 10s));
  EXPECT_EQ(seen.size(), 2u);
}

TEST(SeenCache, BeyondCapacityTheOldestNameGoes) {
  seen_cache seen(3, 1h);
  auto a = testing::fixed_identity(1).id();
  core::time_point t0{};
  for (std::uint64_t s = 0; s < 100; ++s) EXPECT_TRUE(seen.insert(a, s, t0));
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_FALSE(seen.contains(a, 96, t0));
  EXPECT_TRUE(seen.contains(a, 97, t0));
  EXPECT_TRUE(seen.contains(a, 99, t0));
}

// The names a cache is searched by are the sender's choice, so their hash is keyed: names picked
// to share a bucket under an unkeyed mix of origin and sequence (here: sequences that make
// first-8-bytes(origin) XOR sequence a multiple of the bucket count) spread out instead of
// lining up in one bucket that every lookup would walk.
TEST(SeenCache, NamesPickedToCollideSpreadOverTheBuckets) {
  std::unordered_map<message_name, int, message_name_hash> names;
  names.reserve(4096);
  const std::size_t buckets = names.bucket_count();
  const core::node_id origin = testing::fixed_identity(1).id();
  std::uint64_t mixed;
  std::memcpy(&mixed, origin.bytes().data(), sizeof mixed);
  for (std::uint64_t j = 0; j < 1000; ++j) names.emplace(message_name{origin, mixed ^ (j * buckets)}, 0);
  ASSERT_EQ(names.bucket_count(), buckets) << "no rehash: the buckets are the ones aimed at";
  std::size_t fullest = 0;
  for (std::size_t b = 0; b < buckets; ++b) fullest = std::max(fullest, names.bucket_size(b));
  EXPECT_LT(fullest, 20u);
}

}  // namespace
}  // namespace kadnet::dht
