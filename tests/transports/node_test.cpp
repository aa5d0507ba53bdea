// kadnet::node over real TCP and UDP sockets on loopback.
#include "kadnet/transports/node.hpp"

#include <gtest/gtest.h>

#include <future>
#include <list>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include "kadnet/core/errors.hpp"
#include "tests/support/loopback_nodes.hpp"
#include "tests/support/raw_peer.hpp"

namespace kadnet {
namespace {

using boost::system::error_code;
using testing::loopback_nodes;
using testing::wait;
using namespace std::chrono_literals;

constexpr std::uint8_t echo = 64;

void add_echo(node& n) {
  n.add_handler(echo, [](const node_id&, byte_span in) { return byte_vector(in.begin(), in.end()); });
}

reply call(node& from, const peer_ref& to, std::uint8_t opcode, byte_vector payload, error_code* ec_out = nullptr) {
  auto [ec, r] = wait<error_code, reply>([&](auto h) { from.async_call(to, opcode, std::move(payload), h); });
  if (ec_out) *ec_out = ec;
  else EXPECT_FALSE(ec) << ec.message() << " " << r.text;
  return r;
}

// The node's RPC and plugin behaviour is the same over every transport.
class NodeOverTransport : public ::testing::TestWithParam<std::string> {};

error_code ping(node& from, const peer_ref& to) {
  auto [ec, rtt] = wait<error_code, std::chrono::microseconds>([&](auto h) { from.async_ping(to, h); });
  return ec;
}

TEST_P(NodeOverTransport, PingsWorkBothWays) {
  loopback_nodes net(GetParam());
  net.add();
  net.add();
  EXPECT_FALSE(ping(net[0], net.address(1)));
  EXPECT_FALSE(ping(net[1], net.address(0)));
  // The session now exists, so the NodeId alone reaches the peer.
  EXPECT_FALSE(ping(net[0], net[1].id()));
}

TEST_P(NodeOverTransport, ANodeThatListensNowhereLearnsHowItsPeersSeeIt) {
  loopback_nodes net(GetParam());
  net.add();
  node client(net.io().get_executor());  // no listener: an empty ANNOUNCE asks (PROTOCOL.md 5.13)
  EXPECT_EQ(std::get<0>(wait<std::optional<std::string>>([&](auto h) { client.async_observed_address(h); })), std::nullopt);
  EXPECT_FALSE(ping(client, net.address(0)));
  // The ANNOUNCE went out before the PING on the same ordered session, and was answered first.
  auto [seen] = wait<std::optional<std::string>>([&](auto h) { client.async_observed_address(h); });
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->rfind("127.0.0.1:", 0), 0u) << *seen;
  client.async_stop(boost::asio::use_future).get();
}

TEST_P(NodeOverTransport, ConnectReportsThePeerIdentity) {
  loopback_nodes net(GetParam());
  net.add();
  auto& b = net.add();
  auto [ec, peer] = wait<error_code, node_id>([&](auto h) { net[0].async_connect(net.address(1), std::nullopt, h); });
  EXPECT_FALSE(ec);
  EXPECT_EQ(peer, b.id());
}

TEST_P(NodeOverTransport, DialingTheWrongIdentityFails) {
  loopback_nodes net(GetParam());
  net.add();
  net.add();
  auto other = core::identity::generate().id();
  auto [ec, peer] = wait<error_code, node_id>([&](auto h) { net[0].async_connect(net.address(1), other, h); });
  EXPECT_EQ(ec, make_error_code(core::errc::unexpected_identity));
}

// A port nobody listens on: the dial fails with connection_refused, over UDP as over TCP (the
// ICMP port unreachable its hello brings back, instead of the handshake's 5 s timeout); the
// node then dials a live peer as before.
TEST_P(NodeOverTransport, ADialToAPortNobodyListensOnIsRefused) {
  loopback_nodes net(GetParam());
  net.add();
  net.add();
  std::uint16_t closed_port = 0;
  if (GetParam() == "udp") {
    boost::asio::ip::udp::socket probe(net.io(), boost::asio::ip::udp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    closed_port = probe.local_endpoint().port();
  } else {
    boost::asio::ip::tcp::acceptor probe(net.io(), boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    closed_port = probe.local_endpoint().port();
  }  // closed here: nothing listens on the port any more
  const uri nobody{GetParam(), "127.0.0.1", closed_port};
  auto [ec, peer] = wait<error_code, node_id>([&](auto h) { net[0].async_connect(nobody, std::nullopt, h); });
  EXPECT_EQ(ec, boost::asio::error::connection_refused) << ec.message();
  EXPECT_EQ(ping(net[0], nobody), boost::asio::error::connection_refused) << "a second try is refused again";
  EXPECT_FALSE(ping(net[0], net.address(1)));
}

// A port that takes a dial's first packets and never answers: a bound UDP socket nobody reads,
// or a TCP listener nobody accepts from (the kernel completes the connection; no hello or
// upgrade reply ever comes).
struct silent_port {
  silent_port(boost::asio::io_context& io, const std::string& transport) : udp(io), tcp(io) {
    const auto loopback = boost::asio::ip::make_address("127.0.0.1");
    std::uint16_t port = 0;
    if (transport == "udp") {
      udp = boost::asio::ip::udp::socket(io, boost::asio::ip::udp::endpoint(loopback, 0));
      port = udp.local_endpoint().port();
    } else {
      tcp = boost::asio::ip::tcp::acceptor(io, boost::asio::ip::tcp::endpoint(loopback, 0));
      port = tcp.local_endpoint().port();
    }
    where = uri{transport, "127.0.0.1", port};
  }
  boost::asio::ip::udp::socket udp;
  boost::asio::ip::tcp::acceptor tcp;
  uri where;
};

// Per-operation cancellation of the operations that wait for a session: a connect, a stream's
// opening and an unreliable datagram to a peer that never answers end with operation_aborted
// at once (the handshake would wait for its 600 s timeout), and send nothing for the peer.
TEST_P(NodeOverTransport, WaitingForASessionCanBeCancelled) {
  loopback_nodes net(GetParam());
  core::node_config patient;
  patient.handshake_timeout = 600s;
  auto& a = net.add(patient);
  net.add();
  silent_port silent(net.io(), GetParam());
  std::list<boost::asio::cancellation_signal> signals;  // each outlives its operation
  auto cancelled = [&](boost::asio::cancellation_type type, auto start) {
    auto& cancel = signals.emplace_back();
    auto ended = std::make_shared<std::promise<error_code>>();
    start(boost::asio::bind_cancellation_slot(cancel.slot(), [ended](error_code ec, auto&&...) { ended->set_value(ec); }));
    boost::asio::post(a.get_executor(), [&cancel, type] { cancel.emit(type); });
    auto f = ended->get_future();
    if (f.wait_for(30s) != std::future_status::ready) return make_error_code(core::errc::timeout);
    return f.get();
  };
  EXPECT_EQ(cancelled(boost::asio::cancellation_type::total,
                      [&](auto h) { a.async_connect(silent.where, std::nullopt, std::move(h)); }),
            boost::asio::error::operation_aborted);
  EXPECT_EQ(cancelled(boost::asio::cancellation_type::terminal,
                      [&](auto h) { a.async_open_stream(silent.where, "chat/1", std::move(h)); }),
            boost::asio::error::operation_aborted);
  if (GetParam() == "udp") {
    EXPECT_EQ(cancelled(boost::asio::cancellation_type::partial,
                        [&](auto h) { a.async_send_datagram(silent.where, 70, byte_vector{1}, std::move(h)); }),
              boost::asio::error::operation_aborted);
  }
  // A cancellation after the session came changes nothing; the node goes on.
  boost::asio::cancellation_signal late;
  auto [ec, peer] = wait<error_code, node_id>([&](auto h) {
    a.async_connect(net.address(1), std::nullopt, boost::asio::bind_cancellation_slot(late.slot(), std::move(h)));
  });
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(peer, net[1].id());
  boost::asio::post(a.get_executor(), [&] { late.emit(boost::asio::cancellation_type::total); });
  EXPECT_FALSE(ping(a, net.address(1)));
}

// The usual way to give a connect a deadline: race it against a timer; the connect loses and
// ends at once (were it not cancellable, `||` would wait for the handshake's 600 s timeout).
TEST_P(NodeOverTransport, AConnectRacedAgainstATimerEndsWithTheTimer) {
  using namespace boost::asio::experimental::awaitable_operators;
  loopback_nodes net(GetParam());
  core::node_config patient;
  patient.handshake_timeout = 600s;
  auto& a = net.add(patient);
  silent_port silent(net.io(), GetParam());
  auto outcome = boost::asio::co_spawn(
      a.get_executor(),
      [&]() -> boost::asio::awaitable<std::size_t> {
        boost::asio::steady_timer timer(a.get_executor(), 100ms);
        auto r = co_await (a.async_connect(silent.where, std::nullopt, boost::asio::use_awaitable) ||
                           timer.async_wait(boost::asio::use_awaitable));
        co_return r.index();
      },
      boost::asio::use_future);
  ASSERT_EQ(outcome.wait_for(30s), std::future_status::ready);
  EXPECT_EQ(outcome.get(), 1u) << "the timer won";
}

TEST_P(NodeOverTransport, ReusedSessionIsStillCheckedAgainstTheExpectedIdentity) {
  loopback_nodes net(GetParam());
  net.add();
  net.add();
  EXPECT_FALSE(ping(net[0], net.address(1)));  // a session to that address now exists
  auto other = core::identity::generate().id();
  auto [ec, peer] = wait<error_code, node_id>([&](auto h) { net[0].async_connect(net.address(1), other, h); });
  EXPECT_EQ(ec, make_error_code(core::errc::unexpected_identity));
}

TEST_P(NodeOverTransport, HandlerMayStopItsOwnNode) {
  loopback_nodes net(GetParam());
  net.add();
  auto& b = net.add();
  b.add_handler(68, [&b](const node_id&, byte_span) {
    b.stop();
    return byte_vector{1};
  });
  error_code ec;
  call(net[0], net.address(1), 68, {}, &ec);
  // Whatever the caller saw (the reply raced the close), the stopped node did not crash and the
  // caller's node still works.
  net.add();
  EXPECT_FALSE(ping(net[0], net.address(2)));
}

TEST_P(NodeOverTransport, CompletionNeverRunsInsideTheInitiatingCall) {
  loopback_nodes net(GetParam());
  net.add();
  std::promise<bool> inline_seen;
  auto returned = std::make_shared<bool>(false);
  boost::asio::post(net[0].get_executor(), [&, returned] {
    // Fails at once (no session with that id), yet must complete only after this call returned.
    net[0].async_ping(core::identity::generate().id(), [&, returned](error_code, std::chrono::microseconds) {
      inline_seen.set_value(!*returned);
    });
    *returned = true;
  });
  EXPECT_FALSE(inline_seen.get_future().get());
}

// The node may be gone when a ping's reply comes: the completion must not touch it (ASan saw
// a read of the destroyed node here once).
TEST_P(NodeOverTransport, APingMayOutliveItsNode) {
  loopback_nodes net(GetParam());
  net.add();
  std::promise<error_code> done;
  {
    node client(net.io().get_executor());
    client.async_ping(net.address(0), [&](error_code ec, std::chrono::microseconds) { done.set_value(ec); });
  }  // destroyed at once, the ping under way
  auto finished = done.get_future();
  ASSERT_EQ(finished.wait_for(30s), std::future_status::ready) << "the ping never completed";
  finished.get();  // success or shutting_down, whichever came first: only that it completed
}

TEST_P(NodeOverTransport, CallsToReservedOpcodesAreRefusedBeforeAnythingIsSent) {
  loopback_nodes net(GetParam());
  net.add();
  for (std::uint8_t opcode : {0, 1, 10, 63}) {
    EXPECT_THROW(net[0].async_call(net.address(0), opcode, {}, [](error_code, reply) {}), std::invalid_argument)
        << int(opcode);
    EXPECT_THROW(net[0].async_send_datagram(net.address(0), opcode, {}, [](error_code) {}), std::invalid_argument)
        << int(opcode);
  }
}

TEST(Node, ListenTakesTextAndSaysWhatIsWrongWithIt) {
  boost::asio::io_context io;
  node n(io.get_executor());
  const uri bound = n.listen("tcp://127.0.0.1:0");
  EXPECT_EQ(bound.scheme, "tcp");
  EXPECT_NE(bound.port, 0);
  try {
    n.listen("tcp://127.0.0.1");
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("missing :port"), std::string::npos) << e.what();
  }
  n.stop();
  io.poll();  // the stop runs on the node's strand
  EXPECT_THROW(n.listen("tcp://127.0.0.1:0"), std::logic_error) << "a stopped node accepts nothing";
}

TEST_P(NodeOverTransport, UnknownNodeIdIsNotConnected) {
  loopback_nodes net(GetParam());
  net.add();
  EXPECT_EQ(ping(net[0], core::identity::generate().id()), make_error_code(core::errc::not_connected));
}

boost::asio::awaitable<void> echo_once(node& from, uri to, std::promise<byte_vector>* got) {
  byte_vector payload(1, 4);  // built outside co_await: GCC 12 rejects a braced list inside it
  reply r = co_await from.async_call(to, echo, std::move(payload), boost::asio::use_awaitable);
  got->set_value(r.data);
}

TEST_P(NodeOverTransport, PluginCallsWorkWithEveryCompletionToken) {
  loopback_nodes net(GetParam());
  net.add();
  add_echo(net.add());
  // Callback.
  EXPECT_EQ(call(net[0], net.address(1), echo, {1, 2}).data, (byte_vector{1, 2}));
  // std::future: a NACK or timeout becomes an exception, success a value.
  auto fut = net[0].async_call(net.address(1), echo, byte_vector{3}, boost::asio::use_future);
  EXPECT_EQ(fut.get().data, byte_vector{3});
  // C++20 coroutine.
  std::promise<byte_vector> got;
  boost::asio::co_spawn(net.io(), echo_once(net[0], net.address(1), &got), boost::asio::detached);
  EXPECT_EQ(got.get_future().get(), byte_vector{4});
}

TEST_P(NodeOverTransport, UnknownOpcodeAndThrowingHandlerAreNackedAndTheNodeGoesOn) {
  loopback_nodes net(GetParam());
  net.add();
  auto& b = net.add();
  add_echo(b);
  b.add_handler(65, [](const node_id&, byte_span) -> byte_vector { throw std::runtime_error("broken plugin"); });
  error_code ec;
  auto r = call(net[0], net.address(1), 99, {}, &ec);
  EXPECT_EQ(ec, make_error_code(core::errc::unsupported_opcode));
  EXPECT_EQ(r.text, "unsupported opcode");
  r = call(net[0], net.address(1), 65, {}, &ec);
  EXPECT_EQ(ec, make_error_code(core::errc::handler_failed));
  EXPECT_NE(r.text.find("broken plugin"), std::string::npos);
  EXPECT_EQ(call(net[0], net.address(1), echo, {8}).data, byte_vector{8});
}

TEST_P(NodeOverTransport, AsyncHandlerMayAnswerFromAnotherThread) {
  loopback_nodes net(GetParam());
  net.add();
  auto& b = net.add();
  std::vector<std::thread> workers;
  std::mutex m;
  b.add_async_handler(66, [&](const node_id& caller, byte_span in, core::plugin_reply reply) {
    byte_vector data(in.begin(), in.end());
    data.insert(data.end(), caller.bytes().begin(), caller.bytes().begin() + 4);
    std::lock_guard lock(m);
    workers.emplace_back([reply, data] { reply(data); });
  });
  auto r = call(net[0], net.address(1), 66, {7});
  byte_vector expected{7};
  expected.insert(expected.end(), net[0].id().bytes().begin(), net[0].id().bytes().begin() + 4);
  EXPECT_EQ(r.data, expected);
  std::lock_guard lock(m);
  for (auto& t : workers) t.join();
}

TEST_P(NodeOverTransport, RequestsTimeOutAsAnErrorCode) {
  loopback_nodes net(GetParam());
  core::node_config fast;
  fast.request_timeout = 200ms;
  net.add(fast);
  auto& b = net.add();
  b.add_async_handler(67, [](const node_id&, byte_span, core::plugin_reply) {});  // never answers
  error_code ec;
  call(net[0], net.address(1), 67, {}, &ec);
  EXPECT_EQ(ec, make_error_code(core::errc::timeout));
}

// Per-operation cancellation of a call: it ends with operation_aborted at once, and the reply
// that comes later is dropped (the handler runs once).
TEST_P(NodeOverTransport, ACallCanBeCancelledAndItsLateReplyIsDropped) {
  loopback_nodes net(GetParam());
  net.add();
  auto& b = net.add();
  std::promise<core::plugin_reply> held;
  b.add_async_handler(67, [&](const node_id&, byte_span, core::plugin_reply reply) { held.set_value(reply); });
  boost::asio::cancellation_signal cancel;
  std::atomic<int> completions{0};
  std::promise<error_code> ended;
  net[0].async_call(net.address(1), 67, {}, boost::asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec, reply) {
                      if (++completions == 1) ended.set_value(ec);
                    }));
  auto reply_later = held.get_future().get();  // the call reached the handler
  boost::asio::post(net[0].get_executor(), [&] { cancel.emit(boost::asio::cancellation_type::terminal); });
  EXPECT_EQ(ended.get_future().get(), boost::asio::error::operation_aborted);
  reply_later(byte_vector{1});
  EXPECT_FALSE(ping(net[0], net.address(1))) << "the node goes on";  // the late reply came before this
  EXPECT_EQ(completions.load(), 1);
}

