// RELAY (PROTOCOL.md 5.15): an end-to-end session between two nodes through a node both have a
// session with; refusals, limits, and what ends a circuit.
#include <gtest/gtest.h>

#include <random>

#include "kadnet/core/errors.hpp"
#include "tests/support/datagram_engines.hpp"

namespace kadnet::core {

namespace {

using namespace std::chrono_literals;
using testing::datagram_engines;
constexpr std::uint8_t echo = 64;
const auto ping_op = static_cast<std::uint8_t>(wire::opcode::ping);

// A (0) and B (2) each dialed C (1); C relays.
struct triangle {
  explicit triangle(node_config relay = {}) {
    net.add();
    net.add(relay);
    net.add();
    net[2].plugins().add(echo, [](const node_id&, byte_span in, plugin_reply reply) {
      reply(byte_vector(in.begin(), in.end()));
    });
    a_to_c = net.dial(0, 1);
    b_to_c = net.dial(2, 1);
    EXPECT_TRUE(net.run([&] { return net[1].peers().size() == 2 && net[0].connection_to(net[1].id()); }));
  }
  // What became of a connection of engine i: true once connected, false once disconnected.
  std::optional<bool> outcome(std::size_t i, connection_id c) {
    for (const auto& e : net.events[i]) {
      if (const auto* up = std::get_if<node_engine::connected>(&e); up && up->connection == c) return true;
      if (const auto* down = std::get_if<node_engine::disconnected>(&e); down && down->connection == c) return false;
    }
    return std::nullopt;
  }
  std::optional<node_engine::disconnected> ended(std::size_t i, connection_id c) {
    for (const auto& d : net.events_of<node_engine::disconnected>(i))
      if (d.connection == c) return d;
    return std::nullopt;
  }
  connection_id relay_to_b() {
    connection_id inner = net[0].dial_relayed(net.now, a_to_c, net[2].id());
    net.pump();
    EXPECT_TRUE(net.run([&] { return outcome(0, inner).has_value(); }));
    return inner;
  }
  reply call(connection_id c, std::uint8_t opcode, wire::message_body body) {
    auto got = net.reply_to(0, net[0].request(net.now, c, opcode, std::move(body), 30s));
    EXPECT_TRUE(got);
    return got.value_or(reply{});
  }
  datagram_engines net;
  connection_id a_to_c = 0, b_to_c = 0;
};

TEST(Relay, ASessionThroughARelayIsEndToEndAndCarriesLargeMessages) {
  triangle t;
  connection_id inner = t.relay_to_b();
  if (auto d = t.ended(0, inner)) ADD_FAILURE() << d->ec.message() << " / " << d->text;
  ASSERT_EQ(t.outcome(0, inner), true);
  EXPECT_TRUE(t.net[0].is_relayed(inner));
  EXPECT_EQ(t.net[0].connection_to(t.net[2].id()), inner);
  EXPECT_EQ(t.net[0].peer_of(inner), t.net[2].id());  // B's own key answered the handshake
  // B accepted it as an inbound session from A.
  bool b_sees_a = false;
  for (const auto& up : t.net.events_of<node_engine::connected>(2)) b_sees_a |= up.peer == t.net[0].id() && up.inbound;
  EXPECT_TRUE(b_sees_a);

  EXPECT_FALSE(t.call(inner, ping_op, wire::ping{}).ec);
  byte_vector big(200 * 1024);
  std::mt19937 random(7);  // incompressible: the relay carries every byte, both ways
  for (auto& b : big) b = static_cast<std::uint8_t>(random());
  reply r = t.call(inner, echo, wire::plugin_call{big});
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.data, big);
  EXPECT_EQ(t.net[1].stats().circuits_relayed, 1u);
  EXPECT_GT(t.net[1].stats().relayed_bytes, 2 * big.size());
  EXPECT_EQ(t.net[2].stats().relayed_sessions_accepted, 1u);
}

TEST(Relay, AByteStreamRunsOverARelayedSession) {
  triangle t;
  connection_id inner = t.relay_to_b();
  ASSERT_EQ(t.outcome(0, inner), true);
  boost::system::error_code ec;
  auto id = t.net[0].open_stream(inner, ec);
  ASSERT_TRUE(id) << ec.message();
  connection_id at_b = 0;  // B's end of the relayed session: its only session with A
  for (const auto& up : t.net.events_of<node_engine::connected>(2))
    if (up.peer == t.net[0].id()) at_b = up.connection;
  ASSERT_NE(at_b, 0u);
  byte_vector data(600 * 1024), got, chunk(64 * 1024);
  std::mt19937 random(9);
  for (auto& b : data) b = static_cast<std::uint8_t>(random());
  std::size_t sent = 0;
  ASSERT_TRUE(t.net.run([&] {
    if (sent < data.size()) sent += t.net[0].write_stream(inner, *id, byte_span(data).subspan(sent));
    t.net[2].accept_stream(at_b, *id);  // B's application takes it (its full window; once is enough)
    while (std::size_t n = t.net[2].read_stream(at_b, *id, chunk))
      got.insert(got.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    t.net.pump();
    return got.size() == data.size();
  }));
  EXPECT_TRUE(got == data);
  // More than a stream's window went through: B's reads reopened it across the relay.
  EXPECT_GT(data.size(), 2 * stream_limits{}.window_units * stream_mux::max_unit_bytes);
  EXPECT_GT(t.net[1].stats().relayed_bytes, data.size());
  t.net[0].shutdown_stream(inner, *id);
  ASSERT_TRUE(t.net.run([&] {
    t.net[2].read_stream(at_b, *id, chunk);
    return t.net[2].stream_at_end(at_b, *id);
  }));
}

TEST(Relay, WithoutASessionToThePeerTheDialFailsNotFound) {
  triangle t;
  connection_id inner = t.net[0].dial_relayed(t.net.now, t.a_to_c, testing::fixed_identity(55).id());
  t.net.pump();
  ASSERT_TRUE(t.net.run([&] { return t.outcome(0, inner).has_value(); }));
  auto down = t.ended(0, inner);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->ec, errc::peer_not_found) << down->ec.message();
  EXPECT_NE(down->text.find("no session with that peer"), std::string::npos) << down->text;
}

TEST(Relay, ANodeThatRelaysNothingRefusesAndOneAtItsLimitRefusesMore) {
  node_config none;
  none.max_relayed_circuits = 0;
  triangle refusing(none);
  EXPECT_EQ(refusing.outcome(0, refusing.relay_to_b()), false);
  EXPECT_EQ(refusing.net[1].stats().circuits_relayed, 0u);

  node_config one;
  one.max_relayed_circuits = 1;
  triangle t(one);
  connection_id first = t.relay_to_b();
  EXPECT_EQ(t.outcome(0, first), true);
  connection_id second = t.relay_to_b();
  EXPECT_EQ(t.outcome(0, second), false);
  // Once the first ends, its circuit is free again.
  t.net[0].cut_off(first, errc::connection_closed, "done");
  ASSERT_TRUE(t.net.run([&] { return t.net.events_of<node_engine::disconnected>(2).size() >= 1; }));
  EXPECT_EQ(t.outcome(0, t.relay_to_b()), true);
}

TEST(Relay, ClosingOneEndEndsTheOther) {
  triangle t;
  connection_id inner = t.relay_to_b();
  ASSERT_EQ(t.outcome(0, inner), true);
  t.net[0].cut_off(inner, errc::connection_closed, "done with it");
  ASSERT_TRUE(t.net.run([&] {
    for (const auto& d : t.net.events_of<node_engine::disconnected>(2))
      if (d.peer == t.net[0].id()) return true;
    return false;
  }));
  EXPECT_FALSE(t.net[2].connection_to(t.net[0].id()));
  EXPECT_EQ(t.net[1].peers().size(), 2u);  // the sessions with the relay go on
}

TEST(Relay, WhenTheRelayLosesTheTargetBothEndsLoseTheirSession) {
  triangle t;
  connection_id inner = t.relay_to_b();
  ASSERT_EQ(t.outcome(0, inner), true);
  auto c_to_b = t.net[1].connection_to(t.net[2].id());
  ASSERT_TRUE(c_to_b);
  t.net[1].cut_off(*c_to_b, errc::connection_closed, "gone");
  ASSERT_TRUE(t.net.run([&] { return t.ended(0, inner).has_value(); }));
  EXPECT_FALSE(t.net[0].connection_to(t.net[2].id()));
  EXPECT_FALSE(t.net[0].is_relayed(inner));
}

TEST(Relay, ARelayPassesOnNoMoreThanTheWindowAndTheChunkSize) {
  triangle t;
  connection_id inner = t.relay_to_b();
  ASSERT_EQ(t.outcome(0, inner), true);
  // Hand-made data on A's leg (circuit 1, the first A opened), all sent at once: C must not
  // take more than relay_window of them, nor one over relay_chunk.
  const auto relay_op = static_cast<std::uint8_t>(wire::opcode::relay);
  std::vector<request_id> ids;
  for (std::size_t i = 0; i < node_engine::relay_window + 2; ++i)
    ids.push_back(t.net[0].request(t.net.now, t.a_to_c, relay_op, wire::relay{1, wire::relay_kind::data, true, {}, {1}}, 10s));
  request_id big = t.net[0].request(t.net.now, t.a_to_c, relay_op,
                                    wire::relay{1, wire::relay_kind::data, true, {}, byte_vector(node_engine::relay_chunk + 1, 7)}, 10s);
  ASSERT_TRUE(t.net.reply_to(0, big));
  std::size_t limited = 0;
  for (auto id : ids) {
    auto got = t.net.reply_to(0, id);
    ASSERT_TRUE(got);
    limited += got->code == wire::nack_code::rate_limited;
  }
  // A's own session may have a message of its own in the window still.
  EXPECT_GE(limited, 2u);
  EXPECT_LE(ids.size() - limited, node_engine::relay_window);
  EXPECT_EQ(t.net.reply_to(0, big)->code, wire::nack_code::too_large);
}

TEST(Relay, NoCircuitRunsOverARelayedSession) {
  triangle t;
  connection_id inner = t.relay_to_b();
  ASSERT_EQ(t.outcome(0, inner), true);
  auto got = t.net.reply_to(0, t.net[0].request(t.net.now, inner, static_cast<std::uint8_t>(wire::opcode::relay),
                                                wire::relay{5, wire::relay_kind::open, true, t.net[1].id(), {}}, 10s));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->code, wire::nack_code::bad_request);
}

