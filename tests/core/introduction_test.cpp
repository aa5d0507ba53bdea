// INTRODUCE (PROTOCOL.md 5.14): a node both peers have a datagram session with tells each where
// the other is, and the one introduced to is asked to punch; refusals, limits and punch packets.
#include <gtest/gtest.h>

#include "kadnet/core/errors.hpp"
#include "tests/support/datagram_engines.hpp"
#include "tests/support/engine_pair.hpp"

namespace kadnet::core {
namespace {

using namespace std::chrono_literals;
using testing::datagram_engines;
using testing::fixed_identity;
const auto introduce_op = static_cast<std::uint8_t>(wire::opcode::introduce);

// A (0) and B (2) each dialed C (1), as nodes behind NATs do; C is the introducer.
struct triangle {
  explicit triangle(node_config introducer = {}, node_config target = {}) {
    net.add();
    net.add(introducer);
    net.add(target);
    a_to_c = net.dial(0, 1);
    net.dial(2, 1);
    EXPECT_TRUE(net.run([&] { return net[1].peers().size() == 2 && net[0].connection_to(net[1].id()); }));
  }
  // A asks C to introduce it to `peer`; runs until C answers.
  reply ask(const node_id& peer) {
    auto got = net.reply_to(0, net[0].request(net.now, a_to_c, introduce_op, wire::introduce{peer, {}}, 10s));
    EXPECT_TRUE(got);
    return got.value_or(reply{});
  }
  datagram_engines net;
  connection_id a_to_c = 0;
};

TEST(Introduce, EachSideLearnsWhereTheOtherIsAndTheTargetPunchesFirst) {
  triangle t;
  reply r = t.ask(t.net[2].id());
  ASSERT_FALSE(r.ec) << r.ec.message() << " " << r.text;
  EXPECT_EQ(r.data, datagram_engines::address(2));  // B as C's socket sees it: its NAT's mapping
  auto punches = t.net.events_of<node_engine::punch_wanted>(2);
  ASSERT_EQ(punches.size(), 1u);
  EXPECT_EQ(punches[0].peer, t.net[0].id());
  EXPECT_EQ(punches[0].address, datagram_engines::address(0));  // A as C sees it
  EXPECT_EQ(t.net[1].stats().introductions, 1u);
  EXPECT_EQ(t.net[2].stats().punches_wanted, 1u);
  EXPECT_TRUE(t.net.events_of<node_engine::punch_wanted>(0).empty());

  // A dials the address it was given, expecting B's key.
  t.net.dial(0, 2, t.net[2].id());
  EXPECT_TRUE(t.net.run([&] { return t.net[0].connection_to(t.net[2].id()).has_value(); }));
}

TEST(Introduce, APeerTheIntroducerHasNoSessionWithIsNotFound) {
  triangle t;
  reply r = t.ask(fixed_identity(77).id());
  EXPECT_EQ(r.ec, errc::nack);
  EXPECT_EQ(r.code, wire::nack_code::not_found);
  EXPECT_EQ(t.net[1].stats().introductions, 0u);
}

TEST(Introduce, NoNodeIsIntroducedToItself) {
  triangle t;
  EXPECT_EQ(t.ask(t.net[0].id()).code, wire::nack_code::bad_request);
  EXPECT_EQ(t.ask(t.net[1].id()).code, wire::nack_code::bad_request);
  EXPECT_TRUE(t.net.events_of<node_engine::punch_wanted>(0).empty());
}

TEST(Introduce, ATargetThatRefusesIsPassedOnAndPunchesNothing) {
  node_config refusing;
  refusing.introductions_per_second = 0;
  triangle t({}, refusing);
  reply r = t.ask(t.net[2].id());
  EXPECT_EQ(r.code, wire::nack_code::unsupported_opcode);
  EXPECT_NE(r.text.find("refused"), std::string::npos) << r.text;
  EXPECT_TRUE(t.net.events_of<node_engine::punch_wanted>(2).empty());
}

TEST(Introduce, ASilentTargetEndsInNotFoundAtTheIntroducersTimeout) {
  node_config impatient;
  impatient.request_timeout = 500ms;
  triangle t(impatient);
  // From now on nothing C sends reaches B.
  t.net.filter = [](const datagram_engines::datagram& d) { return !(d.from == 1 && d.to == 2); };
  const auto asked = t.net.now;
  reply r = t.ask(t.net[2].id());
  EXPECT_EQ(r.code, wire::nack_code::not_found);
  EXPECT_LT(t.net.now - asked, 2s);
}

TEST(Introduce, IntroductionsBeyondTheRateAreRefused) {
  node_config scarce;
  scarce.introductions_per_second = 2;
  triangle t(scarce);
  std::vector<request_id> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(t.net[0].request(t.net.now, t.a_to_c, introduce_op, wire::introduce{t.net[2].id(), {}}, 10s));
  ASSERT_TRUE(t.net.run([&] { return t.net.events_of<node_engine::request_done>(0).size() >= 3; }));
  std::size_t limited = 0, introduced = 0;
  for (const auto& d : t.net.events_of<node_engine::request_done>(0)) {
    limited += d.result.code == wire::nack_code::rate_limited;
    introduced += !d.result.ec;
  }
  EXPECT_EQ(limited, 1u);
  EXPECT_EQ(introduced, 2u);
  EXPECT_EQ(t.net[1].stats().introductions_refused, 1u);
  // A second later the budget is back.
  t.net.now += 1s;
  EXPECT_FALSE(t.ask(t.net[2].id()).ec);
}

TEST(Introduce, APunchIsCountedAndDroppedAndTheSessionGoesOn) {
  triangle t;
  const auto before = t.net[1].stats();
  t.net.inject(0, 1, node_engine::punch_packet());
  t.net.inject(7, 1, node_engine::punch_packet());  // from an address with no session at all
  byte_vector with_payload = node_engine::punch_packet();
  with_payload[3] = 1;
  with_payload.push_back(0);
  t.net.inject(0, 1, with_payload);  // a punch has no payload
  const auto after = t.net[1].stats();
  EXPECT_EQ(after.punches_received, before.punches_received + 2);
  EXPECT_EQ(after.datagrams_dropped, before.datagrams_dropped + 1);
  EXPECT_EQ(t.net[1].peers().size(), 2u);
  EXPECT_FALSE(t.ask(t.net[2].id()).ec);
}

TEST(Introduce, OverAStreamSessionItIsABadRequest) {
  testing::engine_pair p;
  p.connect();
  p.a.request(p.now, p.a_conn, introduce_op, wire::introduce{fixed_identity(9).id(), {}});
  p.exchange();
  auto done = p.events_of<node_engine::request_done>(p.a_events);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].result.code, wire::nack_code::bad_request);
}

}  // namespace
}  // namespace kadnet::core
