// The UDP transport on real loopback sockets with seeded impairment (loss, duplication,
// reordering, delay): what a lossy path does to nodes, and what it must not do.
#include <future>
#include <optional>

#include <gtest/gtest.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "kadnet/core/errors.hpp"
#include "tests/support/loopback_nodes.hpp"
#include "kadnet/transports/node.hpp"

namespace kadnet {
namespace {

using boost::system::error_code;
using testing::loopback_nodes;
using testing::wait;
using namespace std::chrono_literals;
constexpr std::uint8_t echo = 64;

transports::udp_impairment lossy(std::uint64_t seed) {
  transports::udp_impairment i;
  i.loss = 0.10;
  i.duplicate = 0.05;
  i.reorder = 0.10;
  i.delay = 500us;
  i.jitter = 1000us;
  i.seed = seed;
  return i;
}

TEST(UdpTransport, CallsArriveIntactThroughLossDuplicationAndReordering) {
  loopback_nodes net("udp");
  auto& a = net.add();
  auto& b = net.add();
  b.add_handler(echo, [](const node_id&, byte_span in) { return byte_vector(in.begin(), in.end()); });
  a.set_udp_impairment(lossy(1));
  b.set_udp_impairment(lossy(2));
  std::vector<byte_vector> payloads;
  std::vector<std::future<reply>> calls;
  for (int k = 0; k < 40; ++k) {
    byte_vector p(20000 + 997 * k);
    for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(i * 13 + k);
    payloads.push_back(p);
    calls.push_back(a.async_call(net.address(1), echo, p, boost::asio::use_future));
  }
  for (int k = 0; k < 40; ++k) EXPECT_EQ(calls[k].get().data, payloads[k]) << "call " << k;
  auto stats = std::get<0>(wait<core::engine_counters>([&](auto h) { a.async_stats(h); }));
  EXPECT_EQ(stats.sessions_opened, 1u);
}

TEST(UdpTransport, APeerThatVanishesEndsTheSessionAtItsIdleTimeout) {
  core::node_config config;
  config.request_timeout = 120s;  // far beyond the test's limit: only the session can end it
  config.datagram.channel.idle_timeout = 1500ms;
  config.datagram.channel.keepalive = 500ms;
  loopback_nodes net("udp");
  auto& a = net.add(config);
  auto& b = net.add(config);
  b.add_async_handler(echo, [](const node_id&, byte_span, core::plugin_reply) {});  // never answers
  ASSERT_FALSE(std::get<0>(wait<error_code, std::chrono::microseconds>([&](auto h) { a.async_ping(net.address(1), h); })));
  transports::udp_impairment gone;
  gone.loss = 1.0;  // b goes silent, as a killed process would: no farewell
  b.set_udp_impairment(gone);
  auto [ec, r] = wait<error_code, reply>([&](auto h) { a.async_call(net.address(1), echo, byte_vector(100000, 7), h); });
  EXPECT_EQ(ec, make_error_code(core::errc::connection_closed));
}

TEST(UdpTransport, AStoppedNodeSaysFarewellSoItsPeersNeedNotWait) {
  core::node_config config;
  config.request_timeout = 120s;
  config.datagram.channel.idle_timeout = 120s;  // only the farewell can end the session in time
  loopback_nodes net("udp");
  auto& a = net.add(config);
  auto& b = net.add(config);
  b.add_async_handler(echo, [&b](const node_id&, byte_span, core::plugin_reply) { b.stop(); });
  auto [ec, r] = wait<error_code, reply>([&](auto h) { a.async_call(net.address(1), echo, byte_vector{1}, h); });
  EXPECT_EQ(ec, make_error_code(core::errc::connection_closed));
}

TEST(UdpTransport, UnreliableMessagesReachTheirHandler) {
  loopback_nodes net("udp");
  auto& a = net.add();
  auto& b = net.add();
  std::promise<std::pair<node_id, byte_vector>> got;
  b.add_datagram_handler(90, [&](const node_id& from, byte_span payload) {
    got.set_value({from, byte_vector(payload.begin(), payload.end())});
  });
  auto [ec] = wait<error_code>([&](auto h) { a.async_send_datagram(net.address(1), 90, byte_vector{4, 5, 6}, h); });
  EXPECT_FALSE(ec) << ec.message();
  auto [from, payload] = got.get_future().get();
  EXPECT_EQ(from, a.id());
  EXPECT_EQ(payload, (byte_vector{4, 5, 6}));
  auto [big] = wait<error_code>([&](auto h) { a.async_send_datagram(net.address(1), 90, byte_vector(1300, 1), h); });
  EXPECT_EQ(big, make_error_code(core::errc::too_large));
}

// The completion runs on the caller's own io_context, which has no other work: the operation's
// work guard must keep that io_context's run() going until the datagram went out (here after a
// handshake, as the nodes never met).
TEST(UdpTransport, ADatagramKeepsItsCallersIoContextRunningUntilItCompletes) {
  loopback_nodes net("udp");
  auto& a = net.add();
  auto& b = net.add();
  std::promise<void> arrived;
  b.add_datagram_handler(90, [&](const node_id&, byte_span) { arrived.set_value(); });
  boost::asio::io_context caller;
  std::optional<error_code> outcome;
  a.async_send_datagram(net.address(1), 90, byte_vector{7},
                        boost::asio::bind_executor(caller, [&](error_code ec) { outcome = ec; }));
  caller.run();  // returns once nothing keeps it busy
  ASSERT_TRUE(outcome.has_value()) << "run() returned before the completion";
  EXPECT_FALSE(*outcome) << outcome->message();
  arrived.get_future().get();
}

}  // namespace
}  // namespace kadnet