TEST_P(NodeOverTransport, ACallRacedAgainstATimerEndsWithTheTimer) {
  using namespace boost::asio::experimental::awaitable_operators;
  loopback_nodes net(GetParam());
  core::node_config patient;
  patient.request_timeout = 600s;  // only a cancelled call ends within the test's wait
  auto& a = net.add(patient);
  auto& b = net.add();
  b.add_async_handler(67, [](const node_id&, byte_span, core::plugin_reply) {});  // never answers
  const uri to = net.address(1);
  auto outcome = boost::asio::co_spawn(
      a.get_executor(),
      [&]() -> boost::asio::awaitable<std::size_t> {
        boost::asio::steady_timer timer(a.get_executor(), 100ms);
        auto r = co_await (a.async_call(to, 67, {}, boost::asio::use_awaitable) || timer.async_wait(boost::asio::use_awaitable));
        co_return r.index();
      },
      boost::asio::use_future);
  ASSERT_EQ(outcome.wait_for(30s), std::future_status::ready);
  EXPECT_EQ(outcome.get(), 1u) << "the timer won";
}

class NodeCompression : public ::testing::TestWithParam<std::tuple<std::string, compression::codec_id>> {};

TEST_P(NodeCompression, CallsRoundTripCompressedWithTheOnlyCommonMethod) {
  auto [transport, method] = GetParam();
  loopback_nodes net(transport);
  core::node_config cfg;
  cfg.compression = {method};
  net.add(cfg);
  add_echo(net.add(cfg));
  std::string text;
  for (int i = 0; text.size() < 64 * 1024; ++i) text += "kademlia node " + std::to_string(i % 97) + " stores values; ";
  byte_vector payload(text.begin(), text.end());
  auto peers_of = [&](node& n) {
    return std::get<0>(wait<std::vector<core::node_engine::peer_info>>([&](auto h) { n.async_peers(h); }));
  };
  // A ping's round trip also carries the option ACKs, which the node sent just before it.
  ASSERT_FALSE(ping(net[0], net.address(1)));
  auto before = peers_of(net[0]);
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before[0].sending_with, method);
  EXPECT_EQ(call(net[0], net.address(1), echo, payload).data, payload);
  // The 64 KiB request went out compressed, and so did the 64 KiB reply.
  EXPECT_LT(peers_of(net[0])[0].counters.bytes_out - before[0].counters.bytes_out, payload.size() / 4);
  EXPECT_LT(peers_of(net[1])[0].counters.bytes_out, payload.size() / 4);
}

