// The protocol engine on virtual time, two engines joined in memory (tests/support/engine_pair).
#include "kadnet/core/node_engine.hpp"

#include <gtest/gtest.h>

#include "kadnet/core/errors.hpp"
#include "tests/support/engine_pair.hpp"

namespace kadnet::core {
namespace {

using testing::engine_pair;
using namespace std::chrono_literals;

constexpr std::uint8_t echo = 64;

void add_echo(node_engine& e) {
  e.plugins().add(echo, [](const node_id&, byte_span in, plugin_reply reply) {
    reply(byte_vector(in.begin(), in.end()));
  });
}

reply call(engine_pair& p, std::uint8_t opcode, byte_vector payload) {
  auto r = p.a.request(p.now, p.a_conn, opcode, wire::plugin_call{std::move(payload)});
  p.exchange();
  for (auto& done : p.events_of<node_engine::request_done>(p.a_events))
    if (done.request == r) return done.result;
  ADD_FAILURE() << "request " << r << " did not complete";
  return {};
}

TEST(NodeEngine, HandshakeReportsBothIdentities) {
  engine_pair p;
  p.connect();
  auto a_up = p.events_of<node_engine::connected>(p.a_events);
  auto b_up = p.events_of<node_engine::connected>(p.b_events);
  ASSERT_EQ(a_up.size(), 1u);
  ASSERT_EQ(b_up.size(), 1u);
  EXPECT_EQ(a_up[0].peer, p.b_id.id());
  EXPECT_FALSE(a_up[0].inbound);
  EXPECT_EQ(b_up[0].peer, p.a_id.id());
  EXPECT_TRUE(b_up[0].inbound);
  EXPECT_EQ(p.a.connection_to(p.b_id.id()), p.a_conn);
}

TEST(NodeEngine, UnderLoadTheHandshakeGoesThroughACookieChallenge) {
  node_config loaded;
  loaded.cookie_threshold_per_second = 0;  // every hello counts as load
  engine_pair p({}, loaded);
  p.connect();
  EXPECT_EQ(p.events_of<node_engine::connected>(p.a_events).size(), 1u);
  EXPECT_EQ(p.b.stats().sessions.cookie_challenges, 1u);
}

TEST(NodeEngine, BelowTheLoadThresholdNoCookieIsAsked) {
  engine_pair p;
  p.connect();
  EXPECT_EQ(p.events_of<node_engine::connected>(p.a_events).size(), 1u);
  EXPECT_EQ(p.b.stats().sessions.cookie_challenges, 0u);
}

TEST(NodeEngine, PingIsAnsweredWithAck) {
  engine_pair p;
  p.connect();
  auto r = p.a.request(p.now, p.a_conn, static_cast<std::uint8_t>(wire::opcode::ping), wire::ping{});
  p.exchange();
  auto done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].request, r);
  EXPECT_FALSE(done[0].result.ec);
  EXPECT_TRUE(done[0].result.data.empty());
}

TEST(NodeEngine, PluginCallsReachTheHandler) {
  engine_pair p;
  add_echo(p.b);
  p.connect();
  auto r = call(p, echo, {1, 2, 3});
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.data, (byte_vector{1, 2, 3}));
}

TEST(NodeEngine, UnknownPluginGetsUnsupportedOpcodeNack) {
  engine_pair p;
  p.connect();
  auto r = call(p, 99, {});
  EXPECT_EQ(r.ec, make_error_code(errc::unsupported_opcode));
  EXPECT_EQ(r.code, wire::nack_code::unsupported_opcode);
  EXPECT_EQ(r.text, "unsupported opcode");
}

TEST(NodeEngine, ReservedOpcodeGetsUnsupportedOpcodeNack) {
  engine_pair p;
  p.connect();
  // A hand-made message with opcode 20 (reserved): the codec refuses to decode it, the engine
  // still answers by reading only the header.
  auto r = p.a.request(p.now, p.a_conn, 20, wire::plugin_call{{7}});
  p.exchange();
  auto done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].request, r);
  EXPECT_EQ(done[0].result.ec, make_error_code(errc::unsupported_opcode));
}

TEST(NodeEngine, ThrowingHandlerGetsNackAndTheNodeGoesOn) {
  engine_pair p;
  p.b.plugins().add(70, [](const node_id&, byte_span, plugin_reply) -> void {
    throw std::runtime_error("boom");
  });
  add_echo(p.b);
  p.connect();
  auto r = call(p, 70, {});
  EXPECT_EQ(r.ec, make_error_code(errc::handler_failed));
  EXPECT_NE(r.text.find("boom"), std::string::npos);
  EXPECT_EQ(call(p, echo, {9}).data, byte_vector{9});
}