TEST(Relay, DataForACircuitNobodyOpenedIsRefused) {
  triangle t;
  auto got = t.net.reply_to(0, t.net[0].request(t.net.now, t.a_to_c, static_cast<std::uint8_t>(wire::opcode::relay),
                                           wire::relay{42, wire::relay_kind::data, true, {}, {1, 2, 3}}, 10s));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->code, wire::nack_code::not_found);
  EXPECT_EQ(t.net[1].stats().relayed_bytes, 0u);
}

// Circuits others opened through a session we dialed do not pin it: over ℓ it is closed like
// any idle one, and the circuit ends with it (its ends may open another). Only a relayed session
// of our own would keep it.
TEST(Relay, CircuitsOthersOpenedDoNotPinASessionWeDialed) {
  node_config relay;
  relay.max_outbound_datagram_sessions = 1;
  datagram_engines net;
  net.add();       // A
  net.add(relay);  // C: relays, and dialed B itself
  net.add();       // B
  net.add();       // D
  const connection_id a_to_c = net.dial(0, 1);
  const connection_id c_to_b = net.dial(1, 2);
  ASSERT_TRUE(net.run([&] { return net[1].peers().size() == 2 && net[0].connection_to(net[1].id()); }));
  const connection_id inner = net[0].dial_relayed(net.now, a_to_c, net[2].id());
  net.pump();
  auto connected = [&](std::size_t i, connection_id c) {
    for (const auto& up : net.events_of<node_engine::connected>(i))
      if (up.connection == c) return true;
    return false;
  };
  ASSERT_TRUE(net.run([&] { return connected(0, inner); })) << "A reached B through C";
  EXPECT_EQ(net[1].stats().circuits_relayed, 1u);

  net.run([] { return false; }, 500ms);  // the relayed handshake's messages are all answered
  net.dial(1, 3);  // C's second dialed session: one over ℓ
  auto closed = [&](std::size_t i, connection_id c) {
    for (const auto& d : net.events_of<node_engine::disconnected>(i))
      if (d.connection == c) return true;
    return false;
  };
  EXPECT_TRUE(net.run([&] { return closed(1, c_to_b); })) << "the session to B was not pinned";
  EXPECT_TRUE(net.run([&] { return closed(0, inner); })) << "the circuit ended with it";
}

