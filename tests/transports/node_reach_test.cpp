// Reaching a node by its NodeId alone (peer_ref): the session we have, else a DHT lookup and a
// dial, else, for a node that only dials out, an introduction (PROTOCOL.md 5.14) or a relay
// (5.15) — over every loopback transport.
#include <gtest/gtest.h>

#include <algorithm>
#include <future>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>

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

// A caller that cancels while its peer is still being looked up is gone: the lookup ends, but
// nobody is asked for an introduction or a relay, and no session is made, on its behalf.
TEST_P(Reach, ACancelledWaitAsksNobodyToIntroduceOrRelay) {
  loopback_nodes net(GetParam());
  auto& a = net.add();
  auto& b = net.add();
  auto& c = net.add_dialing_only();
  ASSERT_FALSE(connect(c, net.address(1)));
  ASSERT_FALSE(connect(a, net.address(1)));
  boost::asio::cancellation_signal cancel;
  std::promise<error_code> ended;
  // Started and cancelled in one go on the node's executor: the lookup's first request is out,
  // and no answer can come before the cancellation.
  boost::asio::post(a.get_executor(), [&] {
    a.async_open_stream(c.id(), "chat/1", boost::asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec, auto&&...) {
                          ended.set_value(ec);
                        }));
    cancel.emit(boost::asio::cancellation_type::terminal);
  });
  EXPECT_EQ(ended.get_future().get(), boost::asio::error::operation_aborted);
  // The cancelled wait's lookup asked B first, over the same ordered session: once this lookup
  // is answered, so was that one, and whatever the wait went on to send B came before this ping.
  auto [found, result] = wait<error_code, dht::find_node_result>([&](auto h) { a.dht().find_node(c.id(), h); });
  EXPECT_FALSE(found) << found.message();
  ASSERT_FALSE(std::get<0>(wait<error_code, std::chrono::microseconds>([&](auto h) { a.async_ping(net.address(1), h); })));
  auto at_b = b.async_stats(boost::asio::use_future).get();
  EXPECT_EQ(at_b.introductions, 0u);
  EXPECT_EQ(at_b.circuits_relayed, 0u);
  EXPECT_FALSE(has_session_with(a, c.id()));
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