INSTANTIATE_TEST_SUITE_P(EveryMethod, NodeCompression,
                         ::testing::Combine(::testing::ValuesIn(testing::loopback_transports()), ::testing::ValuesIn(compression::all_codecs())),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::string(compression::codec_name(std::get<1>(info.param)));
                         });

TEST_P(NodeOverTransport, ACallOfAlmostTheLargestMessageArrivesIntact) {
  // Far more than one TCP read, UDP datagram or WebSocket message (64 KiB at most) carries.
  core::node_config config;
  config.compression.clear();  // the bytes cross as they are
  loopback_nodes net(GetParam());
  net.add(config);
  add_echo(net.add(config));
  byte_vector payload(config.max_message_size - 4096);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>(i * 7 + i / 251);
  EXPECT_EQ(call(net[0], net.address(1), echo, payload).data, payload);
}

TEST_P(NodeOverTransport, TwentyNodesPingAndCallEachOther) {
  loopback_nodes net(GetParam());
  for (int i = 0; i < 20; ++i) add_echo(net.add());
  std::vector<std::future<reply>> calls;
  for (std::size_t i = 0; i < net.size(); ++i)
    for (std::size_t j = 0; j < net.size(); ++j)
      if (i != j)
        calls.push_back(net[i].async_call(net.address(j), echo, byte_vector{static_cast<std::uint8_t>(i),
                                                                            static_cast<std::uint8_t>(j)},
                                          boost::asio::use_future));
  std::size_t k = 0;
  for (std::size_t i = 0; i < net.size(); ++i)
    for (std::size_t j = 0; j < net.size(); ++j)
      if (i != j) {
        EXPECT_EQ(calls[k++].get().data, (byte_vector{static_cast<std::uint8_t>(i), static_cast<std::uint8_t>(j)}));
      }
  for (std::size_t i = 1; i < net.size(); ++i) EXPECT_FALSE(ping(net[0], net[i].id()));
}

