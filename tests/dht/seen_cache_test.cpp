#include "kadnet/dht/seen_cache.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace kadnet::dht
