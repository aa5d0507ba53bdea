#pragma once
// The lock tests' history checker: every lease a client counted on, as an interval of virtual
// time, and the check that no two grants' intervals overlap and that tokens grow in grant order
// (grants sorted by when their holders learned of them).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "core/rpc_tracker.hpp"

namespace kadnet::testing {

struct lease_interval {
  std::size_t client;
  std::uint64_t token;
  core::time_point start;  // when the client learned of its grant (or renewal)
  core::time_point end;    // when it stops counting on it: its expiry, or the start of its unlock
  bool renewal;            // a renewal that came after the grant's interval had ended
};

inline void check_lock_history(std::vector<lease_interval> history) {
  std::sort(history.begin(), history.end(), [](const auto& a, const auto& b) { return a.start < b.start; });
  for (std::size_t i = 0; i < history.size(); ++i)
    for (std::size_t j = i + 1; j < history.size(); ++j) {
      const auto& a = history[i];
      const auto& b = history[j];
      if (a.token == b.token) continue;  // a grant and its renewals
      // A grant learned only after its lease was over (its replies were lost) is never counted on.
      if (a.end <= a.start || b.end <= b.start) continue;
      EXPECT_TRUE(a.end <= b.start || b.end <= a.start)
          << "leases overlap: client " << a.client << " token " << a.token << " and client " << b.client
          << " token " << b.token << " by "
          << std::chrono::duration<double, std::milli>(std::min(a.end, b.end) - std::max(a.start, b.start)).count()
          << " ms";
    }
  std::uint64_t last = 0;
  for (const auto& g : history) {
    if (g.renewal) {
      EXPECT_EQ(g.token, last) << "a renewal of another grant than the latest";
      continue;
    }
    EXPECT_GT(g.token, last) << "tokens did not grow at client " << g.client;
    last = g.token;
  }
}

}  // namespace kadnet::testing