INSTANTIATE_TEST_SUITE_P(Loopback, NodeOverTransport, ::testing::ValuesIn(testing::loopback_transports()),
                         [](const auto& info) { return info.param; });

core::engine_counters stats_of(node& n) {
  return std::get<0>(wait<core::engine_counters>([&](auto h) { n.async_stats(h); }));
}

TEST(NodeHostileInput, RandomBytesCloseOnlyThatConnection) {
  loopback_nodes net;
  net.add();
  add_echo(net.add());
  EXPECT_FALSE(ping(net[0], net.address(1)));
  testing::raw_peer attacker(net.address(1));
  byte_vector garbage(3000);
  std::uint32_t x = 12345;
  for (auto& b : garbage) b = static_cast<std::uint8_t>((x = x * 1103515245 + 12345) >> 16);
  garbage[1] = 0x55;  // an undefined packet type, so the very first header is bad
  attacker.send_raw(garbage);
  EXPECT_TRUE(attacker.closed_by_peer());
  EXPECT_EQ(call(net[0], net.address(1), echo, {1}).data, byte_vector{1});
  EXPECT_GE(stats_of(net[1]).sessions.malformed, 1u);
}

TEST(NodeHostileInput, TruncatedHelloIsDroppedAndOthersAreServed) {
  loopback_nodes net;
  net.add();
  add_echo(net.add());
  testing::raw_peer attacker(net.address(1));
  byte_vector hello = core::session::dial(core::identity::generate(), {}, std::nullopt, {}).take_transmit();
  attacker.send_raw(byte_span(hello).first(hello.size() / 2));
  attacker.shutdown_send();
  EXPECT_TRUE(attacker.closed_by_peer());
  EXPECT_EQ(call(net[0], net.address(1), echo, {2}).data, byte_vector{2});
}

