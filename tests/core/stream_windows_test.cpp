// Stream window growth and the session's allowance (core/stream_mux.hpp, PROTOCOL.md 9.6):
// two muxes joined back to back, on a hand-driven clock.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "kadnet/core/stream_mux.hpp"
#include "tests/support/byte_pattern.hpp"

namespace kadnet::core {
namespace {
using namespace std::chrono_literals;

stream_limits small_windows(std::uint32_t session_allowance) {
  stream_limits l;
  l.window_units = 16;
  l.max_window_units = 64;
  l.session_window_units = session_allowance;
  return l;
}

// A sender mux and a receiver mux with no loss between them; the receiver reads everything.
struct mux_pair {
  explicit mux_pair(stream_limits limits) : sender(true, limits), receiver(false, limits) {}

  stream_id open(byte_vector bytes) {
    auto id = sender.open(now);
    EXPECT_TRUE(id);
    to_send[*id] = std::move(bytes);
    return *id;
  }
  // Writes, moves frames both ways, reads; then lets time pass to the next deadline.
  void step() {
    for (auto& [id, bytes] : to_send) {
      std::size_t& done = written[id];
      done += sender.write(id, byte_span(bytes).subspan(done));
      if (done == bytes.size()) sender.shutdown(id);
    }
    for (bool moved = true; moved;) {
      moved = false;
      while (auto f = sender.poll_transmit(now)) receiver.on_frame(*f, now), moved = true;
      while (auto f = receiver.poll_transmit(now)) sender.on_frame(*f, now), moved = true;
      for (auto& [id, bytes] : to_send) {
        std::uint8_t buf[8192];
        while (std::size_t n = receiver.read(id, buf)) received[id].insert(received[id].end(), buf, buf + n);
        if (receiver.at_end(id)) receiver.close(id);
      }
    }
    auto next = std::min(sender.next_deadline().value_or(now + 1s), receiver.next_deadline().value_or(now + 1s));
    now = std::clamp(next, now + 1ms, now + 10ms);  // never as far as the 24-hour stream timers
    sender.handle_timeout(now);
    receiver.handle_timeout(now);
  }
  bool delivered(stream_id id) { return received[id].size() == to_send[id].size(); }
  // Runs until `done`, at most `steps` steps; calls `watch` after each.
  template <class Done, class Watch>
  bool run(Done done, Watch watch, int steps = 100000) {
    for (int i = 0; i < steps; ++i) {
      if (done()) return true;
      step();
      watch();
    }
    return done();
  }

