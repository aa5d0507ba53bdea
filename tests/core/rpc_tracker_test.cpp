#include "kadnet/core/rpc_tracker.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace kadnet::core {
namespace {

using std::chrono::milliseconds;

time_point at(int ms) { return time_point{} + milliseconds(ms); }

std::vector<request_id> requests_of(const std::vector<rpc_tracker::entry>& entries) {
  std::vector<request_id> out;
  for (const auto& e : entries) out.push_back(e.request);
  return out;
}

TEST(RpcTracker, EmptyTrackerHasNoDeadline) {
  rpc_tracker t;
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.next_deadline().has_value());
  EXPECT_TRUE(t.take_expired(at(1'000'000)).empty());
  EXPECT_TRUE(t.take_connection(1).empty());
  EXPECT_FALSE(t.take(1, 1).has_value());
}

TEST(RpcTracker, IdsAreUniquePerConnection) {
  rpc_tracker t;
  std::set<std::uint32_t> ids_on_1, ids_on_2;
  for (request_id r = 0; r < 100; ++r) {
    EXPECT_TRUE(ids_on_1.insert(t.add(r, 1, 64, false, at(100))).second) << r;
    EXPECT_TRUE(ids_on_2.insert(t.add(1000 + r, 2, 64, false, at(100))).second) << r;
  }
  EXPECT_EQ(t.size(), 200u);
  // Every (connection, id) pair finds its own request.
  for (std::uint32_t id : ids_on_1) {
    auto e = t.take(1, id);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->connection, 1u);
    EXPECT_EQ(e->message_id, id);
    EXPECT_LT(e->request, 100u);
  }
  EXPECT_EQ(t.size(), 100u);
}

TEST(RpcTracker, IdsStayUniqueAfterTakes) {
  rpc_tracker t;
  std::set<std::uint32_t> in_flight;
  for (request_id r = 0; r < 50; ++r) {
    std::uint32_t id = t.add(r, 7, 64, false, at(10));
    EXPECT_EQ(in_flight.count(id), 0u) << "id " << id << " reused while in flight";
    in_flight.insert(id);
    if (r % 3 == 0) {
      ASSERT_TRUE(t.take(7, id).has_value());
      in_flight.erase(id);
    }
  }
  EXPECT_EQ(t.size(), in_flight.size());
}

TEST(RpcTracker, TakeReturnsTheEntryOnceThenNullopt) {
  rpc_tracker t;
  std::uint32_t id = t.add(42, 3, 65, true, at(500));
  auto e = t.take(3, id);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->request, 42u);
  EXPECT_EQ(e->connection, 3u);
  EXPECT_EQ(e->message_id, id);
  EXPECT_EQ(e->opcode, 65);
  EXPECT_TRUE(e->internal);
  EXPECT_EQ(e->deadline, at(500));
  EXPECT_FALSE(t.take(3, id).has_value());
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.next_deadline().has_value());
  EXPECT_TRUE(t.take_expired(at(10'000)).empty());
}

TEST(RpcTracker, TakeOnWrongConnectionOrIdFindsNothing) {
  rpc_tracker t;
  std::uint32_t id = t.add(1, 3, 64, false, at(500));
  EXPECT_FALSE(t.take(4, id).has_value());      // a reply on another connection
  EXPECT_FALSE(t.take(3, id + 1).has_value());  // a forged id
  EXPECT_EQ(t.size(), 1u);
  EXPECT_TRUE(t.take(3, id).has_value());
}

TEST(RpcTracker, TakeRemovesTheDeadline) {
  rpc_tracker t;
  std::uint32_t early = t.add(1, 1, 64, false, at(100));
  t.add(2, 1, 64, false, at(200));
  EXPECT_EQ(t.next_deadline(), at(100));
  ASSERT_TRUE(t.take(1, early).has_value());
  EXPECT_EQ(t.next_deadline(), at(200));
  EXPECT_TRUE(t.take_expired(at(150)).empty());
}

TEST(RpcTracker, TakeAmongEqualDeadlinesRemovesOnlyThatOne) {
  rpc_tracker t;
  std::uint32_t a = t.add(1, 1, 64, false, at(100));
  t.add(2, 1, 64, false, at(100));
  t.add(3, 2, 64, false, at(100));
  ASSERT_TRUE(t.take(1, a).has_value());
  auto expired = t.take_expired(at(100));
  auto reqs = requests_of(expired);
  std::sort(reqs.begin(), reqs.end());
  EXPECT_EQ(reqs, (std::vector<request_id>{2, 3}));
  EXPECT_EQ(t.size(), 0u);
}

TEST(RpcTracker, TakeExpiredInDeadlineOrderAndOnlyUpToNow) {
  rpc_tracker t;
  // Added out of deadline order.
  t.add(30, 1, 64, false, at(300));
  t.add(10, 2, 64, false, at(100));
  t.add(50, 1, 64, false, at(500));
  t.add(20, 3, 64, false, at(200));
  t.add(40, 2, 64, false, at(400));
  EXPECT_EQ(t.next_deadline(), at(100));

  EXPECT_TRUE(t.take_expired(at(99)).empty());
  EXPECT_EQ(t.size(), 5u);

  // A deadline equal to now has expired.
  auto first = t.take_expired(at(300));
  EXPECT_EQ(requests_of(first), (std::vector<request_id>{10, 20, 30}));
  for (const auto& e : first) EXPECT_LE(e.deadline, at(300));
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.next_deadline(), at(400));

  EXPECT_TRUE(t.take_expired(at(300)).empty());
  EXPECT_EQ(requests_of(t.take_expired(at(10'000))), (std::vector<request_id>{40, 50}));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.next_deadline().has_value());
}

TEST(RpcTracker, ExpiredEntriesCannotBeTakenLater) {
  rpc_tracker t;
  std::uint32_t id = t.add(1, 1, 64, false, at(100));
  ASSERT_EQ(t.take_expired(at(100)).size(), 1u);
  EXPECT_FALSE(t.take(1, id).has_value());  // a late reply
}

TEST(RpcTracker, TakeExpiredMatchesBruteForce) {
  constexpr std::uint32_t seed = 77;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  rpc_tracker t;
  std::vector<rpc_tracker::entry> model;
  for (request_id r = 0; r < 300; ++r) {
    int deadline = static_cast<int>(rng() % 1000);
    connection_id c = rng() % 5;
    std::uint32_t id = t.add(r, c, 64, false, at(deadline));
    model.push_back({r, c, id, 64, false, at(deadline)});
  }
  for (int now = 0; now <= 1000; now += 97) {
    auto got = t.take_expired(at(now));
    std::vector<rpc_tracker::entry> due;
    std::erase_if(model, [&](const rpc_tracker::entry& e) {
      if (e.deadline > at(now)) return false;
      due.push_back(e);
      return true;
    });
    ASSERT_EQ(got.size(), due.size()) << "now " << now;
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end(), [](const auto& a, const auto& b) {
      return a.deadline < b.deadline;
    })) << "now " << now;
    auto by_request = [](const auto& a, const auto& b) { return a.request < b.request; };
    std::sort(got.begin(), got.end(), by_request);
    std::sort(due.begin(), due.end(), by_request);
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].request, due[i].request);
      EXPECT_EQ(got[i].message_id, due[i].message_id);
      EXPECT_EQ(got[i].connection, due[i].connection);
    }
    EXPECT_EQ(t.size(), model.size());
  }
}

