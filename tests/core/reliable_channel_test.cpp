#include "kadnet/core/reliable_channel.hpp"

#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "kadnet/core/errors.hpp"

namespace kadnet::core {
namespace {
using namespace std::chrono_literals;

// Two channels joined by a lossy, reordering path on virtual time. Every frame takes `delay`
// (plus up to `jitter`) and is lost with probability `loss`; time jumps from event to event.
struct channel_pair {
  struct in_transit { int to; wire::packet_type type; byte_vector plaintext; };

  explicit channel_pair(reliable_config config = {}, std::uint64_t seed = 1)
      : rng(seed), a(config, now), b(config, now) {}

  reliable_channel& side(int i) { return i == 0 ? a : b; }

  void flush(int from) {
    while (auto f = side(from).poll_transmit(now)) {
      ++frames_sent;
      if (std::bernoulli_distribution(loss)(rng)) continue;
      auto extra = jitter.count() ? std::chrono::microseconds(std::uniform_int_distribution<long>(0, jitter.count())(rng))
                                  : 0us;
      if (from == 0 && f->type == wire::packet_type::reliable_data) {
        if (drop_a.count(++data_frames_a)) continue;
        if (hold_every > 0 && data_frames_a % hold_every == 0) extra += hold_for;
      }
      wire_.emplace(now + delay + extra, in_transit{1 - from, f->type, std::move(f->plaintext)});
    }
  }
  void pump() {
    flush(0);
    flush(1);
    while (auto u = b.poll_delivered()) {
      received.push_back(std::move(*u));
      if (auto_release) b.release(1);
    }
    while (auto u = a.poll_delivered()) a.release(1);
  }
  // Runs until `done` holds or `limit` of virtual time passed; false on the limit.
  template <typename Done>
  bool run(Done done, std::chrono::milliseconds limit = 600s) {
    const time_point end = now + limit;
    pump();
    while (!done()) {
      time_point next = end;
      if (!wire_.empty()) next = std::min(next, wire_.begin()->first);
      for (int i = 0; i < 2; ++i)
        if (auto d = side(i).next_deadline()) next = std::min(next, *d);
      if (next >= end) return false;
      now = std::max(now, next);
      while (!wire_.empty() && wire_.begin()->first <= now) {
        auto t = std::move(wire_.begin()->second);
        wire_.erase(wire_.begin());
        EXPECT_FALSE(side(t.to).on_frame(t.type, t.plaintext, now));
      }
      for (int i = 0; i < 2; ++i)
        if (auto d = side(i).next_deadline(); d && *d <= now) side(i).handle_timeout(now);
      pump();
    }
    return true;
  }

  time_point now{std::chrono::seconds(1000)};
  std::mt19937_64 rng;
  double loss = 0;
  std::chrono::microseconds delay{5000};
  std::chrono::microseconds jitter{0};
  // Every hold_every-th data frame from A is held back hold_for more: later ones overtake it.
  std::size_t hold_every = 0, data_frames_a = 0;
  std::chrono::microseconds hold_for{0};
  std::set<std::size_t> drop_a;  // A's data frames (counted from 1) that the path loses