// A peer that opens a circuit and closes it again at once, over and over, while the far end is
// slow to answer: each open C passed on still waits for B after its circuit is gone. At most
// max_circuits_per_session of them may wait at once, so the asker piles up neither requests at C
// nor sessions at B.
TEST(Relay, OpeningAndClosingCircuitsAgainAndAgainStaysWithinTheLimits) {
  triangle t;
  t.net.filter = [](const datagram_engines::datagram& d) { return !(d.from == 2 && d.to == 1); };  // B never answers C
  const auto relay_op = static_cast<std::uint8_t>(wire::opcode::relay);
  constexpr std::size_t rounds = 40;
  std::vector<request_id> opens;
  for (std::size_t i = 0; i < rounds; ++i) {
    opens.push_back(t.net[0].request(t.net.now, t.a_to_c, relay_op,
                                     wire::relay{9, wire::relay_kind::open, true, t.net[2].id(), {}}, 30s));
    t.net[0].request(t.net.now, t.a_to_c, relay_op, wire::relay{9, wire::relay_kind::close, true, {}, {}}, 30s);
  }
  t.net.run([] { return false; }, 1s);  // C's requests to B are still waiting (no timeout yet)
  std::size_t limited = 0;
  for (auto id : opens)
    if (auto got = t.net.reply_to(0, id, 0ms)) limited += got->code == wire::nack_code::rate_limited;
  EXPECT_GE(limited, rounds - node_engine::max_circuits_per_session);
  EXPECT_GT(t.net[2].stats().relayed_sessions_accepted, 0u);
  EXPECT_LE(t.net[2].stats().relayed_sessions_accepted, node_engine::max_circuits_per_session);

  // And in all, whoever asks: a relay for 4 circuits has at most 4 opens waiting.
  node_config small;
  small.max_relayed_circuits = 4;
  triangle u(small);
  u.net.filter = t.net.filter;
  std::vector<request_id> few;
  for (std::size_t i = 0; i < 10; ++i) {
    few.push_back(u.net[0].request(u.net.now, u.a_to_c, relay_op,
                                   wire::relay{9, wire::relay_kind::open, true, u.net[2].id(), {}}, 30s));
    u.net[0].request(u.net.now, u.a_to_c, relay_op, wire::relay{9, wire::relay_kind::close, true, {}, {}}, 30s);
  }
  u.net.run([] { return false; }, 1s);
  limited = 0;
  for (auto id : few)
    if (auto got = u.net.reply_to(0, id, 0ms)) limited += got->code == wire::nack_code::rate_limited;
  EXPECT_EQ(limited, 6u);
}

