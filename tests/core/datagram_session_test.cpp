// Node engines over a lossy, reordering datagram path (the UDP transport's sans-I/O core):
// handshakes whose hellos are lost, large messages, simultaneous dials, restarts, farewells,
// silent peers and forged datagrams.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "kadnet/core/crypto/handshake.hpp"
#include "kadnet/core/errors.hpp"
#include "tests/support/datagram_engines.hpp"

namespace kadnet::core {
namespace {
using namespace std::chrono_literals;
using testing::datagram_engines;
constexpr std::uint8_t echo = 64;
const auto ping_op = static_cast<std::uint8_t>(wire::opcode::ping);

void add_echo(node_engine& e) {
  e.plugins().add(echo, [](const node_id&, byte_span in, plugin_reply reply) { reply(byte_vector(in.begin(), in.end())); });
}

std::size_t established(const datagram_engines& net, std::size_t i) {
  return net.events_of<node_engine::connected>(i).size();
}

// Sends `count` requests on connection c of engine i and runs until all are answered.
std::vector<reply> requests(datagram_engines& net, std::size_t i, connection_id c, std::uint8_t opcode,
                            wire::message_body body, int count) {
  std::vector<request_id> ids;
  for (int k = 0; k < count; ++k) ids.push_back(net[i].request(net.now, c, opcode, body, 60s));
  net.pump();
  std::vector<reply> out;
  auto all_done = [&] {
    out.clear();
    for (auto& d : net.events_of<node_engine::request_done>(i))
      if (std::find(ids.begin(), ids.end(), d.request) != ids.end()) out.push_back(d.result);
    return out.size() == ids.size();
  };
  EXPECT_TRUE(net.run(all_done, 120s));
  return out;
}

TEST(DatagramSession, HandshakeAndPingsSurviveTwentyPercentLoss) {
  datagram_engines net(3);
  net.add();
  net.add();
  net.loss = 0.20;
  auto c = net.dial(0, 1);
  ASSERT_TRUE(net.run([&] { return established(net, 0) == 1 && established(net, 1) == 1; }));
  for (const auto& r : requests(net, 0, c, ping_op, wire::ping{}, 50)) EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(net[1].stats().sessions_opened, 1u);  // resent hellos did not open more sessions
}

TEST(DatagramSession, LargeMessagesArriveWholeThroughLossAndReordering) {
  datagram_engines net(5);
  net.add();
  add_echo(net[net.add()]);
  net.loss = 0.05;
  net.jitter = 3000us;
  auto c = net.dial(0, 1);
  ASSERT_TRUE(net.run([&] { return established(net, 0) == 1; }));
  byte_vector payload(300 * 1024);
  for (std::size_t k = 0; k < payload.size(); ++k) payload[k] = static_cast<std::uint8_t>(k * 7 + k / 251);
  auto replies = requests(net, 0, c, echo, wire::plugin_call{payload}, 3);
  ASSERT_EQ(replies.size(), 3u);
  for (const auto& r : replies) {
    EXPECT_FALSE(r.ec) << r.ec.message();
    EXPECT_EQ(r.data, payload);
  }
}

TEST(DatagramSession, ABatchOfDatagramsIsAnsweredWithOneAcknowledgementNotOnePerTwoUnits) {
  // The first flight of a 64 KiB request, caught on the wire, then handed to the receiver
  // datagram by datagram, or as one batch (as recvmmsg hands them over): how many packets the
  // receiver sends in answer before anything else happens.
  auto answers_to_first_flight = [](bool as_batch) {
    datagram_engines net(7);
    net.add();
    add_echo(net[net.add()]);
    auto c = net.dial(0, 1);
    EXPECT_TRUE(net.run([&] { return established(net, 0) == 1 && established(net, 1) == 1; }));
    std::vector<byte_vector> flight;
    net.filter = [&](const datagram_engines::datagram& d) {
      if (d.from == 0) flight.push_back(d.bytes);
      return false;
    };
    byte_vector payload(64 * 1024);  // random: compression leaves it as it is
    std::mt19937_64 bytes(11);
    for (auto& b : payload) b = static_cast<std::uint8_t>(bytes());
    net[0].request(net.now, c, echo, wire::plugin_call{payload}, 60s);
    net.pump();
    EXPECT_GE(flight.size(), 8u);
    auto& receiver = net[1];
    if (as_batch) receiver.begin_datagram_batch();
    for (const auto& d : flight) receiver.on_datagram(net.now, datagram_engines::address(0), d);
    if (as_batch) receiver.end_datagram_batch(net.now);
    std::size_t packets = 0;
    for (auto conn : receiver.take_dirty()) {
      byte_vector out = receiver.take_transmit(conn);
      for (std::size_t off = 0; off + 4 <= out.size(); ++packets) off += 4 + ((std::size_t{out[off + 2]} << 8) | out[off + 3]);
    }
    return std::make_pair(flight.size(), packets);
  };
  const auto [units, one_by_one] = answers_to_first_flight(false);
  const auto [same_units, batched] = answers_to_first_flight(true);
  ASSERT_EQ(units, same_units);
  EXPECT_GE(one_by_one, units / 2) << "every second unit acknowledged";
  EXPECT_EQ(batched, 1u) << "one acknowledgement for the batch";
}

TEST(DatagramSession, ALostAnswerToAHelloIsSentAgainWithoutASecondSession) {
  datagram_engines net;
  net.add();
  net.add();
  int responder_hellos = 0;
  net.filter = [&](const datagram_engines::datagram& d) {
    bool hello = d.bytes[1] == static_cast<std::uint8_t>(wire::packet_type::hello);
    return !(d.from == 1 && hello && ++responder_hellos == 1);  // lose B's first answer
  };
  auto c = net.dial(0, 1);
  ASSERT_TRUE(net.run([&] { return established(net, 0) == 1; }));
  EXPECT_EQ(responder_hellos, 2);
  EXPECT_EQ(net[1].stats().sessions_opened, 1u);
  // B's first sealed packets overtook its repeated answer: A kept them rather than drop them.
  EXPECT_EQ(net[0].stats().datagrams_dropped, 0u);
  for (const auto& r : requests(net, 0, c, ping_op, wire::ping{}, 1)) EXPECT_FALSE(r.ec);
}

TEST(DatagramSession, AHelloThatComesAgainAfterTheSessionCarriedTrafficIsNeitherAnsweredNorANewSession) {
  datagram_engines net;
  net.add();
  net.add();
  byte_vector hello;
  net.filter = [&](const datagram_engines::datagram& d) {
    if (d.from == 0 && d.bytes[1] == static_cast<std::uint8_t>(wire::packet_type::hello)) hello = d.bytes;
    return true;
  };
  auto c = net.dial(0, 1);
  ASSERT_TRUE(net.run([&] { return established(net, 0) == 1; }));
  for (const auto& r : requests(net, 0, c, ping_op, wire::ping{}, 1)) EXPECT_FALSE(r.ec);
  ASSERT_FALSE(hello.empty());
  const std::size_t sent = net.sent;
  // A late duplicate of A's hello (or a replay of it): A has B's answer, as its sealed packets
  // showed, so B answers nothing, opens no session and does no handshake work for it.
  net.inject(0, 1, hello);
  EXPECT_EQ(net.sent, sent);
  EXPECT_EQ(net[1].stats().sessions_opened, 1u);
  EXPECT_EQ(net[1].stats().datagrams_dropped, 0u);
  for (const auto& r : requests(net, 0, c, ping_op, wire::ping{}, 1)) EXPECT_FALSE(r.ec);
}

// node_config::prefer_aes_gcm reaches both hellos (PROTOCOL.md 3.1 flags bit 1): the dialer
// offers AES-256-GCM when it prefers it, the responder answers the offer when it prefers it too,
// and in every combination the two ends seal alike, so sealed traffic flows both ways.
TEST(DatagramSession, NodesSealWithAesGcmOnlyWhenBothPreferIt) {
  const bool hardware = crypto::aes256_gcm_available();
  node_config prefers, declines;
  declines.prefer_aes_gcm = false;
  for (const auto& [dialer_prefers, responder_prefers] :
       {std::pair{true, true}, std::pair{true, false}, std::pair{false, true},
        std::pair{false, false}}) {
    SCOPED_TRACE(::testing::Message() << "dialer " << dialer_prefers << ", responder "
                                      << responder_prefers);
    datagram_engines net(7);
    net.add(dialer_prefers ? prefers : declines);
    add_echo(net[net.add(responder_prefers ? prefers : declines)]);
    std::vector<std::uint8_t> flags[2];
    net.filter = [&](const datagram_engines::datagram& d) {
      if (d.bytes[1] == static_cast<std::uint8_t>(wire::packet_type::hello))
        flags[d.from].push_back(d.bytes[wire::packet_header_size + 64]);
      return true;
    };
    auto c = net.dial(0, 1);
    ASSERT_TRUE(net.run([&] { return established(net, 0) == 1 && established(net, 1) == 1; }));
    ASSERT_FALSE(flags[0].empty());
    ASSERT_FALSE(flags[1].empty());
    const bool offered = dialer_prefers && hardware;
    for (auto f : flags[0]) EXPECT_EQ(f, offered ? crypto::hello_flag_aes_gcm : 0);
    for (auto f : flags[1])
      EXPECT_EQ(f, offered && responder_prefers ? crypto::hello_flag_aes_gcm : 0);
    byte_vector payload(20'000);
    for (std::size_t k = 0; k < payload.size(); ++k)
      payload[k] = static_cast<std::uint8_t>(k * 13 + 5);
    for (const auto& r : requests(net, 0, c, echo, wire::plugin_call{payload}, 2)) {
      EXPECT_FALSE(r.ec) << r.ec.message();
      EXPECT_EQ(r.data, payload);
    }
    // Had the two ends chosen different AEADs, every sealed datagram would fail to open.
    EXPECT_EQ(net[0].stats().datagrams_dropped + net[1].stats().datagrams_dropped, 0u);
  }
}

TEST(DatagramSession, BothSidesDialingAtOnceGetWorkingSessions) {
  datagram_engines net;
  net.add();
  net.add();
  auto ab = net[0].dial_datagram(net.now, net[1].id(), datagram_engines::address(1));
  auto ba = net[1].dial_datagram(net.now, net[0].id(), datagram_engines::address(0));
  ASSERT_TRUE(net.run([&] { return established(net, 0) == 2 && established(net, 1) == 2; }));
  for (const auto& r : requests(net, 0, ab, ping_op, wire::ping{}, 3)) EXPECT_FALSE(r.ec);
  for (const auto& r : requests(net, 1, ba, ping_op, wire::ping{}, 3)) EXPECT_FALSE(r.ec);
}

TEST(DatagramSession, ARestartedPeerAtTheSameAddressIsAcceptedAgain) {
  node_config config;
  config.datagram.channel.idle_timeout = 5s;
  config.datagram.channel.keepalive = 1s;
  datagram_engines net;
  net.add(config);
  net.add(config);
  net.dial(1, 0);
  ASSERT_TRUE(net.run([&] { return established(net, 0) == 1; }));
  net.restart(1, config);
  auto c = net.dial(1, 0);
  ASSERT_TRUE(net.run([&] { return established(net, 1) == 1; }));
  for (const auto& r : requests(net, 1, c, ping_op, wire::ping{}, 2)) EXPECT_FALSE(r.ec);
  // The old session hears nothing more and ends after its idle timeout.
  ASSERT_TRUE(net.run([&] { return !net.events_of<node_engine::disconnected>(0).empty(); }, 10s));
  EXPECT_EQ(net.events_of<node_engine::disconnected>(0)[0].ec, make_error_code(errc::timeout));
  EXPECT_EQ(net[0].peers().size(), 1u);
}

TEST(DatagramSession, AFarewellEndsThePeersSessionAtOnce) {
  datagram_engines net;
  net.add();
  net.add();
  auto c = net.dial(0, 1);
  ASSERT_TRUE(net.run([&] { return established(net, 0) == 1 && established(net, 1) == 1; }));
  const auto start = net.now;
  net[0].cut_off(c, errc::connection_closed, {});
  ASSERT_TRUE(net.run([&] { return !net.events_of<node_engine::disconnected>(1).empty(); }));
  EXPECT_EQ(net.events_of<node_engine::disconnected>(1)[0].ec, make_error_code(errc::connection_closed));
  EXPECT_LT(net.now - start, 100ms);
}

TEST(DatagramSession, ASilentPeerEndsTheSessionWithinTheIdleTimeout) {
  node_config config;
  config.datagram.channel.idle_timeout = 3s;
  datagram_engines net;
  net.add(config);
  net.add(config);
  auto c = net.dial(0, 1);
  ASSERT_TRUE(net.run([&] { return established(net, 0) == 1; }));
  net.loss = 1.0;  // B is gone
  const auto start = net.now;
  net[0].request(net.now, c, echo, wire::plugin_call{{1}}, 60s);
  ASSERT_TRUE(net.run([&] { return !net.events_of<node_engine::disconnected>(0).empty(); }));
  EXPECT_EQ(net.events_of<node_engine::disconnected>(0)[0].ec, make_error_code(errc::timeout));
  EXPECT_LE(net.now - start, 3s + 50ms);
  // The request failed with the session rather than waiting for its own minute.
  auto done = net.events_of<node_engine::request_done>(0);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].result.ec);
}

TEST(DatagramSession, GarbageAndForgedDatagramsAreDroppedAndCountedAndTheSessionGoesOn) {
  datagram_engines net;
  net.add();
  net.add();
  auto c = net.dial(0, 1);
  ASSERT_TRUE(net.run([&] { return established(net, 0) == 1 && established(net, 1) == 1; }));
  const auto before = net[1].stats().datagrams_dropped;
  net.inject(0, 1, {1, 2, 3});                                    // no packet
  net.inject(0, 1, byte_vector(1300, 0xAB));                      // not one either
  byte_vector forged{1, static_cast<std::uint8_t>(wire::packet_type::reliable_data), 0, 40};
  forged.resize(44, 0x5A);                                        // sealed, but not by A
  net.inject(0, 1, forged);
  net.inject(0, 1, {1, static_cast<std::uint8_t>(wire::packet_type::cookie), 0, 32});  // no dial waits for it
  EXPECT_EQ(net[1].stats().datagrams_dropped, before + 4);
  EXPECT_EQ(net[1].peers().size(), 1u);
  for (const auto& r : requests(net, 0, c, ping_op, wire::ping{}, 2)) EXPECT_FALSE(r.ec);
}

TEST(DatagramSession, DialedSessionsBeyondTheirOwnEllCloseTheIdlestWithAFarewell) {
  node_config config;
  config.max_outbound_sessions = 1;           // ℓ for stream sessions: not what counts here
  config.max_outbound_datagram_sessions = 2;  // ℓ for datagram sessions
  datagram_engines net;
  net.add(config);
  for (int i = 0; i < 3; ++i) net.add();
  for (std::size_t peer = 1; peer <= 3; ++peer) {
    net.dial(0, peer);
    ASSERT_TRUE(net.run([&] { return established(net, 0) == peer; }));
    net.run([] { return false; }, 1s);  // the next dial comes later: this one is less recent
  }
  EXPECT_EQ(net[0].peers().size(), 2u);
  // The first peer heard the farewell at once rather than after its idle timeout.
  ASSERT_EQ(net.events_of<node_engine::disconnected>(1).size(), 1u);
  EXPECT_EQ(net.events_of<node_engine::disconnected>(1)[0].ec, make_error_code(errc::connection_closed));
  EXPECT_TRUE(net.events_of<node_engine::disconnected>(2).empty());
}

TEST(DatagramSession, UnreliableMessagesArriveOnceOrNotAtAllAndAreNeverResent) {
  datagram_engines net(21);
  net.add();
  net.add();
  auto c = net.dial(0, 1);
  ASSERT_TRUE(net.run([&] { return established(net, 0) == 1 && established(net, 1) == 1; }));
  net.loss = 0.20;
  for (std::uint8_t k = 0; k < 200; ++k) EXPECT_FALSE(net[0].send_unreliable(c, 70, byte_vector{k, 1, 2}));
  net.pump();
  net.run([] { return false; }, 5s);
  auto got = net.events_of<node_engine::datagram_in>(1);
  std::set<std::uint8_t> seen;
  for (const auto& d : got) {
    EXPECT_EQ(d.opcode, 70);
    EXPECT_EQ(d.peer, net[0].id());
    ASSERT_EQ(d.payload.size(), 3u);
    EXPECT_TRUE(seen.insert(d.payload[0]).second) << "delivered twice";
  }
  EXPECT_GT(got.size(), 120u);  // about 160 of 200 get through 20 % loss...
  EXPECT_LT(got.size(), 190u);  // ...and the lost ones are not sent again
  // Only plugin opcodes, and only what fits one datagram.
  EXPECT_EQ(net[0].send_unreliable(c, 2, byte_vector{}), make_error_code(errc::bad_field));
  EXPECT_EQ(net[0].send_unreliable(c, 70, byte_vector(1200, 0)), make_error_code(errc::too_large));
  EXPECT_EQ(net[0].send_unreliable(999, 70, byte_vector{}), make_error_code(errc::not_connected));
}

}  // namespace
}  // namespace kadnet::core