  bool auto_release = true;
  reliable_channel a, b;
  std::vector<byte_vector> received;
  std::size_t frames_sent = 0;
  std::multimap<time_point, in_transit> wire_;
};

byte_vector unit_of(std::uint32_t i, std::size_t size = 1000) {
  byte_vector u(size);
  for (std::size_t k = 0; k < size; ++k) u[k] = static_cast<std::uint8_t>(i * 31 + k);
  return u;
}

void expect_in_order(const std::vector<byte_vector>& received, std::uint32_t count) {
  ASSERT_EQ(received.size(), count);
  for (std::uint32_t i = 0; i < count; ++i) ASSERT_EQ(received[i], unit_of(i)) << "unit " << i;
}

TEST(ReliableChannel, DeliversInOrderOnACleanPath) {
  channel_pair p;
  for (std::uint32_t i = 0; i < 2000; ++i) ASSERT_TRUE(p.a.queue(unit_of(i)));
  ASSERT_TRUE(p.run([&] { return p.received.size() == 2000; }));
  expect_in_order(p.received, 2000);
  EXPECT_EQ(p.a.counters().retransmits, 0u);
  EXPECT_EQ(p.b.counters().duplicates_in, 0u);
  // The RTT estimate converges on the path's 10 ms round trip (plus at most the ack delay).
  EXPECT_GE(p.a.smoothed_rtt(), 10ms);
  EXPECT_LE(p.a.smoothed_rtt(), 13ms);
}

TEST(ReliableChannel, RecoversFromLossAndReorderingInOrder) {
  channel_pair p({}, 7);
  p.loss = 0.10;
  p.jitter = 8000us;  // more than the spacing of packets: reorders heavily
  for (std::uint32_t i = 0; i < 5000; ++i) ASSERT_TRUE(p.a.queue(unit_of(i)));
  ASSERT_TRUE(p.run([&] { return p.received.size() == 5000; }));
  expect_in_order(p.received, 5000);
  EXPECT_GT(p.a.counters().retransmits, 400u);
  EXPECT_GT(p.a.counters().fast_retransmits, 0u);
}

TEST(ReliableChannel, ASingleLossIsRepairedByFastRetransmitWithoutATimeout) {
  channel_pair p;
  for (std::uint32_t i = 0; i < 50; ++i) ASSERT_TRUE(p.a.queue(unit_of(i)));
  // Lose exactly the third data frame A sends.
  std::size_t data_frames = 0;
  p.flush(0);
  for (auto it = p.wire_.begin(); it != p.wire_.end(); ++it)
    if (it->second.to == 1 && it->second.type == wire::packet_type::reliable_data && ++data_frames == 3) {
      p.wire_.erase(it);
      break;
    }
  ASSERT_TRUE(p.run([&] { return p.received.size() == 50; }));
  expect_in_order(p.received, 50);
  EXPECT_EQ(p.a.counters().fast_retransmits, 1u);
  EXPECT_EQ(p.a.counters().retransmits, 1u);
  EXPECT_EQ(p.a.counters().timeouts, 0u);
}

// Sends `units` through a path that loses nothing but holds back one data frame in `every` by
// `late` (the path takes 5 ms each way), so dozens of later units overtake it; returns A's
// counters.
reliable_counters through_reordering(std::size_t every, std::chrono::microseconds late, std::uint32_t units) {
  channel_pair p;
  p.hold_every = every;
  p.hold_for = late;
  std::uint32_t queued = 0;
  EXPECT_TRUE(p.run([&] {
    while (queued < units && p.a.writable()) EXPECT_TRUE(p.a.queue(unit_of(queued++)));
    return p.received.size() == units;
  }));
  expect_in_order(p.received, units);
  EXPECT_EQ(p.a.counters().timeouts, 0u);
  return p.a.counters();
}

TEST(ReliableChannel, ReorderingWithoutLossIsLearnedNotRetransmitted) {
  // 1 ms late, within the 9/8 RTT time threshold, but overtaken by dozens: the first held-back
  // units are declared lost by count and prove spurious; from then on the channel waits for as
  // many later units as it saw overtake.
  const auto c = through_reordering(25, 1000us, 20000);
  EXPECT_GT(c.spurious_losses, 0u);
  EXPECT_LT(c.retransmits, 20000u / 25 / 8) << "most held-back units were waited for, not resent";
}

TEST(ReliableChannel, AWindowCutMadeByReorderingAloneIsUndone) {
  // Every other frame 4 ms late, past the time threshold: enough false losses in the first
  // window to cut it, then all proven spurious.
  const auto c = through_reordering(2, 4000us, 5000);
  EXPECT_GT(c.spurious_losses, 0u);
  EXPECT_GT(c.reductions_undone, 0u);
}

TEST(ReliableChannel, TheLastUnitLostIsResentAfterTheRetransmissionTimeout) {
  channel_pair p;
  ASSERT_TRUE(p.a.queue(unit_of(0)));
  p.flush(0);
  ASSERT_EQ(p.wire_.size(), 1u);
  p.wire_.clear();  // the only packet: no later one can reveal the loss
  ASSERT_TRUE(p.run([&] { return p.received.size() == 1; }));
  expect_in_order(p.received, 1);
  EXPECT_EQ(p.a.counters().timeouts, 1u);
}

TEST(ReliableChannel, AChannelStartedWithItsPathsRttResendsALoneLostUnitWithinThatPathsTimeout) {
  // A stream's channel starts with its session's estimate of the path (10 ms here): losing its
  // only unit costs a timeout of that path, not the 500 ms a channel with no estimate waits.
  channel_pair p;
  p.a.assume_path_rtt({10ms, 5ms, 10ms});
  ASSERT_TRUE(p.a.queue(unit_of(0)));
  p.flush(0);
  ASSERT_EQ(p.wire_.size(), 1u);
  p.wire_.clear();
  const time_point start = p.now;
  ASSERT_TRUE(p.run([&] { return p.received.size() == 1; }));
  expect_in_order(p.received, 1);
  EXPECT_EQ(p.a.counters().retransmits, 1u);
  EXPECT_LT(p.now - start, 100ms);
}

TEST(ReliableChannel, AnEstimateOfItsOwnIsNotReplacedByAnAssumedOne) {
  channel_pair p;  // 10 ms round trips
  EXPECT_FALSE(p.a.path_rtt());
  for (std::uint32_t i = 0; i < 50; ++i) ASSERT_TRUE(p.a.queue(unit_of(i)));
  ASSERT_TRUE(p.run([&] { return p.received.size() == 50; }));
  ASSERT_TRUE(p.a.path_rtt());
  const auto own = *p.a.path_rtt();
  p.a.assume_path_rtt({200ms, 100ms, 200ms});
  EXPECT_EQ(p.a.smoothed_rtt(), own.smoothed);
  EXPECT_LT(own.smoothed, 20ms);
  EXPECT_GE(own.minimum, 10ms);
}

TEST(ReliableChannel, ALostResendWithNothingBehindItIsProbedLongBeforeTheRetransmissionTimeout) {
  // A 1 ms path: the RTO's 40 ms floor would be forty round trips. Unit 0 is lost and so is its
  // resend, sent after the other 15 were acknowledged: no later unit can reveal the second loss.
  channel_pair p;
  p.delay = 500us;
  p.drop_a = {1, 17};
  for (std::uint32_t i = 0; i < 16; ++i) ASSERT_TRUE(p.a.queue(unit_of(i)));
  const time_point start = p.now;
  ASSERT_TRUE(p.run([&] { return p.received.size() == 16; }));
  expect_in_order(p.received, 16);
  EXPECT_EQ(p.a.counters().timeouts, 0u);
  EXPECT_EQ(p.a.counters().loss_probes, 1u);
  EXPECT_EQ(p.a.counters().retransmits, 2u);
  EXPECT_LT(p.now - start, 10ms);
  EXPECT_GE(p.a.congestion_window(), reliable_config{}.initial_window);  // a probe is no loss
}

// A sends 20 units of 8 bytes (a small request each) through a 5 ms path that loses A's data
// frames `drop`; returns the pair once B has them all, in order.
channel_pair small_units_losing(std::set<std::size_t> drop) {
  channel_pair p;
  p.drop_a = std::move(drop);
  for (std::uint32_t i = 0; i < 20; ++i) EXPECT_TRUE(p.a.queue(unit_of(i, 8)));
  EXPECT_TRUE(p.run([&] { return p.received.size() == 20; }));
  for (std::uint32_t i = 0; i < p.received.size(); ++i) EXPECT_EQ(p.received[i], unit_of(i, 8)) << "unit " << i;
  return p;
}

TEST(ReliableChannel, ASmallUnitIsResentTwiceSoThatLosingTheResendCostsNoSecondDetection) {
  // Unit 2 (frame 3) is lost, and so is its resend (frame 21): the second copy (frame 22) still
  // gets it there, with one loss detected and neither a probe nor a timeout.
  const channel_pair p = small_units_losing({3, 21});
  EXPECT_EQ(p.a.counters().fast_retransmits, 1u);
  EXPECT_EQ(p.a.counters().retransmits, 2u);
  EXPECT_EQ(p.a.counters().loss_probes, 0u);
  EXPECT_EQ(p.a.counters().timeouts, 0u);
  EXPECT_EQ(p.b.counters().duplicates_in, 0u);
}

TEST(ReliableChannel, BothCopiesOfASmallResendArrivingCostOneDuplicate) {
  const channel_pair p = small_units_losing({3});
  EXPECT_EQ(p.a.counters().retransmits, 2u);
  EXPECT_EQ(p.b.counters().duplicates_in, 1u);
  // A full-sized unit is resent once (ASingleLossIsRepairedByFastRetransmitWithoutATimeout).
}

TEST(ReliableChannel, WhereTheTimeoutIsAboveItsFloorTheTimeoutActsNotAProbe) {
  // A 40 ms path: the RTO (SRTT + 4 RTTVAR + the ack delay) is above its 40 ms floor, so it is
  // due as soon as a probe would be, and it acts alone, as before there were probes.
  channel_pair p;
  p.delay = 20ms;
  p.drop_a = {1, 17};
  for (std::uint32_t i = 0; i < 16; ++i) ASSERT_TRUE(p.a.queue(unit_of(i)));
  ASSERT_TRUE(p.run([&] { return p.received.size() == 16; }));
  expect_in_order(p.received, 16);
  EXPECT_EQ(p.a.counters().loss_probes, 0u);
  EXPECT_EQ(p.a.counters().timeouts, 1u);
}

TEST(ReliableChannel, ASlowReaderBoundsTheSender) {
  reliable_config config;
  config.receive_window = 64;
  config.max_send_queue = 256;
  channel_pair p(config);
  p.auto_release = false;
  std::uint32_t queued = 0;
  while (p.a.queue(unit_of(queued))) ++queued;
  EXPECT_EQ(queued, 256u);  // the sender's memory is bounded by its queue limit
  // Nothing is read: the receiver holds at most its window and the sender stops there.
  p.run([&] { return false; }, 5s);
  EXPECT_EQ(p.received.size(), 64u);
  EXPECT_EQ(p.a.queued(), 256u - 64u);
  EXPECT_FALSE(p.a.failure());
  // The reader catches up; the window reopens and everything arrives.
  p.auto_release = true;
  p.b.release(64);
  ASSERT_TRUE(p.run([&] { return p.received.size() == 256; }));
  expect_in_order(p.received, 256);
}

TEST(ReliableChannel, OnALosslessPathTheWindowNotCongestionLimitsWhatIsInFlight) {
  reliable_config config;
  config.lossless = true;
  config.initial_window = 2;
  config.min_window = 2;
  config.receive_window = 500;
  channel_pair p(config);
  for (std::uint32_t i = 0; i < 1000; ++i) ASSERT_TRUE(p.a.queue(unit_of(i)));
  // Before the peer said its window, one unit: a guess past it would be dropped for good.
  p.flush(0);
  EXPECT_EQ(p.a.in_flight(), 1u);
  // Once it did, the whole window at once, whatever the congestion window.
  ASSERT_TRUE(p.run([&] { return p.a.in_flight() > 1; }));
  EXPECT_EQ(p.a.in_flight(), p.a.peer_window());  // all the receiver said it takes...
  EXPECT_GE(p.a.in_flight(), 499u);                // ...its 500 less the unit it had not read yet
  ASSERT_TRUE(p.run([&] { return p.received.size() == 1000; }));
  expect_in_order(p.received, 1000);
}

TEST(ReliableChannel, OnALosslessPathNothingIsEverResent) {
  reliable_config config;
  config.lossless = true;
  channel_pair p(config);
  p.delay = 300ms;  // a slow path (a relay, a full TCP buffer): far past any timeout's floor
  p.jitter = 200ms;
  for (std::uint32_t i = 0; i < 200; ++i) ASSERT_TRUE(p.a.queue(unit_of(i)));
  ASSERT_TRUE(p.run([&] { return p.received.size() == 200; }));
  expect_in_order(p.received, 200);
  const auto& c = p.a.counters();
  EXPECT_EQ(c.retransmits + c.timeouts + c.loss_probes + c.fast_retransmits, 0u);
  EXPECT_EQ(p.b.counters().duplicates_in, 0u);
}

TEST(ReliableChannel, ASilentPeerFailsTheChannelAfterTheIdleTimeout) {
  reliable_config config;
  config.idle_timeout = 3s;
  channel_pair p(config);
  p.loss = 1.0;  // the peer is gone
  ASSERT_TRUE(p.a.queue(unit_of(0)));
  const time_point start = p.now;
  ASSERT_TRUE(p.run([&] { return bool(p.a.failure()); }));
  EXPECT_EQ(p.a.failure(), make_error_code(errc::timeout));
  EXPECT_GE(p.now - start, 3s);
  EXPECT_LE(p.now - start, 3s + 100ms);
}

TEST(ReliableChannel, KeepalivesHoldAnIdlePathOpen) {
  reliable_config config;
  config.keepalive = 1s;
  config.idle_timeout = 3s;
  channel_pair p(config);
  p.run([&] { return false; }, 60s);
  EXPECT_FALSE(p.a.failure());
  EXPECT_FALSE(p.b.failure());
  EXPECT_GE(p.a.counters().acks_sent, 50u);
  EXPECT_LE(p.a.counters().acks_sent, 70u);
}

TEST(ReliableChannel, RandomLossOnAPathWithoutAQueueDoesNotShrinkTheWindow) {
  channel_pair p({}, 11);
  p.loss = 0.02;  // constant delay: the RTT never rises, so losses are noise, not congestion
  for (std::uint32_t i = 0; i < 3000; ++i) ASSERT_TRUE(p.a.queue(unit_of(i)));
  ASSERT_TRUE(p.run([&] { return p.received.size() == 3000; }));
  expect_in_order(p.received, 3000);
  EXPECT_GT(p.a.counters().losses_tolerated, 0u);
  EXPECT_GE(p.a.congestion_window(), reliable_config{}.initial_window);
}

TEST(ReliableChannel, LossBelowOneInEightIsNoiseEvenWhileHolesHoldMoreThanTheWindowInFlight) {
  // 8 % random loss on a path without a queue. Holes keep units in flight (acknowledged beyond
  // them) until repaired, so a window of data spans more units than cwnd; its losses are a share
  // of those units, not of cwnd, or the window is cut again and again down to its floor.
  channel_pair p({}, 13);
  p.loss = 0.08;
  for (std::uint32_t i = 0; i < 15000; ++i) ASSERT_TRUE(p.a.queue(unit_of(i, 100)));
  std::uint64_t samples = 0, sum = 0;  // over the second half, long after slow start
  ASSERT_TRUE(p.run([&] {
    if (p.received.size() >= 7500) ++samples, sum += p.a.congestion_window();
    return p.received.size() == 15000;
  }));
  EXPECT_GT(p.a.counters().losses_tolerated, 0u);
  ASSERT_GT(samples, 0u);
  EXPECT_GE(sum / samples, reliable_config{}.initial_window) << "the window sank towards its floor";
}

// Sends `units` through p and returns the sender's average congestion window over the run.
std::uint64_t average_window_sending(channel_pair& p, std::uint32_t units) {
  for (std::uint32_t i = 0; i < units; ++i) EXPECT_TRUE(p.a.queue(unit_of(i)));
  std::uint64_t samples = 0, sum = 0;
  EXPECT_TRUE(p.run([&] {
    ++samples, sum += p.a.congestion_window();
    return p.received.size() == units;
  }));
  expect_in_order(p.received, units);
  return sum / std::max<std::uint64_t>(samples, 1);
}

TEST(ReliableChannel, AFewChanceLossesInASmallWindowDoNotCutIt) {
  // 9 % loss on a path without a queue: below one in eight on average, but a window of 32
  // often loses five (more than one in eight of it) by chance, and each cut makes the next
  // window smaller and chance larger: the window sank to 13 on average before a cut needed
  // more losses than a handful.
  channel_pair p({}, 21);
  p.loss = 0.09;
  EXPECT_GE(average_window_sending(p, 4000), reliable_config{}.initial_window);
}

TEST(ReliableChannel, HeavyLossShrinksTheWindowEvenWithoutAQueue) {
  channel_pair p({}, 12);
  p.loss = 0.30;  // more losses per window than noise explains
  for (std::uint32_t i = 0; i < 2000; ++i) ASSERT_TRUE(p.a.queue(unit_of(i)));
  std::uint32_t smallest = p.a.congestion_window();
  ASSERT_TRUE(p.run([&] {
    smallest = std::min(smallest, p.a.congestion_window());
    return p.received.size() == 2000;
  }));
  expect_in_order(p.received, 2000);
  EXPECT_LT(smallest, reliable_config{}.initial_window / 2);
}

TEST(ReliableChannel, MalformedFramesAreCountedAndChangeNothing) {
  reliable_channel c(reliable_config{}, time_point{});
  ASSERT_TRUE(c.queue(unit_of(0)));
  ASSERT_TRUE(c.poll_transmit(time_point{}));
  auto ack_frame = [](std::uint32_t ack, std::uint8_t ranges, std::vector<std::uint32_t> bounds) {
    byte_vector f;
    byte_writer w(f);
    w.u32(ack);
    w.u24(100);
    w.u8(ranges);
    for (auto b : bounds) w.u32(b);
    return f;
  };
  const auto ack_type = wire::packet_type::unreliable_data_ack;
  EXPECT_EQ(c.on_frame(ack_type, ack_frame(5, 0, {}), {}), make_error_code(errc::bad_field));  // acks unsent data
  EXPECT_EQ(c.on_frame(ack_type, ack_frame(0, 9, {}), {}), make_error_code(errc::bad_field));  // too many ranges
  EXPECT_EQ(c.on_frame(ack_type, ack_frame(0, 1, {0}), {}), make_error_code(errc::truncated));
  EXPECT_EQ(c.on_frame(ack_type, ack_frame(0, 1, {1, 1}), {}), make_error_code(errc::bad_field));  // empty range
  EXPECT_EQ(c.on_frame(ack_type, byte_vector{1, 2}, {}), make_error_code(errc::truncated));
  EXPECT_EQ(c.on_frame(wire::packet_type::unreliable_data, byte_vector{}, {}), make_error_code(errc::bad_field));
  EXPECT_EQ(c.counters().malformed, 6u);
  EXPECT_EQ(c.in_flight(), 1u);  // still waiting for its acknowledgement
  EXPECT_FALSE(c.on_frame(ack_type, ack_frame(1, 0, {}), {}));
  EXPECT_EQ(c.in_flight(), 0u);
}

TEST(ReliableChannel, UnitsOutsideTheReceiveWindowAreDropped) {
  reliable_config config;
  config.receive_window = 4;
  reliable_channel c(config, time_point{});
  byte_vector f;
  byte_writer w(f);
  w.u32(10);  // seq far ahead of what the window admits
  w.u32(0);
  w.u24(0);
  w.u8(0);
  w.u8(42);
  EXPECT_FALSE(c.on_frame(wire::packet_type::reliable_data, f, {}));
  EXPECT_EQ(c.counters().out_of_window, 1u);
  EXPECT_FALSE(c.poll_delivered());
}

// A data frame as the peer sends it: sequence number, an empty acknowledgement, one byte.
byte_vector data_frame(std::uint32_t seq) {
  byte_vector f;
  byte_writer w(f);
  w.u32(seq);
  w.u32(0);  // acknowledges nothing
  w.u24(1024);
  w.u8(0);   // no ranges
  w.u8(42);
  return f;
}

TEST(ReliableChannel, AGapIsReportedAtOnceThenUnitsAboveItAreAcknowledgedEveryOther) {
  reliable_channel c(reliable_config{}, time_point{});
  const time_point now{};
  // Whether the unit with this sequence number made the receiver acknowledge without delay.
  auto acked_at_once = [&](std::uint32_t seq) {
    EXPECT_FALSE(c.on_frame(wire::packet_type::reliable_data, data_frame(seq), now));
    bool acked = false;
    while (auto f = c.poll_transmit(now)) acked = acked || f->type == wire::packet_type::unreliable_data_ack;
    return acked;
  };
  EXPECT_FALSE(acked_at_once(0));  // in order: every other unit
  EXPECT_TRUE(acked_at_once(1));
  EXPECT_TRUE(acked_at_once(3));   // a new gap (2 is missing)
  EXPECT_TRUE(acked_at_once(4));   // the first units above a gap feed the sender's packet threshold
  EXPECT_TRUE(acked_at_once(5));
  EXPECT_FALSE(acked_at_once(6));  // then, in order above the gap, every other unit again
  EXPECT_TRUE(acked_at_once(7));
  EXPECT_FALSE(acked_at_once(8));
  EXPECT_TRUE(acked_at_once(10));  // another new gap (9)
  EXPECT_TRUE(acked_at_once(9));   // arrived below others: reordering
  EXPECT_TRUE(acked_at_once(2));   // fills the first gap
  EXPECT_TRUE(acked_at_once(2));   // a duplicate: the acknowledgement was probably lost
  std::size_t delivered = 0;
  while (c.poll_delivered()) ++delivered;
  EXPECT_EQ(delivered, 11u);
}

}  // namespace
}  // namespace kadnet::core
