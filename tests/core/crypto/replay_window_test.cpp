#include "kadnet/core/crypto/replay_window.hpp"

#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <utility>
#include <vector>

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

TEST(ReplayWindow, AFewMissingOrLateCountersNeedNoBitmap) {
  replay_window w;
  // In order, then pairs swapped, then max_gaps lost at once, then one of them late.
  for (std::uint64_t c = 0; c < 100; ++c) EXPECT_TRUE(w.check_and_accept(c));
  for (std::uint64_t c = 100; c < 200; c += 2) {
    EXPECT_TRUE(w.check_and_accept(c + 1));
    EXPECT_TRUE(w.check_and_accept(c));
    EXPECT_FALSE(w.check(c + 1));
  }
  EXPECT_TRUE(w.check_and_accept(200 + replay_window::max_gaps + 1));  // one missing too many...
  EXPECT_GT(w.heap_bytes(), 0u);                                      // ...so the bitmap took over
  replay_window v;
  for (std::uint64_t c = 0; c < 200; ++c) v.accept(c);
  EXPECT_TRUE(v.check_and_accept(200 + replay_window::max_gaps));  // 200..215 missing
  EXPECT_TRUE(v.check_and_accept(202));
  EXPECT_FALSE(v.check(202));
  EXPECT_FALSE(v.check(199));
  EXPECT_TRUE(v.check(200) && v.check(201) && v.check(203) && v.check(215));
  EXPECT_EQ(v.heap_bytes(), 0u);
  // Lost ones slide out of the window and are forgotten.
  for (std::uint64_t c = 217; c < 217 + 2100; ++c) EXPECT_TRUE(v.check_and_accept(c));
  EXPECT_FALSE(v.check(200));
  EXPECT_EQ(v.heap_bytes(), 0u);
}

TEST(ReplayWindow, SwitchingToTheBitmapKeepsWhatWasSeen) {
  replay_window w;
  w.accept(1000);
  w.accept(1003);  // 1001, 1002 missing
  w.accept(998);   // 999 missing; below 998 never seen
  w.accept(1004 + replay_window::max_gaps - 3 + 1);  // max_gaps - 2 more missing: the bitmap
  ASSERT_GT(w.heap_bytes(), 0u);
  for (std::uint64_t c : {998, 1000, 1003}) EXPECT_FALSE(w.check(c)) << c;
  for (std::uint64_t c : {997, 999, 1001, 1002, 1004, 1009}) EXPECT_TRUE(w.check(c)) << c;
  EXPECT_FALSE(w.check(1004 + replay_window::max_gaps - 3 + 1));
  const replay_window copy = w;
  EXPECT_FALSE(copy.check(1003));
  EXPECT_TRUE(copy.check(1009));
}

// Random walks compared with the rule written out over a set of everything accepted.
TEST(ReplayWindow, MatchesAReferenceModelOnAGentlePath) {
  // Mostly in order, a little reordering and loss: the compact form, and its switch.
  // `skip` in 256: how often a counter is skipped (lost, or to come late).
  for (const auto& [skip, seed] : std::vector<std::pair<std::uint64_t, std::uint32_t>>{
           {4, 1}, {4, 2}, {64, 3}, {64, 4}, {128, 5}, {128, 6}}) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " skip " + std::to_string(skip));
    std::mt19937_64 rng(seed);
    replay_window w;
    std::set<std::uint64_t> seen;
    std::uint64_t highest = 0;
    for (int step = 0; step < 20000; ++step) {
      const std::uint64_t r = rng() % 256;
      std::uint64_t c = r < skip / 2 ? highest + 2 + rng() % 8                            // a few skipped
                        : r < skip ? highest - std::min<std::uint64_t>(highest, rng() % 20)  // late ones
                                   : highest + 1;
      const bool expected = seen.empty() || c > highest || (highest - c <= 2048 && !seen.count(c));
      ASSERT_EQ(w.check(c), expected) << "step " << step << " counter " << c;
      if (expected) {
        w.accept(c);
        seen.insert(c);
        highest = std::max(highest, c);
      }
    }
  }
}

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