TEST(NodeEngine, AsynchronousHandlerRepliesLater) {
  engine_pair p;
  plugin_reply saved;
  p.b.plugins().add(71, [&](const node_id&, byte_span, plugin_reply reply) { saved = reply; });
  p.connect();
  auto r = p.a.request(p.now, p.a_conn, 71, wire::plugin_call{});
  p.exchange();
  EXPECT_TRUE(p.events_of<node_engine::request_done>(p.a_events).empty());
  ASSERT_TRUE(saved);
  saved(byte_vector{42});
  saved(byte_vector{43});  // a second answer is ignored
  p.exchange();
  auto done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].request, r);
  EXPECT_EQ(done[0].result.data, byte_vector{42});
}

TEST(NodeEngine, AReplyAfterTheConnectionWentAwayIsDropped) {
  engine_pair p;
  plugin_reply saved;
  p.b.plugins().add(71, [&](const node_id&, byte_span, plugin_reply reply) { saved = reply; });
  p.connect();
  p.a.request(p.now, p.a_conn, 71, wire::plugin_call{});
  p.exchange();
  ASSERT_TRUE(saved);
  p.b.cut_off(p.b_conn, errc::connection_closed, "going away");
  p.b.take_dirty();
  p.b.on_transport_closed(p.b_conn, {});
  saved(byte_vector{42});
  EXPECT_TRUE(p.b.take_dirty().empty());
  EXPECT_TRUE(p.b.take_transmit(p.b_conn).empty());
}

TEST(NodeEngine, RequestTimesOutAtItsDeadline) {
  node_config cfg;
  cfg.request_timeout = 250ms;
  engine_pair p(cfg);
  p.b.plugins().add(72, [](const node_id&, byte_span, plugin_reply) {});  // never answers
  p.connect();
  auto r = p.a.request(p.now, p.a_conn, 72, wire::plugin_call{});
  p.exchange();
  EXPECT_EQ(p.a.next_deadline(), p.now + 250ms);
  p.advance(249ms);
  EXPECT_TRUE(p.events_of<node_engine::request_done>(p.a_events).empty());
  p.advance(1ms);
  auto done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].request, r);
  EXPECT_EQ(done[0].result.ec, make_error_code(errc::timeout));
  EXPECT_EQ(p.a.stats().timeouts, 1u);
}

TEST(NodeEngine, HandshakeThatNeverCompletesTimesOut) {
  node_config cfg;
  cfg.handshake_timeout = 1s;
  node_engine lonely(testing::fixed_identity(3), cfg);
  auto now = time_point{} + 1h;
  auto c = lonely.accept(now, byte_vector(18, 0));
  EXPECT_EQ(lonely.next_deadline(), now + 1s);
  lonely.handle_timeout(now + 1s);
  EXPECT_TRUE(lonely.wants_close(c));
  auto ev = lonely.poll_event();
  ASSERT_TRUE(ev);
  EXPECT_EQ(std::get<node_engine::disconnected>(*ev).ec, make_error_code(errc::timeout));
}

TEST(NodeEngine, ExpectedIdentityMismatchFailsTheDial) {
  engine_pair p;
  p.connect(testing::fixed_identity(9).id());
  auto down = p.events_of<node_engine::disconnected>(p.a_events);
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].ec, make_error_code(errc::unexpected_identity));
  EXPECT_TRUE(p.events_of<node_engine::connected>(p.a_events).empty());
}

TEST(NodeEngine, PendingRequestsFailWhenTheConnectionCloses) {
  engine_pair p;
  p.b.plugins().add(72, [](const node_id&, byte_span, plugin_reply) {});
  p.connect();
  auto r = p.a.request(p.now, p.a_conn, 72, wire::plugin_call{});
  p.exchange();
  p.a.on_transport_closed(p.a_conn, {});
  auto done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 0u);
  while (auto ev = p.a.poll_event()) p.a_events.push_back(*ev);
  done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].request, r);
  EXPECT_EQ(done[0].result.ec, make_error_code(errc::connection_closed));
}