  stream_mux sender, receiver;
  time_point now{};
  std::map<stream_id, byte_vector> to_send, received;
  std::map<stream_id, std::size_t> written;
};

TEST(StreamWindows, ABusyStreamGrowsToTheLargestWindowAndNoFurther) {
  mux_pair p(small_windows(4096));
  auto s = p.open(testing::byte_pattern(600 * stream_mux::max_unit_bytes, 1));
  std::uint32_t widest = 0;
  std::size_t longest = 0;
  ASSERT_TRUE(p.run([&] { return p.delivered(s); }, [&] {
    if (auto w = p.receiver.windows_of(s)) widest = std::max(widest, w->receive);
    if (auto w = p.sender.windows_of(s)) longest = std::max(longest, w->send_queue);
  }));
  EXPECT_EQ(p.received[s], p.to_send[s]);
  EXPECT_EQ(widest, 64u);
  EXPECT_EQ(longest, 64u);
}

TEST(StreamWindows, AStreamWhoseReaderNeverReadsKeepsItsFirstWindow) {
  stream_mux sender(true, small_windows(4096)), receiver(false, small_windows(4096));
  time_point now{};
  auto s = *sender.open(now);
  byte_vector bytes = testing::byte_pattern(400 * stream_mux::max_unit_bytes, 2);
  std::size_t written = 0;
  for (int i = 0; i < 2000; ++i) {
    written += sender.write(s, byte_span(bytes).subspan(written));
    while (auto f = sender.poll_transmit(now)) receiver.on_frame(*f, now);
    while (auto f = receiver.poll_transmit(now)) sender.on_frame(*f, now);
    now += 1ms;
    sender.handle_timeout(now);
    receiver.handle_timeout(now);
  }
  EXPECT_EQ(receiver.windows_of(s)->receive, 16u);
  EXPECT_EQ(sender.windows_of(s)->send_queue, 16u);
  // What the sender took: its queue plus the receiver's window.
  EXPECT_LE(written, 32 * stream_mux::max_unit_bytes);
  EXPECT_GE(written, 16 * stream_mux::max_unit_bytes);
}

TEST(StreamWindows, TheSessionsStreamsTogetherGrowNoMoreThanTheAllowance) {
  mux_pair p(small_windows(100));
  std::vector<stream_id> ids;
  for (int k = 0; k < 5; ++k) ids.push_back(p.open(testing::byte_pattern(300 * stream_mux::max_unit_bytes, 10 + k)));
  std::uint32_t most_receive_growth = 0;
  std::size_t most_send_growth = 0;
  ASSERT_TRUE(p.run([&] { return std::all_of(ids.begin(), ids.end(), [&](stream_id s) { return p.delivered(s); }); },
                    [&] {
                      std::uint32_t receive = 0;
                      std::size_t send = 0;
                      for (auto s : ids) {
                        if (auto w = p.receiver.windows_of(s)) receive += w->receive - 16;
                        if (auto w = p.sender.windows_of(s)) send += w->send_queue - 16;
                      }
                      most_receive_growth = std::max(most_receive_growth, receive);
                      most_send_growth = std::max(most_send_growth, send);
                    }));
  for (auto s : ids) EXPECT_EQ(p.received[s], p.to_send[s]);
  EXPECT_LE(most_receive_growth, 100u);
  EXPECT_LE(most_send_growth, 100u);
  EXPECT_GE(most_receive_growth, 48u);  // the allowance was used: at least one stream grew fully
  EXPECT_GE(most_send_growth, 48u);
}

TEST(StreamWindows, AFreedStreamGivesItsGrowthBack) {
  mux_pair p(small_windows(48));  // one stream's growth from 16 to 64
  auto first = p.open(testing::byte_pattern(300 * stream_mux::max_unit_bytes, 20));
  std::uint32_t widest_first = 0;
  ASSERT_TRUE(p.run([&] { return p.delivered(first); },
                    [&] { if (auto w = p.receiver.windows_of(first)) widest_first = std::max(widest_first, w->receive); }));
  ASSERT_EQ(widest_first, 64u);
  // A second stream, opened while the first still holds the allowance, cannot grow...
  auto second = p.open(testing::byte_pattern(300 * stream_mux::max_unit_bytes, 21));
  std::uint32_t widest_second = 0;
  auto watch_second = [&] {
    if (auto w = p.receiver.windows_of(second)) widest_second = std::max(widest_second, w->receive);
  };
  ASSERT_TRUE(p.run([&] { return p.delivered(second); }, watch_second));
  EXPECT_EQ(widest_second, 16u);
  // ...but once the first is freed at both ends, a third can.
  ASSERT_TRUE(p.run([&] { return !p.sender.contains(first) && !p.receiver.contains(first); }, [] {}));
  auto third = p.open(testing::byte_pattern(300 * stream_mux::max_unit_bytes, 22));
  std::uint32_t widest_third = 0;
  ASSERT_TRUE(p.run([&] { return p.delivered(third); },
                    [&] { if (auto w = p.receiver.windows_of(third)) widest_third = std::max(widest_third, w->receive); }));
  EXPECT_EQ(widest_third, 64u);
  EXPECT_EQ(p.received[third], p.to_send[third]);
}

}  // namespace
}  // namespace kadnet::core
