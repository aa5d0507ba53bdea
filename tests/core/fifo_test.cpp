#include "kadnet/core/fifo.hpp"

#include <algorithm>
#include <cstddef>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace kadnet::core {
namespace {

TEST(Fifo, HoldsNoMemoryWhileEmpty) {
  fifo<std::string> q;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.capacity(), 0u);
  EXPECT_EQ(q.begin(), q.end());
}

TEST(Fifo, KeepsOrderAndIndexesFromTheFront) {
  fifo<int> q;
  for (int i = 0; i < 5; ++i) q.push_back(i);
  q.pop_front();
  q.pop_front();
  q.emplace_back(5);
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q.front(), 2);
  EXPECT_EQ(q.back(), 5);
  for (std::size_t i = 0; i < q.size(); ++i) EXPECT_EQ(q[i], static_cast<int>(i) + 2);
  q[1] = 30;
  EXPECT_EQ((std::vector<int>(q.begin(), q.end())), (std::vector<int>{2, 30, 4, 5}));
  const fifo<int>& view = q;
  EXPECT_EQ(view.front(), 2);
  EXPECT_EQ(view[1], 30);
  EXPECT_EQ(view.back(), 5);
}

TEST(Fifo, EmplaceBackReturnsTheNewElement) {
  fifo<std::string> q;
  q.emplace_back(3, 'a') += "b";
  EXPECT_EQ(q.front(), "aaab");
}

TEST(Fifo, DrainingReleasesTheStorage) {
  fifo<std::string> q;
  for (int i = 0; i < 10'000; ++i) q.push_back(std::to_string(i));
  EXPECT_GE(q.capacity(), 10'000u);
  for (int i = 0; i < 10'000; ++i) {
    ASSERT_EQ(q.front(), std::to_string(i));
    q.pop_front();
  }
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.capacity(), 0u);
}

TEST(Fifo, ClearReleasesTheStorage) {
  fifo<int> q;
  for (int i = 0; i < 100; ++i) q.push_back(i);
  q.pop_front();
  q.clear();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.capacity(), 0u);
  q.push_back(7);
  EXPECT_EQ(q.front(), 7);
  EXPECT_EQ(q.size(), 1u);
}

TEST(Fifo, PopFreesWhatTheElementOwnedAtOnce) {
  fifo<std::shared_ptr<int>> q;
  auto first = std::make_shared<int>(1);
  q.push_back(first);
  q.push_back(std::make_shared<int>(2));
  q.pop_front();
  EXPECT_EQ(first.use_count(), 1);  // the consumed slot let go, although it is not reclaimed yet
  EXPECT_EQ(*q.front(), 2);
}

TEST(Fifo, TakesMoveOnlyElements) {
  fifo<std::unique_ptr<int>> q;
  for (int i = 0; i < 100; ++i) q.push_back(std::make_unique<int>(i));
  for (int i = 0; i < 60; ++i) q.pop_front();
  for (int i = 100; i < 200; ++i) q.emplace_back(std::make_unique<int>(i));
  for (int i = 60; i < 200; ++i) {
    ASSERT_EQ(*q.front(), i);
    q.pop_front();
  }
  EXPECT_EQ(q.capacity(), 0u);
}

TEST(Fifo, ASteadyQueueThatNeverDrainsStaysSmall) {
  fifo<int> q;
  for (int i = 0; i < 10; ++i) q.push_back(i);
  for (int i = 10; i < 1'000'000; ++i) {
    q.push_back(i);
    ASSERT_EQ(q.front(), i - 10);
    q.pop_front();
    ASSERT_LE(q.capacity(), 64u) << i;
  }
  EXPECT_EQ(q.size(), 10u);
}

TEST(Fifo, ABurstIsGivenBackWhenATrickleFollows) {
  fifo<int> q;
  for (int i = 0; i < 100'000; ++i) q.push_back(i);
  for (int i = 0; i < 99'990; ++i) q.pop_front();
  // Ten stay queued: the queue never drains, yet the burst's slots are reclaimed.
  for (int i = 100'000; i < 300'000; ++i) {
    q.push_back(i);
    q.pop_front();
  }
  EXPECT_EQ(q.size(), 10u);
  EXPECT_LE(q.capacity(), 64u);
  EXPECT_EQ(q.front(), 299'990);
}

TEST(Fifo, BehavesAsADequeUnderRandomOperations) {
  std::mt19937 rng(7);
  fifo<std::string> q;
  std::deque<std::string> model;
  for (int step = 0; step < 200'000; ++step) {
    // Phases of growth and shrinkage, so the queue both drains and holds long runs.
    const bool growing = (step / 5'000) % 2 == 0;
    const unsigned roll = rng() % 10;
    if (model.empty() || (growing ? roll < 6 : roll < 3)) {
      std::string s = std::to_string(step);
      q.push_back(s);
      model.push_back(s);
    } else {
      ASSERT_EQ(q.front(), model.front()) << step;
      q.pop_front();
      model.pop_front();
    }
    ASSERT_EQ(q.size(), model.size());
    if (!model.empty()) {
      ASSERT_EQ(q.back(), model.back());
      const std::size_t i = rng() % model.size();
      ASSERT_EQ(q[i], model[i]) << step;
    }
  }
  EXPECT_TRUE(std::equal(q.begin(), q.end(), model.begin(), model.end()));
}

}  // namespace
}  // namespace kadnet::core
