#include "kadnet/transports/sim/network.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace kadnet::sim {
namespace {

using namespace std::chrono_literals;

struct arrival {
  endpoint_id from;
  std::uint32_t number;  // the datagram's first four bytes
  time_point at;
};

// Endpoints that record what reaches them.
class recorder {
 public:
  explicit recorder(network& net) : net_(net) {}

  endpoint_id add() {
    const std::size_t slot = inbox_.size();
    inbox_.emplace_back();
    return net_.add_endpoint([this, slot](endpoint_id from, byte_span bytes, time_point now) {
      std::uint32_t n = 0;
      for (std::size_t i = 0; i < 4 && i < bytes.size(); ++i) n = (n << 8) | bytes[i];
      inbox_[slot].push_back({from, n, now});
    });
  }
  const std::vector<arrival>& inbox(endpoint_id id) const { return inbox_.at(id); }

 private:
  network& net_;
  std::vector<std::vector<arrival>> inbox_;
};

byte_vector numbered(std::uint32_t n, std::size_t size = 4) {
  byte_vector b(std::max<std::size_t>(size, 4), 0);
  b[0] = static_cast<std::uint8_t>(n >> 24);
  b[1] = static_cast<std::uint8_t>(n >> 16);
  b[2] = static_cast<std::uint8_t>(n >> 8);
  b[3] = static_cast<std::uint8_t>(n);
  return b;
}

// A small conversation on impaired links: endpoints echo what they receive a few times, so the
// trace depends on every random draw.
std::array<std::uint8_t, 32> impaired_run(std::uint64_t seed) {
  link_config c;
  c.latency = 10ms;
  c.jitter = 5ms;
  c.loss = 0.1;
  c.duplicate = 0.05;
  c.reorder = 0.05;
  c.bandwidth = 1'000'000;
  network net(seed, c);
  std::vector<endpoint_id> ids;
  for (int i = 0; i < 8; ++i) {
    ids.push_back(net.add_endpoint([&net, i](endpoint_id from, byte_span bytes, time_point) {
      if (bytes.size() < 40) {
        byte_vector longer(bytes.begin(), bytes.end());
        longer.push_back(static_cast<std::uint8_t>(i));
        net.send(static_cast<endpoint_id>(i), from, longer);
      }
    }));
  }
  for (std::uint32_t n = 0; n < 200; ++n)
    net.send(ids[n % 8], ids[(n * 3 + 1) % 8], numbered(n));
  net.run_for(10s);
  EXPECT_EQ(net.pending_events(), 0u);
  return net.trace_hash();
}

TEST(SimNetwork, SameSeedSameTraceOtherSeedDiffers) {
  const auto a = impaired_run(42);
  EXPECT_EQ(a, impaired_run(42));
  EXPECT_NE(a, impaired_run(43));
  EXPECT_NE(a, (std::array<std::uint8_t, 32>{}));
}

TEST(SimNetwork, PerfectLinkDeliversEverythingAtOnce) {
  network net(1);
  recorder r(net);
  const endpoint_id a = r.add(), b = r.add();
  net.send(a, b, numbered(7));
  EXPECT_TRUE(r.inbox(b).empty());  // nothing moves until the loop runs
  EXPECT_TRUE(net.step());
  ASSERT_EQ(r.inbox(b).size(), 1u);
  EXPECT_EQ(r.inbox(b)[0].from, a);
  EXPECT_EQ(r.inbox(b)[0].number, 7u);
  EXPECT_EQ(r.inbox(b)[0].at, epoch);
  EXPECT_FALSE(net.step());
  EXPECT_EQ(net.counters().sent, 1u);
  EXPECT_EQ(net.counters().delivered, 1u);
  EXPECT_EQ(net.counters().bytes_delivered, 4u);
}

TEST(SimNetwork, LossRateIsNearConfigured) {
  link_config c;
  c.loss = 0.1;
  network net(7, c);
  recorder r(net);
  const endpoint_id a = r.add(), b = r.add();
  const int n = 10000;
  for (int i = 0; i < n; ++i) net.send(a, b, numbered(static_cast<std::uint32_t>(i)));
  net.run_for(1s);
  // Binomial(10000, 0.1): mean 1000, standard deviation 30; allow five of them.
  const auto lost = net.counters().lost;
  EXPECT_GE(lost, 850u);
  EXPECT_LE(lost, 1150u);
  EXPECT_EQ(r.inbox(b).size() + lost, static_cast<std::size_t>(n));
}

TEST(SimNetwork, DelaysStayWithinLatencyAndJitter) {
  link_config c;
  c.latency = 10ms;
  c.jitter = 5ms;
  network net(3, c);
  recorder r(net);
  const endpoint_id a = r.add(), b = r.add();
  for (std::uint32_t i = 0; i < 2000; ++i) net.send(a, b, numbered(i));
  net.run_for(1s);
  ASSERT_EQ(r.inbox(b).size(), 2000u);
  auto [lo, hi] = std::minmax_element(r.inbox(b).begin(), r.inbox(b).end(),
                                      [](const arrival& x, const arrival& y) { return x.at < y.at; });
  EXPECT_GE(lo->at - epoch, 5ms);
  EXPECT_LE(hi->at - epoch, 15ms);
  // The jitter is used across its range, not stuck at one end.
  EXPECT_LT(lo->at - epoch, 6ms);
  EXPECT_GT(hi->at - epoch, 14ms);
}

TEST(SimNetwork, WithoutJitterEveryDelayIsTheLatency) {
  link_config c;
  c.latency = 25ms;
  network net(3, c);
  recorder r(net);
  const endpoint_id a = r.add(), b = r.add();
  for (std::uint32_t i = 0; i < 100; ++i) net.send(a, b, numbered(i));
  net.run_for(1s);
  ASSERT_EQ(r.inbox(b).size(), 100u);
  for (const arrival& x : r.inbox(b)) EXPECT_EQ(x.at, epoch + 25ms);
}

TEST(SimNetwork, BandwidthSerializesDatagramsExactly) {
  link_config c;
  c.latency = 10ms;
  c.bandwidth = 1000;  // 100-byte datagrams take 100 ms each
  network net(1, c);
  recorder r(net);
  const endpoint_id a = r.add(), b = r.add();
  for (std::uint32_t i = 0; i < 5; ++i) net.send(a, b, numbered(i, 100));
  net.run_for(1s);
  ASSERT_EQ(r.inbox(b).size(), 5u);
  for (std::uint32_t i = 0; i < 5; ++i) {
    EXPECT_EQ(r.inbox(b)[i].number, i);
    EXPECT_EQ(r.inbox(b)[i].at, epoch + 10ms + (i + 1) * 100ms);
  }
  // The queue drained: the next datagram waits for nobody.
  const time_point later = net.now();
  net.send(a, b, numbered(9, 100));
  net.run_for(1s);
  EXPECT_EQ(r.inbox(b).back().at, later + 110ms);
  // Queues are per directed link: the reverse direction was never busy.
  net.send(b, a, numbered(10, 100));
  net.send(a, b, numbered(11, 100));
  net.run_for(1s);
  EXPECT_EQ(r.inbox(a).back().at - r.inbox(b).back().at, 0ms);
}

TEST(SimNetwork, FullQueueDropsTheTail) {
  link_config c;
  c.bandwidth = 1000;
  c.max_queue_bytes = 250;
  network net(1, c);
  recorder r(net);
  const endpoint_id a = r.add(), b = r.add();
  // 100 + 100 bytes fit; the third would make 300 bytes waiting.
  for (std::uint32_t i = 0; i < 3; ++i) net.send(a, b, numbered(i, 100));
  EXPECT_EQ(net.counters().queue_drops, 1u);
  // Half of the first datagram has gone out: 150 bytes wait, so 100 more fit again.
  net.run_for(50ms);
  net.send(a, b, numbered(3, 100));
  EXPECT_EQ(net.counters().queue_drops, 1u);
  net.run_for(1s);
  ASSERT_EQ(r.inbox(b).size(), 3u);
  EXPECT_EQ(r.inbox(b)[2].number, 3u);
  EXPECT_EQ(r.inbox(b)[2].at, epoch + 300ms);
}

TEST(SimNetwork, DuplicatesOnlyWhenConfigured) {
  for (double p : {0.0, 0.2}) {
    link_config c;
    c.latency = 5ms;
    c.jitter = 2ms;
    c.duplicate = p;
    network net(11, c);
    recorder r(net);
    const endpoint_id a = r.add(), b = r.add();
    for (std::uint32_t i = 0; i < 1000; ++i) net.send(a, b, numbered(i));
    net.run_for(1s);
    std::vector<int> copies(1000, 0);
    for (const arrival& x : r.inbox(b)) ++copies[x.number];
    const auto twice = static_cast<std::size_t>(std::count(copies.begin(), copies.end(), 2));
    EXPECT_EQ(std::count(copies.begin(), copies.end(), 0), 0);
    EXPECT_EQ(twice, net.counters().duplicated);
    if (p == 0) {
      EXPECT_EQ(twice, 0u);
      EXPECT_EQ(net.counters().delivered, 1000u);
    } else {
      EXPECT_GT(twice, 100u);  // Binomial(1000, 0.2): 200 ± 13
      EXPECT_LT(twice, 300u);
    }
  }
}

TEST(SimNetwork, ReordersOnlyWhenConfigured) {
  for (double p : {0.0, 0.1}) {
    link_config c;
    c.latency = 10ms;
    c.reorder = p;
    c.reorder_delay = 5ms;
    network net(5, c);
    recorder r(net);
    const endpoint_id a = r.add(), b = r.add();
    for (std::uint32_t i = 0; i < 1000; ++i) {
      net.send(a, b, numbered(i));
      net.run_for(1ms);
    }
    net.run_for(1s);
    ASSERT_EQ(r.inbox(b).size(), 1000u);
    std::size_t overtaken = 0;
    for (std::size_t i = 1; i < r.inbox(b).size(); ++i)
      if (r.inbox(b)[i].number < r.inbox(b)[i - 1].number) ++overtaken;
    if (p == 0) {
      EXPECT_EQ(overtaken, 0u);
      EXPECT_EQ(net.counters().reordered, 0u);
    } else {
      EXPECT_GT(overtaken, 20u);
      EXPECT_GT(net.counters().reordered, 50u);  // Binomial(1000, 0.1): 100 ± 9.5
    }
  }
}

TEST(SimNetwork, PerLinkOverrideAppliesToOneDirection) {
  network net(1);
  recorder r(net);
  const endpoint_id a = r.add(), b = r.add();
  link_config slow;
  slow.latency = 50ms;
  net.set_link(a, b, slow);
  net.send(a, b, numbered(1));
  net.send(b, a, numbered(2));
  net.run_for(1s);
  EXPECT_EQ(r.inbox(b).at(0).at, epoch + 50ms);
  EXPECT_EQ(r.inbox(a).at(0).at, epoch);
}

TEST(SimNetwork, PartitionDropsAcrossAndHealRestores) {
  link_config c;
  c.latency = 10ms;
  network net(1, c);
  recorder r(net);
  const endpoint_id a = r.add(), b = r.add(), x = r.add();
  net.send(a, x, numbered(1));  // in flight when the partition comes
  net.run_for(5ms);
  net.partition({a, b}, {x});
  net.send(a, x, numbered(2));
  net.send(x, b, numbered(3));
  net.send(a, b, numbered(4));  // same side
  net.run_for(1s);
  EXPECT_TRUE(r.inbox(x).empty());
  EXPECT_TRUE(r.inbox(a).empty());
  ASSERT_EQ(r.inbox(b).size(), 1u);
  EXPECT_EQ(r.inbox(b)[0].number, 4u);
  EXPECT_EQ(net.counters().unreachable, 3u);

  net.heal();
  net.send(a, x, numbered(5));
  net.send(x, b, numbered(6));
  net.run_for(1s);
  ASSERT_EQ(r.inbox(x).size(), 1u);
  EXPECT_EQ(r.inbox(x)[0].number, 5u);
  ASSERT_EQ(r.inbox(b).size(), 2u);
  EXPECT_EQ(r.inbox(b)[1].number, 6u);
}

TEST(SimNetwork, DownEndpointReceivesNothing) {
  link_config c;
  c.latency = 10ms;
  network net(1, c);
  recorder r(net);
  const endpoint_id a = r.add(), b = r.add();
  net.send(a, b, numbered(1));  // in flight when b goes down
  net.set_down(b, true);
  EXPECT_TRUE(net.is_down(b));
  net.send(a, b, numbered(2));
  net.send(b, a, numbered(3));  // a dead node sends nothing either
  net.run_for(1s);
  EXPECT_TRUE(r.inbox(b).empty());
  EXPECT_TRUE(r.inbox(a).empty());

  net.set_down(b, false);
  net.send(a, b, numbered(4));
  net.run_for(1s);
  ASSERT_EQ(r.inbox(b).size(), 1u);
  EXPECT_EQ(r.inbox(b)[0].number, 4u);
}

TEST(SimNetwork, RemovedEndpointReceivesNothingAndUnknownIdsAreDrops) {
  network net(1);
  recorder r(net);
  const endpoint_id a = r.add(), b = r.add();
  net.remove_endpoint(b);
  net.send(a, b, numbered(1));
  net.send(a, 999, numbered(2));
  net.run_for(1s);
  EXPECT_TRUE(r.inbox(b).empty());
  EXPECT_EQ(net.counters().unreachable, 2u);
  EXPECT_THROW(net.send(999, a, numbered(3)), std::out_of_range);
  EXPECT_EQ(r.add(), 2u);  // ids are never reused
}

TEST(SimNetwork, ReceiverMayRemoveItselfAndAddEndpoints) {
  network net(1);
  std::vector<endpoint_id> added;
  endpoint_id self = 0;
  self = net.add_endpoint([&](endpoint_id, byte_span, time_point) {
    for (int i = 0; i < 100; ++i) added.push_back(net.add_endpoint([](endpoint_id, byte_span, time_point) {}));
    net.remove_endpoint(self);
  });
  const endpoint_id other = net.add_endpoint([](endpoint_id, byte_span, time_point) {});
  net.send(other, self, numbered(1));
  net.send(other, self, numbered(2));
  net.run_for(1s);
  EXPECT_EQ(added.size(), 100u);
  EXPECT_EQ(net.counters().delivered, 1u);
}

TEST(SimNetwork, TimersFireInTimeThenInsertionOrder) {
  network net(1);
  std::vector<std::string> fired;
  net.schedule(epoch + 30ms, [&] { fired.push_back("30"); });
  net.schedule(epoch + 10ms, [&] { fired.push_back("10"); });
  net.schedule(epoch + 20ms, [&] { fired.push_back("20a"); });
  net.schedule(epoch + 20ms, [&] { fired.push_back("20b"); });
  const timer_id cancelled = net.schedule(epoch + 15ms, [&] { fired.push_back("15"); });
  EXPECT_TRUE(net.cancel(cancelled));
  EXPECT_FALSE(net.cancel(cancelled));
  // A timer may schedule another, also in the past (it runs at the current time).
  net.schedule(epoch + 25ms, [&] {
    net.schedule(epoch, [&] { fired.push_back("late at " + std::to_string((net.now() - epoch) / 1ms)); });
  });
  net.run_for(100ms);
  EXPECT_EQ(fired, (std::vector<std::string>{"10", "20a", "20b", "late at 25", "30"}));
  EXPECT_EQ(net.now(), epoch + 100ms);
}

TEST(SimNetwork, RunUntilStopsWhenDoneOrAtTheLimit) {
  network net(1);
  int count = 0;
  for (int i = 1; i <= 10; ++i) net.schedule(epoch + i * 1s, [&] { ++count; });
  EXPECT_TRUE(net.run_until([&] { return count == 3; }, epoch + 1h));
  EXPECT_EQ(net.now(), epoch + 3s);
  EXPECT_FALSE(net.run_until([&] { return count == 100; }, epoch + 5500ms));
  EXPECT_EQ(count, 5);
  EXPECT_EQ(net.now(), epoch + 5500ms);
  net.run_for(1h);
  EXPECT_EQ(count, 10);
  EXPECT_EQ(net.now(), epoch + 5500ms + 1h);
  EXPECT_FALSE(net.step());
}

TEST(SimNetwork, DatagramsAndTimersShareOneTimeline) {
  link_config c;
  c.latency = 10ms;
  network net(1, c);
  std::vector<std::string> order;
  const endpoint_id a = net.add_endpoint([&](endpoint_id, byte_span, time_point) { order.push_back("datagram"); });
  net.schedule(epoch + 10ms, [&] { order.push_back("timer first"); });
  net.send(a, a, numbered(1));  // same time, scheduled later
  net.schedule(epoch + 9ms, [&] { order.push_back("timer before"); });
  net.run_for(1s);
  EXPECT_EQ(order, (std::vector<std::string>{"timer before", "timer first", "datagram"}));
}

TEST(SimNetwork, CarriesAHundredThousandEndpoints) {
  link_config c;
  c.latency = 10ms;
  c.jitter = 5ms;
  network net(9, c);
  const std::uint32_t n = 100000;
  std::vector<std::uint32_t> got(n, 0);
  for (std::uint32_t i = 0; i < n; ++i)
    net.add_endpoint([&got, i](endpoint_id, byte_span, time_point) { ++got[i]; });
  // A ring: everyone sends to the next.
  for (std::uint32_t i = 0; i < n; ++i) net.send(i, (i + 1) % n, numbered(i));
  net.run_for(1s);
  EXPECT_EQ(std::count(got.begin(), got.end(), 1u), static_cast<std::ptrdiff_t>(n));
  EXPECT_EQ(net.counters().delivered, n);
}

}  // namespace
}  // namespace kadnet::sim