// An open C passed on never counted against the asker's window on that circuit, so its answer
// must not free a place there: with the open and four data messages unanswered, a fifth is
// refused even after B accepted the circuit.
TEST(Relay, TheAnswerToAPassedOnOpenDoesNotWidenTheWindow) {
  triangle t;
  t.net.delay = 10ms;
  const auto relay_op = static_cast<std::uint8_t>(wire::opcode::relay);
  const time_point t0 = t.net.now;
  auto advance_to = [&](time_point when) {
    t.net.run([] { return false; }, std::chrono::duration_cast<std::chrono::milliseconds>(when - t.net.now));
    t.net.now = when;
  };
  t.net[0].request(t.net.now, t.a_to_c, relay_op, wire::relay{7, wire::relay_kind::open, true, t.net[2].id(), {}}, 30s);
  t.net.pump();
  advance_to(t0 + 15ms);  // the open reached C (10 ms) and went on to B; B's answer is on its way
  std::vector<request_id> data;
  for (int i = 0; i < 4; ++i)
    data.push_back(t.net[0].request(t.net.now, t.a_to_c, relay_op, wire::relay{7, wire::relay_kind::data, true, {}, {1}}, 30s));
  t.net.pump();
  advance_to(t0 + 27ms);
  // Reaches C at 37 ms: after B's answer to the open (30 ms), before B's answers to the data (45 ms).
  request_id fifth = t.net[0].request(t.net.now, t.a_to_c, relay_op, wire::relay{7, wire::relay_kind::data, true, {}, {1}}, 30s);
  t.net.pump();
  auto got = t.net.reply_to(0, fifth);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->code, wire::nack_code::rate_limited);
  EXPECT_EQ(t.net[1].stats().circuits_relayed, 1u);  // B did accept the circuit before it
  EXPECT_EQ(t.net[1].stats().relayed_bytes, 4u);
}

}  // namespace
}  // namespace kadnet::core
