#include "core/crypto/replay_window.hpp"

#include <cstdint>
#include <limits>
#include <random>
#include <set>

#include <gtest/gtest.h>

namespace kadnet::core::crypto {
namespace {

TEST(ReplayWindow, FreshWindowAcceptsAnyCounter) {
  replay_window w;
  EXPECT_FALSE(w.any_accepted());
  EXPECT_TRUE(w.check(0));
  EXPECT_TRUE(w.check(123456));
  EXPECT_TRUE(w.check(std::numeric_limits<std::uint64_t>::max()));
}

TEST(ReplayWindow, CheckDoesNotRecord) {
  replay_window w;
  EXPECT_TRUE(w.check(7));
  EXPECT_TRUE(w.check(7));
  EXPECT_FALSE(w.any_accepted());
}

TEST(ReplayWindow, RefusesACounterAcceptedBefore) {
  replay_window w;
  w.accept(0);
  EXPECT_FALSE(w.check(0));
  EXPECT_TRUE(w.check(1));
  w.accept(1);
  EXPECT_FALSE(w.check(1));
  EXPECT_FALSE(w.check(0));
  EXPECT_EQ(w.highest(), 1u);
}

TEST(ReplayWindow, AcceptsOutOfOrderWithinTheWindowOnce) {
  replay_window w;
  w.accept(100);
  for (std::uint64_t c = 99; c > 50; --c) {
    EXPECT_TRUE(w.check_and_accept(c)) << c;
    EXPECT_FALSE(w.check(c)) << c;
  }
  EXPECT_EQ(w.highest(), 100u);
  EXPECT_TRUE(w.check(50));
}

TEST(ReplayWindow, RefusesCountersMoreThan2048BelowTheHighest) {
  replay_window w;
  w.accept(5000);
  EXPECT_TRUE(w.check(5000 - 2048));
  EXPECT_FALSE(w.check(5000 - 2049));
  EXPECT_FALSE(w.check(0));
  w.accept(5000 - 2049);  // ignored
  EXPECT_FALSE(w.check(5000 - 2049));
  EXPECT_EQ(w.highest(), 5000u);
}

TEST(ReplayWindow, JumpingFarAheadForgetsTheOldBitmap) {
  replay_window w;
  for (std::uint64_t c = 0; c <= 3000; ++c) w.accept(c);
  // A jump of exactly one ring (33 words) lands on the word that still holds old bits.
  const std::uint64_t next = 3000 + 33 * 64;
  w.accept(next);
  for (std::uint64_t c = next - 2048; c < next; ++c) {
    const bool accepted_before = c <= 3000;
    EXPECT_EQ(w.check(c), !accepted_before) << c;
  }
}

TEST(ReplayWindow, HandlesTheTopOfTheCounterSpace) {
  replay_window w;
  const std::uint64_t top = std::numeric_limits<std::uint64_t>::max();
  w.accept(top - 1);
  EXPECT_TRUE(w.check(top));
  w.accept(top);
  EXPECT_FALSE(w.check(top));
  EXPECT_FALSE(w.check(top - 1));
  EXPECT_TRUE(w.check(top - 2));
  EXPECT_FALSE(w.check(0));
}

// Random walks compared with the rule written out over a set of everything accepted.
TEST(ReplayWindow, MatchesAReferenceModel) {
  for (std::uint32_t seed : {1u, 2u, 3u, 4u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    replay_window w;
    std::set<std::uint64_t> seen;
    std::uint64_t highest = 0;
    for (int step = 0; step < 20000; ++step) {
      std::uint64_t c;
      switch (rng() % 4) {
        case 0: c = highest + rng() % 300; break;                      // mostly forward
        case 1: c = highest - std::min<std::uint64_t>(highest, rng() % 2200); break;
        case 2: c = highest + rng() % 5000; break;                     // occasional jumps
        default: c = highest - std::min<std::uint64_t>(highest, rng() % 64); break;
      }
      const bool expected =
          seen.empty() || c > highest || (highest - c <= 2048 && !seen.count(c));
      ASSERT_EQ(w.check(c), expected) << "step " << step << " counter " << c;
      if (expected && rng() % 8 != 0) {  // sometimes a check is not followed by accept
        w.accept(c);
        seen.insert(c);
        highest = std::max(highest, c);
      }
    }
  }
}

}  // namespace
}  // namespace kadnet::core::crypto