TEST(NodeEngine, FlippedByteInSealedPacketIsDroppedAndCounted) {
  engine_pair p;
  add_echo(p.b);
  p.connect();
  int flips = 1;
  p.a_to_b = [&](byte_vector& bytes) {
    if (flips-- > 0) bytes[bytes.size() / 2] ^= 0x40;
  };
  auto lost = p.a.request(p.now, p.a_conn, echo, wire::plugin_call{byte_vector(100, 1)});
  p.exchange();
  EXPECT_EQ(p.b.stats().sessions.auth_failures, 1u);
  // The altered request never reached the handler; the session goes on.
  for (auto& d : p.events_of<node_engine::request_done>(p.a_events)) EXPECT_NE(d.request, lost);
  EXPECT_EQ(call(p, echo, {5}).data, byte_vector{5});
}

TEST(NodeEngine, ReplayedPacketIsDroppedAndCounted) {
  engine_pair p;
  int calls = 0;
  p.b.plugins().add(73, [&](const node_id&, byte_span, plugin_reply reply) {
    ++calls;
    reply(byte_vector{});
  });
  p.connect();
  byte_vector captured;
  p.a_to_b = [&](byte_vector& bytes) {
    if (captured.empty()) captured = bytes;
  };
  call(p, 73, {1});
  ASSERT_FALSE(captured.empty());
  p.b.on_bytes(p.b_conn, p.now, captured);  // the same sealed packet again
  p.exchange();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(p.b.stats().sessions.replays, 1u);
}

TEST(NodeEngine, NegotiatesThePreferredCommonCompression) {
  node_config a_cfg, b_cfg;
  a_cfg.compression = {compression::codec_id::lzma, compression::codec_id::zlib};
  b_cfg.compression = {compression::codec_id::zlib, compression::codec_id::gzip};
  engine_pair p(a_cfg, b_cfg);
  add_echo(p.b);
  p.connect();
  auto a_peers = p.a.peers(), b_peers = p.b.peers();
  ASSERT_EQ(a_peers.size(), 1u);
  ASSERT_EQ(b_peers.size(), 1u);
  // Only zlib is common: each side sends with it, though A prefers lzma.
  EXPECT_EQ(a_peers[0].sending_with, compression::codec_id::zlib);
  EXPECT_EQ(b_peers[0].sending_with, compression::codec_id::zlib);
  byte_vector big(64 * 1024, 'k');
  EXPECT_EQ(call(p, echo, big).data, big);
  // The 64 KiB request left compressed: far fewer bytes than its size went on the wire.
  EXPECT_LT(p.a.peers()[0].counters.bytes_out, 16u * 1024);
}

TEST(NodeEngine, NoCommonCompressionSendsPlain) {
  node_config a_cfg, b_cfg;
  a_cfg.compression = {compression::codec_id::snappy};
  b_cfg.compression = {};
  engine_pair p(a_cfg, b_cfg);
  add_echo(p.b);
  p.connect();
  EXPECT_EQ(p.a.peers()[0].sending_with, std::nullopt);
  EXPECT_EQ(p.b.stats().nacks_sent, 2u);  // option 0 snappy and option 1 snappy refused
  byte_vector big(10000, 'x');
  EXPECT_EQ(call(p, echo, big).data, big);
}

TEST(NodeEngine, LargeMessagesAreFragmentedAndReassembled) {
  engine_pair p;
  add_echo(p.b);
  p.connect();
  byte_vector big(1 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 7919 >> 3);
  auto r = call(p, echo, big);
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.data, big);
}

TEST(NodeEngine, OversizedMessageCutsThePeerOff) {
  node_config small;
  small.max_message_size = 4096;
  small.max_queued_bytes_per_peer = 1 << 20;
  node_config big;
  big.compression = {};
  engine_pair p(big, small);
  p.connect();
  p.a.request(p.now, p.a_conn, echo, wire::plugin_call{byte_vector(100000, 3)});
  p.exchange();
  auto down = p.events_of<node_engine::disconnected>(p.b_events);
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].ec, make_error_code(errc::too_large));
}

TEST(NodeEngine, TooManyPendingRequestsFromOnePeerAreRateLimited) {
  node_config cfg;
  cfg.max_inbound_requests_per_peer = 2;
  engine_pair p({}, cfg);
  p.b.plugins().add(74, [](const node_id&, byte_span, plugin_reply) {});  // holds every request
  p.connect();
  for (int i = 0; i < 3; ++i) p.a.request(p.now, p.a_conn, 74, wire::plugin_call{});
  p.exchange();
  auto done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].result.code, wire::nack_code::rate_limited);
}