TEST(RpcTracker, TakeConnectionRemovesOnlyThatConnection) {
  rpc_tracker t;
  std::uint32_t a1 = t.add(1, 1, 64, false, at(100));
  std::uint32_t b1 = t.add(2, 2, 64, false, at(150));
  std::uint32_t a2 = t.add(3, 1, 64, true, at(200));
  std::uint32_t b2 = t.add(4, 2, 64, false, at(250));

  auto closed = t.take_connection(1);
  auto reqs = requests_of(closed);
  std::sort(reqs.begin(), reqs.end());
  EXPECT_EQ(reqs, (std::vector<request_id>{1, 3}));
  for (const auto& e : closed) EXPECT_EQ(e.connection, 1u);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_FALSE(t.take(1, a1).has_value());
  EXPECT_FALSE(t.take(1, a2).has_value());

  // Their deadlines went with them: the next one is connection 2's.
  EXPECT_EQ(t.next_deadline(), at(150));
  EXPECT_TRUE(t.take_connection(1).empty());

  auto expired = t.take_expired(at(1000));
  EXPECT_EQ(requests_of(expired), (std::vector<request_id>{2, 4}));
  EXPECT_FALSE(t.take(2, b1).has_value());
  EXPECT_FALSE(t.take(2, b2).has_value());
  EXPECT_FALSE(t.next_deadline().has_value());
}

TEST(RpcTracker, TakeConnectionOfTheLastEntriesClearsTheDeadline) {
  rpc_tracker t;
  t.add(1, 9, 64, false, at(100));
  t.add(2, 9, 64, false, at(100));
  EXPECT_EQ(t.take_connection(9).size(), 2u);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_FALSE(t.next_deadline().has_value());
  EXPECT_TRUE(t.take_expired(at(100)).empty());
}

TEST(RpcTracker, TakeConnectionWithSharedDeadlinesKeepsTheOthers) {
  rpc_tracker t;
  t.add(1, 1, 64, false, at(100));
  t.add(2, 2, 64, false, at(100));
  t.add(3, 1, 64, false, at(100));
  EXPECT_EQ(t.take_connection(1).size(), 2u);
  EXPECT_EQ(t.next_deadline(), at(100));
  EXPECT_EQ(requests_of(t.take_expired(at(100))), (std::vector<request_id>{2}));
}

}  // namespace
}  // namespace kadnet::core
