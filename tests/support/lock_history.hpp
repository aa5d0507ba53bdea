#pragma once
// The lock tests' history checker (tests/support/lock_history_check.hpp) as GoogleTest failures:
// one per broken rule.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/lock_history_check.hpp"

namespace kadnet::testing {

inline void check_lock_history(std::vector<lease_interval> history) {
  for (const std::string& violation : lock_history_violations(std::move(history))) ADD_FAILURE() << violation;
}

}  // namespace kadnet::testing
