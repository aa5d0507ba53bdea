// Reaching a node by its NodeId alone (peer_ref): the session we have, else a DHT lookup and a
// dial, else, for a node that only dials out, an introduction (PROTOCOL.md 5.14) or a relay
// (5.15) — over every loopback transport.
#include <gtest/gtest.h>

#include <algorithm>

#include "tests/support/loopback_nodes.hpp"

namespace kadnet {
namespace {

using boost::system::error_code;
using core::node_id;
using core::reply;
using testing::loopback_nodes;
using testing::wait;

constexpr std::uint8_t echo = 64;

void add_echo(node& n) {
  n.add_handler(echo, [](const node_id&, byte_span in) { return byte_vector(in.begin(), in.end()); });
}

error_code connect(node& from, const uri& to) {
  return std::get<0>(wait<error_code, node_id>([&](auto h) { from.async_connect(to, std::nullopt, h); }));
}

std::pair<error_code, std::string> call(node& from, const node_id& to, const std::string& text) {
  auto [ec, r] = wait<error_code, reply>(
      [&](auto h) { from.async_call(to, echo, byte_vector(text.begin(), text.end()), h); });
  return {ec, std::string(r.data.begin(), r.data.end())};
}

bool has_session_with(node& n, const node_id& peer, bool* inbound = nullptr) {
  auto peers = n.async_peers(boost::asio::use_future).get();
  auto it = std::find_if(peers.begin(), peers.end(), [&](const auto& p) { return p.peer == peer; });
  if (it != peers.end() && inbound) *inbound = it->inbound;
  return it != peers.end();
}

class Reach : public ::testing::TestWithParam<std::string> {};

TEST_P(Reach, ACallByNodeIdFindsANodeThatIsNoPeerThroughTheDht) {
  // A - B - C: A knows C only through B's routing table.
  loopback_nodes net(GetParam());
  auto& a = net.add();
  net.add();
  auto& c = net.add();
  add_echo(c);
  ASSERT_FALSE(connect(a, net.address(1)));
  ASSERT_FALSE(connect(c, net.address(1)));
  ASSERT_FALSE(has_session_with(a, c.id()));
  EXPECT_EQ(call(a, c.id(), "found by its key"), std::make_pair(error_code{}, std::string("found by its key")));
  EXPECT_TRUE(has_session_with(a, c.id()));
}

TEST_P(Reach, ANodeThatOnlyDialsOutIsReachedThroughAnIntroductionOrARelay) {
  // C listens nowhere and dialed B; A dialed B too. Nobody can hand C out, but B can introduce
  // A to it (UDP) or relay a session between them (any transport).
  loopback_nodes net(GetParam());
  auto& a = net.add();
  auto& b = net.add();
  auto& c = net.add_dialing_only();
  add_echo(c);
  ASSERT_FALSE(connect(c, net.address(1)));
  ASSERT_FALSE(connect(a, net.address(1)));
  auto [ec, text] = call(a, c.id(), "reached");
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(text, "reached");
  bool inbound = true;
  ASSERT_TRUE(has_session_with(a, c.id(), &inbound));
  EXPECT_FALSE(inbound);
  auto at_b = b.async_stats(boost::asio::use_future).get();
  auto at_c = c.async_stats(boost::asio::use_future).get();
  if (net.transport() == "udp") {
    // A dialed C itself, at the address B saw C at.
    EXPECT_EQ(at_b.introductions, 1u);
    EXPECT_EQ(at_c.punches_wanted, 1u);
    EXPECT_EQ(at_b.circuits_relayed, 0u);
  } else {
    // No hole punching over a byte-stream transport: B carries the session.
    EXPECT_EQ(at_b.introductions, 0u);
    EXPECT_EQ(at_b.circuits_relayed, 1u);
    EXPECT_EQ(at_c.relayed_sessions_accepted, 1u);
    EXPECT_GT(at_b.relayed_bytes, 0u);
  }
}

TEST_P(Reach, OwnIdAndAnUnknownIdEachHaveTheirError) {
  loopback_nodes net(GetParam());
  auto& a = net.add();
  net.add();
  ASSERT_FALSE(connect(a, net.address(1)));
  EXPECT_EQ(call(a, a.id(), "me").first, make_error_code(core::errc::own_id));
  EXPECT_EQ(call(a, core::identity::generate().id(), "anyone?").first, make_error_code(core::errc::peer_not_found));
}

INSTANTIATE_TEST_SUITE_P(Loopback, Reach, ::testing::ValuesIn(testing::loopback_transports()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kadnet
