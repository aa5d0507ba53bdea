// Byte streams over datagram sessions (core/stream_mux.hpp, PROTOCOL.md 9.6), between node
// engines on a lossy in-memory path.
#include <gtest/gtest.h>

#include <set>

#include "kadnet/core/errors.hpp"
#include "tests/support/byte_pattern.hpp"
#include "tests/support/datagram_engines.hpp"

namespace kadnet::core {
namespace {
using namespace std::chrono_literals;
using testing::datagram_engines;
using kind = stream_mux::event_kind;

constexpr auto pattern = testing::byte_pattern;

// Both ends of a set of streams: what each side still has to write, and what it has read.
struct stream_app {
  struct end {  // one side of one stream
    byte_vector to_send;
    std::size_t sent = 0;
    bool shut = false;
    byte_vector received;
    bool eof = false;
  };
  datagram_engines& net;
  std::map<std::pair<std::size_t, stream_id>, end> ends;
  std::map<std::size_t, connection_id> conn;  // engine → its connection to the other
  std::map<stream_id, byte_vector> answers;   // what to send back on a stream the peer opens
  bool reading = true;
  bool accepting = true;  // the application accepts the streams the peer opens

  end& at(std::size_t side, stream_id s) { return ends[{side, s}]; }

  bool step() {
    bool moved = false;
    for (auto& [key, e] : ends) {
      auto [i, s] = key;
      auto& engine = net[i];
      if (e.sent < e.to_send.size()) {
        std::size_t n = engine.write_stream(conn[i], s, byte_span(e.to_send).subspan(e.sent));
        e.sent += n;
        moved |= n > 0;
      }
      if (e.sent == e.to_send.size() && !e.shut) {
        engine.shutdown_stream(conn[i], s);
        e.shut = moved = true;
      }
      if (!reading) continue;
      std::uint8_t buf[4096];
      while (std::size_t n = engine.read_stream(conn[i], s, buf)) {
        e.received.insert(e.received.end(), buf, buf + n);
        moved = true;
      }
      if (!e.eof && engine.stream_at_end(conn[i], s)) e.eof = moved = true;
    }
    // Streams the peer opened join the app.
    for (std::size_t i = 0; i < 2; ++i)
      for (auto& o : net.events_of<node_engine::stream_event>(i))
        if (o.kind == kind::opened && !ends.count({i, o.stream})) {
          ends[{i, o.stream}].to_send = answers[o.stream];
          if (accepting) net[i].accept_stream(conn[i], o.stream);
          moved = true;
        }
    return moved;
  }
  bool all_done() const {
    for (const auto& [key, e] : ends)
      if (!e.eof || e.sent < e.to_send.size()) return false;
    return true;
  }
};

struct stream_fixture {
  explicit stream_fixture(node_config config = {}, std::uint64_t seed = 1) : net(seed), app{net, {}, {}, {}} {
    net.add(config);
    net.add(config);
    app.conn[0] = net.dial(0, 1);
    net.run([&] { return net.events_of<node_engine::connected>(0).size() == 1 &&
                         net.events_of<node_engine::connected>(1).size() == 1; });
    app.conn[1] = net.events_of<node_engine::connected>(1)[0].connection;
    net.after_pump = [this] { return app.step(); };
  }
  stream_id open(std::size_t side, byte_vector data) {
    boost::system::error_code ec;
    auto id = net[side].open_stream(app.conn[side], ec);
    EXPECT_TRUE(id) << ec.message();
    app.at(side, *id).to_send = std::move(data);
    return *id;
  }
  datagram_engines net;
  stream_app app;
};

TEST(Streams, BytesArriveInOrderThenTheEndAndTheStreamIsFreed) {
  stream_fixture f;
  auto s = f.open(0, pattern(1 << 20, 1));
  ASSERT_TRUE(f.net.run([&] { return f.app.ends.size() == 2 && f.app.all_done(); }));
  EXPECT_EQ(f.app.at(1, s).received, pattern(1 << 20, 1));
  EXPECT_TRUE(f.app.at(0, s).eof);  // the peer wrote nothing and shut its direction
  // Both ends free the stream once the linger passed.
  auto closed = [&](std::size_t i) {
    for (auto& e : f.net.events_of<node_engine::stream_event>(i))
      if (e.stream == s && e.kind == kind::closed) return true;
    return false;
  };
  ASSERT_TRUE(f.net.run([&] { return closed(0) && closed(1); }, 10s));
}

TEST(Streams, AStreamWhoseOpeningDatagramIsLostOpensWithinTheSessionsTimeout) {
  // A stream's channel starts with the RTT its session measured: the lost opening unit, alone
  // in flight, is resent after a timeout of this path, not after the 500 ms initial RTO.
  stream_fixture f;
  auto first = f.open(0, pattern(1000, 1));
  ASSERT_TRUE(f.net.run([&] { return f.app.ends.size() == 2 && f.app.all_done(); }));
  f.net.run([] { return false; }, 100ms);  // the first stream's last acknowledgements
  int stream_datagrams = 0;
  f.net.filter = [&](const datagram_engines::datagram& d) {
    const bool stream = d.bytes[1] == static_cast<std::uint8_t>(wire::packet_type::stream);
    return !(d.from == 0 && stream && ++stream_datagrams == 1);
  };
  const time_point start = f.net.now;
  boost::system::error_code ec;
  auto second = f.net[0].open_stream(f.app.conn[0], ec);
  ASSERT_TRUE(second) << ec.message();
  ASSERT_NE(*second, first);
  auto opened = [&] {
    for (auto& e : f.net.events_of<node_engine::stream_event>(1))
      if (e.stream == *second && e.kind == kind::opened) return true;
    return false;
  };
  ASSERT_TRUE(f.net.run(opened, 10s));
  EXPECT_GE(stream_datagrams, 2);  // the lost one and its resend
  EXPECT_LT(f.net.now - start, 100ms);
}

TEST(Streams, BothDirectionsSurviveLossAndReordering) {
  stream_fixture f({}, 9);
  f.net.loss = 0.05;
  f.net.jitter = 4000us;
  f.app.answers[1] = pattern(2 << 20, 3);  // the other end answers on the same stream
  auto s = f.open(0, pattern(2 << 20, 2));
  ASSERT_EQ(s, 1u);
  ASSERT_TRUE(f.net.run([&] { return f.app.all_done(); }, 300s));
  EXPECT_EQ(f.app.at(1, s).received, pattern(2 << 20, 2));
  EXPECT_EQ(f.app.at(0, s).received, pattern(2 << 20, 3));
}

TEST(Streams, AThousandConcurrentStreamsAllComplete) {
  stream_fixture f;
  std::vector<stream_id> ids;
  for (std::uint32_t k = 0; k < 1000; ++k) ids.push_back(f.open(k % 2, pattern(3000 + k, k)));
  ASSERT_TRUE(f.net.run([&] { return f.app.ends.size() == 2000 && f.app.all_done(); }, 300s));
  for (std::uint32_t k = 0; k < 1000; ++k)
    EXPECT_EQ(f.app.at(1 - k % 2, ids[k]).received, pattern(3000 + k, k)) << "stream " << k;
}

TEST(Streams, AReaderThatStopsReadingBoundsTheSendersMemory) {
  node_config config;
  config.datagram.streams.window_units = 64;
  stream_fixture f(config);
  f.app.reading = false;
  auto s = f.open(0, pattern(4 << 20, 4));
  f.net.run([] { return false; }, 5s);
  // The sender took at most its queue (64 units) plus the receiver's window (64 units).
  auto& sender = f.app.at(0, s);
  EXPECT_LE(sender.sent, 128 * stream_mux::max_unit_bytes);
  EXPECT_GE(sender.sent, 64 * stream_mux::max_unit_bytes);
  f.app.reading = true;
  ASSERT_TRUE(f.net.run([&] { return f.app.all_done(); }, 300s));
  EXPECT_EQ(f.app.at(1, s).received, pattern(4 << 20, 4));
}

TEST(Streams, AStreamThePeerOpenedTakesLittleUntilTheApplicationAcceptsIt) {
  stream_fixture f;
  f.app.reading = false;
  f.app.accepting = false;
  auto s = f.open(0, pattern(2 << 20, 6));
  f.net.run([] { return false; }, 5s);
  // Not accepted: the receiver holds at most 16 units, so the sender took its queue and those.
  const stream_limits limits;
  auto& sender = f.app.at(0, s);
  const std::size_t unaccepted = (limits.window_units + limits.unaccepted_window_units) * stream_mux::max_unit_bytes;
  EXPECT_LE(sender.sent, unaccepted);
  // Accepted, still not read: the window opens to the full one, and the sender fills it.
  f.net[1].accept_stream(f.app.conn[1], s);
  f.net.run([] { return false; }, 5s);
  EXPECT_GT(sender.sent, unaccepted);
  EXPECT_LE(sender.sent, 2 * limits.window_units * stream_mux::max_unit_bytes);
  f.app.reading = true;
  ASSERT_TRUE(f.net.run([&] { return f.app.all_done(); }, 120s));
  EXPECT_EQ(f.app.at(1, s).received, pattern(2 << 20, 6));
}

TEST(Streams, AResetReachesThePeer) {
  stream_fixture f;
  auto s = f.open(0, pattern(100, 5));
  ASSERT_TRUE(f.net.run([&] { return f.app.ends.count({1, s}) == 1; }));
  f.net[1].reset_stream(f.app.conn[1], s);
  f.app.ends.clear();
  ASSERT_TRUE(f.net.run([&] {
    for (auto& e : f.net.events_of<node_engine::stream_event>(0))
      if (e.stream == s && e.kind == kind::failed) return true;
    return false;
  }));
}

TEST(Streams, AResetsCodeSaysWhetherTheProtocolWasNotServed) {
  for (auto code : {stream_mux::reset_code::abandoned, stream_mux::reset_code::protocol_not_served}) {
    stream_fixture f;
    auto s = f.open(0, pattern(100, 5));
    ASSERT_TRUE(f.net.run([&] { return f.app.ends.count({1, s}) == 1; }));
    f.net[1].reset_stream(f.app.conn[1], s, code);
    f.app.ends.clear();
    boost::system::error_code why;
    ASSERT_TRUE(f.net.run([&] {
      for (auto& e : f.net.events_of<node_engine::stream_event>(0))
        if (e.stream == s && e.kind == kind::failed) return why = e.ec, true;
      return false;
    }));
    EXPECT_EQ(why, code == stream_mux::reset_code::abandoned ? make_error_code(errc::connection_closed)
                                                              : make_error_code(errc::protocol_not_served));
  }
}

TEST(Streams, OpeningIsBoundedAndNeedsADatagramSession) {
  node_config config;
  config.datagram.streams.max_streams = 3;
  stream_fixture f(config);
  boost::system::error_code ec;
  for (int k = 0; k < 3; ++k) EXPECT_TRUE(f.net[0].open_stream(f.app.conn[0], ec));
  EXPECT_FALSE(f.net[0].open_stream(f.app.conn[0], ec));
  EXPECT_EQ(ec, make_error_code(errc::too_many));
  EXPECT_FALSE(f.net[0].open_stream(12345, ec));
  EXPECT_EQ(ec, make_error_code(errc::not_connected));
}

TEST(Streams, StreamFramesThatMakeNoSenseAreCountedAndIgnored) {
  stream_mux mux(true, {});
  time_point now{};
  byte_vector f;
  EXPECT_TRUE(mux.on_frame(f, now));               // empty
  f = {0, 0, 0, 0, 0};
  EXPECT_TRUE(mux.on_frame(f, now));               // stream 0 is the session's own
  f = {0, 0, 0, 2, 9};
  EXPECT_TRUE(mux.on_frame(f, now));               // unknown kind
  f = {0, 0, 0, 3, 0};
  EXPECT_FALSE(mux.on_frame(f, now));              // our own parity, unknown: stale, ignored
  EXPECT_EQ(mux.size(), 0u);
  f = {0, 0, 0, 2, 0, 0, 0};
  EXPECT_TRUE(mux.on_frame(f, now));               // opens 2, but its body is truncated
  EXPECT_EQ(mux.malformed(), 4u);
}

}  // namespace
}  // namespace kadnet::core