// The limit is the peer's, not its session's: requests still waiting on our handlers count
// until answered or timed out, so ending the session and dialing again frees no place.
TEST(NodeEngine, AReconnectingPeerKeepsItsPendingRequestsCounted) {
  node_config cfg;
  cfg.max_inbound_requests_per_peer = 2;
  cfg.handler_timeout = 1s;
  engine_pair p({}, cfg);
  p.b.plugins().add(74, [](const node_id&, byte_span, plugin_reply) {});  // holds every request
  p.connect();
  for (int i = 0; i < 2; ++i) p.a.request(p.now, p.a_conn, 74, wire::plugin_call{});
  p.exchange();
  p.a.on_transport_closed(p.a_conn, make_error_code(errc::connection_closed));
  p.b.on_transport_closed(p.b_conn, make_error_code(errc::connection_closed));
  p.connect();  // a new session, the same peer
  p.a_events.clear();  // the two requests' ends with the old session
  p.a.request(p.now, p.a_conn, 74, wire::plugin_call{});
  p.exchange();
  auto done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].result.code, wire::nack_code::rate_limited) << "its two places are still taken";

  // At the handler timeout the places are free again.
  p.a_events.clear();
  p.advance(1s);
  auto again = p.a.request(p.now, p.a_conn, 74, wire::plugin_call{});
  p.exchange();
  for (const auto& d : p.events_of<node_engine::request_done>(p.a_events))
    EXPECT_NE(d.request, again) << "taken, and held by the handler";
}

// A handler that never replies (an async one that dropped its reply function) must not hold its
// caller's places for good: at handler_timeout the request is NACKed and its place freed.
TEST(NodeEngine, AHandlerThatNeverRepliesFreesItsPlaceAtTheHandlerTimeout) {
  node_config cfg;
  cfg.max_inbound_requests_per_peer = 2;
  cfg.handler_timeout = 1s;
  engine_pair p({}, cfg);
  p.b.plugins().add(74, [](const node_id&, byte_span, plugin_reply) {});  // never replies
  p.b.plugins().add(75, [](const node_id&, byte_span in, plugin_reply reply) { reply(byte_vector(in.begin(), in.end())); });
  p.connect();
  const auto start = p.now;
  auto held1 = p.a.request(p.now, p.a_conn, 74, wire::plugin_call{});
  auto held2 = p.a.request(p.now, p.a_conn, 74, wire::plugin_call{});
  p.a.request(p.now, p.a_conn, 75, wire::plugin_call{byte_vector{1}});
  p.exchange();
  auto done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].result.code, wire::nack_code::rate_limited) << "both places are taken";
  EXPECT_EQ(p.b.next_deadline(), start + 1s);

  p.a_events.clear();
  p.advance(1s);
  auto expired = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(expired.size(), 2u);
  for (const auto& d : expired) {
    EXPECT_TRUE(d.request == held1 || d.request == held2);
    EXPECT_EQ(d.result.code, wire::nack_code::handler_failed);
    EXPECT_NE(d.result.text.find("did not reply within 1000 ms"), std::string::npos) << d.result.text;
  }
  p.a_events.clear();
  auto again = p.a.request(p.now, p.a_conn, 75, wire::plugin_call{byte_vector{2}});
  p.exchange();
  auto answered = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(answered.size(), 1u);
  EXPECT_EQ(answered[0].request, again);
  EXPECT_FALSE(answered[0].result.ec) << answered[0].result.ec.message();
  EXPECT_EQ(answered[0].result.data, byte_vector{2});
}

// A reply in time leaves nothing behind: no expiry comes later, and a late second reply is dropped.
TEST(NodeEngine, AnAnsweredRequestLeavesNoHandlerDeadline) {
  node_config cfg;
  cfg.handler_timeout = 1s;
  engine_pair p({}, cfg);
  plugin_reply kept;
  p.b.plugins().add(74, [&](const node_id&, byte_span, plugin_reply reply) { kept = reply; });
  p.connect();
  p.a.request(p.now, p.a_conn, 74, wire::plugin_call{});
  p.exchange();
  ASSERT_TRUE(kept);
  kept(byte_vector{7});
  p.exchange();
  auto done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].result.data, byte_vector{7});
  p.a_events.clear();
  p.advance(2s);
  EXPECT_TRUE(p.events_of<node_engine::request_done>(p.a_events).empty()) << "no NACK after the reply";
  kept(byte_vector{8});  // a second reply: dropped
  p.exchange();
  EXPECT_TRUE(p.events_of<node_engine::request_done>(p.a_events).empty());
}

