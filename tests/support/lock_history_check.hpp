#pragma once
// The lock history checker, without a test framework (the lock tests and `bench atomic` both use
// it): every lease a client counted on, as an interval of virtual time, and what breaks the rules
// — two grants' intervals that overlap, or tokens that do not grow in grant order (grants sorted
// by when their holders learned of them).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "kadnet/core/rpc_tracker.hpp"

namespace kadnet::testing {

struct lease_interval {
  std::size_t client;
  std::uint64_t token;
  core::time_point start;  // when the client learned of its grant (or renewal)
  core::time_point end;    // when it stops counting on it: its expiry, or the start of its unlock
  bool renewal;            // a renewal that came after the grant's interval had ended
};

// One line per broken rule; empty when the history is valid.
inline std::vector<std::string> lock_history_violations(std::vector<lease_interval> history) {
  std::vector<std::string> found;
  std::sort(history.begin(), history.end(), [](const auto& a, const auto& b) { return a.start < b.start; });
  for (std::size_t i = 0; i < history.size(); ++i)
    for (std::size_t j = i + 1; j < history.size(); ++j) {
      const auto& a = history[i];
      const auto& b = history[j];
      if (a.token == b.token) continue;  // a grant and its renewals
      // A grant learned only after its lease was over (its replies were lost) is never counted on.
      if (a.end <= a.start || b.end <= b.start) continue;
      if (a.end <= b.start || b.end <= a.start) continue;
      const double overlap_ms =
          std::chrono::duration<double, std::milli>(std::min(a.end, b.end) - std::max(a.start, b.start)).count();
      found.push_back("leases overlap: client " + std::to_string(a.client) + " token " + std::to_string(a.token) +
                      " and client " + std::to_string(b.client) + " token " + std::to_string(b.token) + " by " +
                      std::to_string(overlap_ms) + " ms");
    }
  std::uint64_t last = 0;
  for (const auto& g : history) {
    if (g.renewal) {
      if (g.token != last)
        found.push_back("a renewal of another grant than the latest: token " + std::to_string(g.token) +
                        ", latest " + std::to_string(last));
      continue;
    }
    if (g.token <= last)
      found.push_back("tokens did not grow at client " + std::to_string(g.client) + ": token " +
                      std::to_string(g.token) + " after " + std::to_string(last));
    last = g.token;
  }
  return found;
}

}  // namespace kadnet::testing