TEST(NodeHostileInput, WrongVersionIsRefusedWithTextBothSidesCanShow) {
  loopback_nodes net;
  net.add();
  add_echo(net.add());
  testing::raw_peer old_client(net.address(1));
  byte_vector hello = core::session::dial(core::identity::generate(), {}, std::nullopt, {}).take_transmit();
  hello[0] = 2;  // protocol version 2
  old_client.send_raw(hello);
  byte_vector answer = old_client.read_until_closed();
  ASSERT_GE(answer.size(), 4u);
  core::wire::packet_view p;
  ASSERT_FALSE(core::wire::parse_packet(answer, p));
  EXPECT_EQ(p.type, core::wire::packet_type::refuse);
  core::crypto::refusal refusal;
  ASSERT_FALSE(core::crypto::decode_refuse(p.payload, refusal));
  EXPECT_NE(refusal.text.find("version 2"), std::string::npos) << refusal.text;
  EXPECT_EQ(stats_of(net[1]).version_refusals, 1u);
  EXPECT_EQ(call(net[0], net.address(1), echo, {3}).data, byte_vector{3});
}

TEST(NodeHostileInput, FlippedByteInASealedPacketIsDroppedAndTheSessionGoesOn) {
  loopback_nodes net;
  net.add();
  testing::raw_peer peer(net.address(0));
  auto me = core::identity::generate();
  ASSERT_TRUE(peer.handshake(me));
  auto ping_msg = [](std::uint32_t id) { return core::wire::make_message(id, core::wire::ping{}); };
  byte_vector tampered = peer.seal(ping_msg(1000));
  tampered[tampered.size() - 3] ^= 0x01;
  peer.send_raw(tampered);
  peer.send_raw(peer.seal(ping_msg(1001)));
  for (int i = 0; i < 10; ++i) {  // skip the node's own option requests
    auto m = peer.next_message();
    ASSERT_TRUE(m);
    if (m->opcode != static_cast<std::uint8_t>(core::wire::opcode::ack)) continue;
    if (std::get<core::wire::ack>(m->body).request_opcode != static_cast<std::uint8_t>(core::wire::opcode::ping)) continue;
    EXPECT_EQ(m->id, 1001u);  // the tampered ping (1000) was never answered
    break;
  }
  EXPECT_EQ(stats_of(net[0]).sessions.auth_failures, 1u);
}

TEST(NodeHostileInput, PeerThatDoesNotReadItsRepliesIsCutOff) {
  loopback_nodes net;
  core::node_config tight;
  tight.max_message_size = 64 * 1024 + 1024;
  tight.max_queued_bytes_per_peer = 256 * 1024;
  tight.compression = {};
  auto& victim = net.add(tight);
  add_echo(victim);
  net.add();
  testing::raw_peer flooder(net.address(0));
  ASSERT_TRUE(flooder.handshake(core::identity::generate()));
  // 64 KiB echo requests, never reading the answers: bounded at 400 requests (25 MiB).
  bool cut = false;
  try {
    for (std::uint32_t i = 0; i < 400; ++i)
      flooder.send_raw(flooder.seal(core::wire::make_plugin_call(echo, i, byte_vector(64 * 1024, 0x5a))));
  } catch (const boost::system::system_error&) {
    cut = true;  // the node closed the connection under us
  }
  if (!cut) cut = flooder.closed_by_peer();
  EXPECT_TRUE(cut);
  EXPECT_GE(stats_of(victim).peers_cut_off, 1u);
  EXPECT_EQ(call(net[1], net.address(0), echo, {4}).data, byte_vector{4});
}

}  // namespace
}  // namespace kadnet