TEST(NodeEngine, GarbageBeforeTheHandshakeClosesOnlyThatConnection) {
  node_engine e(testing::fixed_identity(4), {});
  auto now = time_point{} + 1h;
  auto c = e.accept(now, byte_vector(18, 0));
  byte_vector garbage{0x01, 0x7f, 0x00, 0x02, 0xde, 0xad};
  e.on_bytes(c, now, garbage);
  EXPECT_TRUE(e.wants_close(c));
  EXPECT_GE(e.stats().sessions.malformed, 1u);
}

TEST(NodeEngine, WhisperIsAckedWithTheHashOfItsPayload) {
  engine_pair p;
  p.connect();
  byte_vector text{'h', 'i'};
  auto r = p.a.request(p.now, p.a_conn, static_cast<std::uint8_t>(wire::opcode::whisper),
                       wire::whisper{p.a_id.id(), p.b_id.id(), false, text});
  p.exchange();
  auto done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].request, r);
  auto expected = node_id::hash_of(text);
  EXPECT_EQ(done[0].result.data, byte_vector(expected.bytes().begin(), expected.bytes().end()));
  auto in = p.events_of<node_engine::incoming>(p.b_events);
  ASSERT_EQ(in.size(), 1u);
  EXPECT_EQ(std::get<wire::whisper>(in[0].message.body).payload, text);
}

TEST(NodeEngine, WhisperForAnotherNodeIsRefusedNotForwarded) {
  engine_pair p;
  p.connect();
  p.a.request(p.now, p.a_conn, static_cast<std::uint8_t>(wire::opcode::whisper),
              wire::whisper{p.a_id.id(), testing::fixed_identity(7).id(), false, {1}});
  p.exchange();
  auto done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].result.code, wire::nack_code::bad_request);
  EXPECT_TRUE(p.events_of<node_engine::incoming>(p.b_events).empty());
}

TEST(NodeEngine, SpeakIsAckedAndDelivered) {
  engine_pair p;
  p.connect();
  p.a.request(p.now, p.a_conn, static_cast<std::uint8_t>(wire::opcode::speak),
              wire::speak{p.a_id.id(), 1, {9, 9}});
  p.exchange();
  auto done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_FALSE(done[0].result.ec);
  EXPECT_EQ(p.events_of<node_engine::incoming>(p.b_events).size(), 1u);
}

TEST(NodeEngine, RefusedOptionNackCarriesOptionAndSetting) {
  node_config b_cfg;
  b_cfg.compression = {};
  engine_pair p({}, b_cfg);
  p.connect();
  auto r = p.a.request(p.now, p.a_conn, static_cast<std::uint8_t>(wire::opcode::set_connection_opt),
                       wire::set_connection_opt{0, 2});
  p.exchange();
  auto done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].request, r);
  EXPECT_EQ(done[0].result.ec, make_error_code(errc::option_refused));
  EXPECT_EQ(done[0].result.data, (byte_vector{0, 2}));
}

byte_vector v4_address(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint16_t port) {
  byte_vector out(18, 0);
  out[10] = out[11] = 0xff;
  out[12] = a, out[13] = b, out[14] = c, out[15] = d;
  out[16] = static_cast<std::uint8_t>(port >> 8), out[17] = static_cast<std::uint8_t>(port);
  return out;
}

TEST(NodeEngine, AnnouncedWildcardBecomesTheSourceAddress) {
  node_config a_cfg;
  a_cfg.announce_addresses = {"tcp://0.0.0.0:4000"};
  engine_pair p(a_cfg);
  p.connect(std::nullopt, v4_address(198, 18, 0, 7, 51234), v4_address(198, 18, 0, 8, 4001));
  auto ann = p.events_of<node_engine::announced>(p.b_events);
  ASSERT_EQ(ann.size(), 1u);
  EXPECT_EQ(ann[0].peer, p.a_id.id());
  EXPECT_EQ(ann[0].addresses, std::vector<std::string>{"tcp://198.18.0.7:4000"});
  // B told A how it sees A.
  EXPECT_EQ(p.a.observed_address(), "198.18.0.7:51234");
  EXPECT_EQ(p.b.peers()[0].addresses, std::vector<std::string>{"tcp://198.18.0.7:4000"});
}

