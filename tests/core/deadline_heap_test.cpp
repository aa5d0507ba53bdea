#include "kadnet/core/deadline_heap.hpp"

#include <gtest/gtest.h>

#include <map>

namespace kadnet::core {
namespace {

using namespace std::chrono_literals;

// The owner's side: each key's current deadline, as node_engine keeps it per session.
struct owner {
  deadline_heap<int> heap;
  std::map<int, time_point> current;

  void set(int key, time_point at) {
    current[key] = at;
    heap.file(at, key);
  }
  std::vector<int> take_due(time_point now) {
    return heap.take_due(now, [&](int key, time_point at) {
      auto it = current.find(key);
      if (it == current.end() || it->second != at) return false;
      current.erase(it);
      return true;
    });
  }
};

TEST(DeadlineHeap, TakesDueKeysInDeadlineOrder) {
  owner o;
  const time_point t{};
  o.set(3, t + 30ms);
  o.set(1, t + 10ms);
  o.set(2, t + 20ms);
  EXPECT_EQ(o.heap.earliest(), t + 10ms);
  EXPECT_TRUE(o.take_due(t + 9ms).empty());
  EXPECT_EQ(o.take_due(t + 20ms), (std::vector<int>{1, 2}));
  EXPECT_EQ(o.heap.earliest(), t + 30ms);
  EXPECT_EQ(o.take_due(t + 1h), std::vector<int>{3});
  EXPECT_FALSE(o.heap.earliest());
}

// A key filed again is due at its new deadline only; the old entry is skipped when it surfaces,
// and a key with no current deadline (gone) is never due.
TEST(DeadlineHeap, SkipsEntriesTheOwnerNoLongerHolds) {
  owner o;
  const time_point t{};
  o.set(1, t + 50ms);
  o.set(1, t + 10ms);  // moved earlier
  o.set(2, t + 20ms);
  o.set(2, t + 40ms);  // moved later: its 20 ms entry is stale
  o.set(3, t + 5ms);
  o.current.erase(3);  // gone
  EXPECT_EQ(o.heap.earliest(), t + 5ms);  // a stale entry may wake the owner early
  EXPECT_EQ(o.take_due(t + 30ms), std::vector<int>{1});
  EXPECT_EQ(o.take_due(t + 60ms), std::vector<int>{2});  // 1's 50 ms entry was stale
  EXPECT_EQ(o.heap.size(), 0u);
}

// The same deadline filed twice for a key is taken once: claiming it makes the copy stale.
TEST(DeadlineHeap, ADuplicateEntryIsTakenOnce) {
  owner o;
  const time_point t{};
  o.set(7, t + 10ms);
  o.heap.file(t + 10ms, 7);
  EXPECT_EQ(o.take_due(t + 10ms), std::vector<int>{7});
}

TEST(DeadlineHeap, CompactKeepsOnlyCurrentEntries) {
  owner o;
  const time_point t{};
  for (int i = 0; i < 100; ++i) o.set(1, t + std::chrono::milliseconds(1000 - i));
  o.set(2, t + 2000ms);
  EXPECT_EQ(o.heap.size(), 101u);
  o.heap.compact([&](int key, time_point at) { return o.current.contains(key) && o.current[key] == at; });
  EXPECT_EQ(o.heap.size(), 2u);
  EXPECT_EQ(o.heap.earliest(), t + 901ms);
  EXPECT_EQ(o.take_due(t + 1h), (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace kadnet::core