TEST(NodeEngine, AnnouncementOfAnotherHostIsRefused) {
  node_config a_cfg;
  a_cfg.announce_addresses = {"tcp://198.18.9.9:4000"};  // not where A's packets come from
  engine_pair p(a_cfg);
  p.connect(std::nullopt, v4_address(198, 18, 0, 7, 51234));
  EXPECT_TRUE(p.events_of<node_engine::announced>(p.b_events).empty());
  EXPECT_TRUE(p.b.peers()[0].addresses.empty());
  EXPECT_EQ(p.b.stats().nacks_sent, 1u);
}

// Carries bytes between one engine's connection and another's until both are quiet.
void exchange(node_engine& a, connection_id ac, node_engine& b, connection_id bc, time_point now) {
  for (bool moved = true; moved;) {
    moved = false;
    for (auto [from, fc, to, tc] : {std::tuple{&a, ac, &b, bc}, std::tuple{&b, bc, &a, ac}}) {
      for (auto c : from->take_dirty()) {
        auto bytes = from->take_transmit(c);
        if (c == fc && !bytes.empty()) {
          to->on_bytes(tc, now, bytes);
          moved = true;
        }
      }
    }
  }
}

TEST(NodeEngine, DialedSessionsBeyondEllCloseTheLeastRecentlyActiveIdleOne) {
  node_config cfg;
  cfg.max_outbound_sessions = 2;  // ℓ
  node_engine a(testing::fixed_identity(1), cfg);
  std::vector<std::unique_ptr<node_engine>> peers;
  std::vector<connection_id> a_side;
  auto now = time_point{} + 1h;
  for (std::uint8_t i = 0; i < 3; ++i) {
    peers.push_back(std::make_unique<node_engine>(testing::fixed_identity(10 + i), node_config{}));
    now += 1s;
    auto ac = a.dial(now, std::nullopt);
    auto bc = peers.back()->accept(now, byte_vector(18, 0));
    a_side.push_back(ac);
    exchange(a, ac, *peers.back(), bc, now);
  }
  // The first session (least recently active, idle) was closed to make room for the third.
  EXPECT_TRUE(a.wants_close(a_side[0]));
  EXPECT_FALSE(a.wants_close(a_side[1]));
  EXPECT_FALSE(a.wants_close(a_side[2]));
  EXPECT_EQ(a.peers().size(), 2u);
}

TEST(NodeEngine, RequestOverTheSizeLimitFailsAtOnce) {
  engine_pair p;
  add_echo(p.b);
  p.connect();
  auto r = p.a.request(p.now, p.a_conn, echo, wire::plugin_call{byte_vector(2 << 20, 1)});
  auto done = p.events_of<node_engine::request_done>(p.a_events);
  while (auto ev = p.a.poll_event()) p.a_events.push_back(*ev);
  done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].request, r);
  EXPECT_EQ(done[0].result.ec, make_error_code(errc::too_large));
  EXPECT_EQ(p.a.next_deadline(), std::nullopt);  // nothing left waiting for a timeout
}

// validate() refuses `cfg`, and its message names `what`.
void expect_refused_naming(const node_config& cfg, const std::string& what) {
  try {
    cfg.validate();
    ADD_FAILURE() << "accepted a bad " << what;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(NodeConfig, RejectsBadValuesNamingThem) {
  node_config cfg;
  cfg.request_timeout = 0ms;
  expect_refused_naming(cfg, "request_timeout");
  node_config twice;
  twice.compression = {compression::codec_id::zstd, compression::codec_id::zstd};
  EXPECT_THROW(twice.validate(), std::invalid_argument);
  node_config no_window;
  no_window.datagram.streams.window_units = 0;
  expect_refused_naming(no_window, "window_units 0");
  node_config no_streams;
  no_streams.datagram.streams.max_streams = 0;
  EXPECT_THROW(no_streams.validate(), std::invalid_argument);
  node_config no_punch;
  no_punch.punched_dial_timeout = 0ms;
  expect_refused_naming(no_punch, "punched_dial_timeout 0");
  // So long that its deadline in nanoseconds would overflow (a stop then hung on it).
  node_config forever;
  forever.request_timeout = std::chrono::milliseconds(10'000'000'000'000);
  expect_refused_naming(forever, "request_timeout 10000000000000 ms");
  forever.request_timeout = node_config::max_timeout;
  EXPECT_NO_THROW(forever.validate());
  forever.handshake_timeout = node_config::max_timeout + 1ms;
  expect_refused_naming(forever, "handshake_timeout");
}

}  // namespace
}  // namespace kadnet::core
