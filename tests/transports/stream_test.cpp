// kadnet::stream over real sockets on loopback, over every transport (UDP, TCP, WebSocket): Asio's
// composed operations work on it, bytes arrive intact (over UDP through loss and reordering too),
// and the ends behave as documented.
#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include "kadnet/core/errors.hpp"
#include "tests/support/byte_pattern.hpp"
#include "tests/support/loopback_nodes.hpp"
#include "kadnet/transports/node.hpp"

namespace kadnet {
namespace {

using boost::system::error_code;
using testing::loopback_nodes;
using testing::wait;
using namespace std::chrono_literals;
namespace asio = boost::asio;

constexpr auto pattern = testing::byte_pattern;

stream open(node& from, const uri& to) {
  auto [ec, s] = wait<error_code, stream>([&](auto h) { from.async_open_stream(to, h); });
  EXPECT_FALSE(ec) << ec.message();
  return std::move(s);
}
stream accept(node& at) {
  auto [ec, s] = wait<error_code, stream>([&](auto h) { at.async_accept_stream(h); });
  EXPECT_FALSE(ec) << ec.message();
  return std::move(s);
}

// Reads until the end of the stream; returns what arrived and how the last read ended.
std::pair<byte_vector, error_code> read_all(stream& s) {
  byte_vector got;
  byte_vector chunk(64 * 1024);
  for (;;) {
    auto [ec, n] = wait<error_code, std::size_t>([&](auto h) { s.async_read_some(asio::buffer(chunk), h); });
    got.insert(got.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    if (ec) return {got, ec};
  }
}

class Stream : public ::testing::TestWithParam<std::string> {
 protected:
  loopback_nodes net{GetParam()};
};

TEST_P(Stream, AsioComposedWriteAndReadCarryEveryByteThenTheEnd) {
  auto& a = net.add();
  auto& b = net.add();
  auto out = open(a, net.address(1));
  auto in = accept(b);
  EXPECT_EQ(in.peer(), a.id());
  const auto data = pattern(8 << 20, 1);
  auto written = asio::async_write(out, asio::buffer(data), asio::use_future);
  byte_vector first(1000);
  EXPECT_EQ(asio::async_read(in, asio::buffer(first), asio::use_future).get(), 1000u);
  // The writer can finish only while the reader reads: flow control holds it back otherwise.
  auto reader = std::async(std::launch::async, [&] { return read_all(in); });
  EXPECT_EQ(written.get(), data.size());
  out.shutdown_send();
  auto [rest, ec] = reader.get();
  EXPECT_EQ(ec, asio::error::eof);
  first.insert(first.end(), rest.begin(), rest.end());
  EXPECT_EQ(first, data);
}

TEST_P(Stream, BothDirectionsOfOneStreamAtOnce) {
  auto& a = net.add();
  auto& b = net.add();
  auto x = open(a, net.address(1));
  auto y = accept(b);
  const auto ab = pattern(2 << 20, 2), ba = pattern(3 << 20, 3);
  auto w1 = asio::async_write(x, asio::buffer(ab), asio::use_future);
  auto w2 = asio::async_write(y, asio::buffer(ba), asio::use_future);
  byte_vector got_b(ab.size()), got_a(ba.size());
  auto r1 = asio::async_read(y, asio::buffer(got_b), asio::use_future);
  auto r2 = asio::async_read(x, asio::buffer(got_a), asio::use_future);
  EXPECT_EQ(w1.get() + w2.get(), ab.size() + ba.size());
  EXPECT_EQ(r1.get(), ab.size());
  EXPECT_EQ(r2.get(), ba.size());
  EXPECT_EQ(got_b, ab);
  EXPECT_EQ(got_a, ba);
}

TEST(StreamOverUdp, ArrivesIntactThroughLossReorderingAndDuplication) {
  loopback_nodes net("udp");
  auto& a = net.add();
  auto& b = net.add();
  transports::udp_impairment lossy;
  lossy.loss = 0.05;
  lossy.reorder = 0.05;
  lossy.duplicate = 0.01;
  lossy.jitter = 300us;
  lossy.seed = 7;
  a.set_udp_impairment(lossy);
  lossy.seed = 8;
  b.set_udp_impairment(lossy);
  auto out = open(a, net.address(1));
  auto in = accept(b);
  const auto data = pattern(8 << 20, 4);
  auto written = asio::async_write(out, asio::buffer(data), asio::use_future);
  auto done = std::async(std::launch::async, [&] { return read_all(in); });
  EXPECT_EQ(written.get(), data.size());
  out.shutdown_send();
  auto [got, ec] = done.get();
  EXPECT_EQ(ec, asio::error::eof);
  EXPECT_TRUE(got == data) << "received " << got.size() << " of " << data.size() << " bytes, or different ones";
}

TEST(StreamOverUdp, APeerLostMidStreamFailsTheReaderWithinTheIdleTimeout) {
  core::node_config config;
  config.datagram.channel.idle_timeout = 1500ms;
  config.datagram.channel.keepalive = 500ms;
  loopback_nodes net("udp");
  auto& a = net.add(config);
  auto& b = net.add(config);
  auto out = open(a, net.address(1));
  auto in = accept(b);
  EXPECT_EQ(asio::async_write(out, asio::buffer(pattern(100000, 5)), asio::use_future).get(), 100000u);
  transports::udp_impairment gone;
  gone.loss = 1.0;  // a dies without a word
  a.set_udp_impairment(gone);
  auto [got, ec] = read_all(in);
  EXPECT_LE(got.size(), 100000u);
  EXPECT_EQ(ec, make_error_code(core::errc::timeout)) << ec.message();
}

// A stream that is closed, or was never opened, says so instead of reading freed or null state.
TEST_P(Stream, AClosedOrDefaultStreamFailsPlainly) {
  auto& a = net.add();
  net.add();
  auto out = open(a, net.address(1));
  out.close();
  EXPECT_FALSE(out.is_open());
  EXPECT_THROW(out.peer(), std::logic_error);
  EXPECT_THROW(out.protocol(), std::logic_error);
  byte_vector buffer(4);
  auto [read_ec, read] = wait<error_code, std::size_t>([&](auto h) { out.async_read_some(asio::buffer(buffer), h); });
  EXPECT_EQ(read_ec, asio::error::bad_descriptor);
  auto [write_ec, written] = wait<error_code, std::size_t>([&](auto h) { out.async_write_some(asio::buffer(buffer), h); });
  EXPECT_EQ(write_ec, asio::error::bad_descriptor);

  stream never;
  EXPECT_THROW(never.get_executor(), std::logic_error);
}

TEST_P(Stream, AResetReachesThePeersReader) {
  auto& a = net.add();
  auto& b = net.add();
  auto out = open(a, net.address(1));
  EXPECT_EQ(asio::async_write(out, asio::buffer(pattern(10, 6)), asio::use_future).get(), 10u);
  auto in = accept(b);
  byte_vector ten(10);
  EXPECT_EQ(asio::async_read(in, asio::buffer(ten), asio::use_future).get(), 10u);
  out.reset();
  auto [got, ec] = read_all(in);
  EXPECT_EQ(ec, asio::error::connection_reset);
}

TEST_P(Stream, ManyStreamsAtOnceEachCarryTheirOwnBytes) {
  auto& a = net.add();
  auto& b = net.add();
  constexpr int count = 32;
  std::vector<stream> out, in;
  for (int i = 0; i < count; ++i) out.push_back(open(a, net.address(1)));
  for (int i = 0; i < count; ++i) in.push_back(accept(b));
  std::vector<std::future<std::size_t>> writes;
  for (int i = 0; i < count; ++i) {
    // Each stream's first byte says which it is: accepts need not come in the order of opens.
    auto data = pattern(64 * 1024, static_cast<std::uint64_t>(100 + i));
    data[0] = static_cast<std::uint8_t>(i);
    writes.push_back(std::async(std::launch::async, [&out, i, data] {
      auto n = asio::async_write(out[static_cast<std::size_t>(i)], asio::buffer(data), asio::use_future).get();
      out[static_cast<std::size_t>(i)].shutdown_send();
      return n;
    }));
  }
  for (auto& s : in) {
    auto [got, ec] = read_all(s);
    EXPECT_EQ(ec, asio::error::eof);
    ASSERT_EQ(got.size(), 64u * 1024);
    auto expected = pattern(64 * 1024, 100u + got[0]);
    expected[0] = got[0];
    EXPECT_TRUE(got == expected) << "stream " << int(got[0]);
  }
  for (auto& w : writes) EXPECT_EQ(w.get(), 64u * 1024);
}

TEST_P(Stream, AnAcceptCompletesOnAnIdleSessionBeforeAnyByteIsWritten) {
  auto& a = net.add();
  auto& b = net.add();
  auto [ping_ec, rtt] = wait<error_code, std::chrono::microseconds>([&](auto h) { a.async_ping(net.address(1), h); });
  ASSERT_FALSE(ping_ec) << ping_ec.message();  // a session, and nothing left to send on it
  auto out = open(a, net.address(1));
  auto accepted = b.async_accept_stream(asio::use_future);
  // Bounded only so that a hang fails the test: the accept needs nothing but the opening unit.
  ASSERT_EQ(accepted.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  auto in = accepted.get();
  EXPECT_EQ(in.peer(), a.id());
}

TEST_P(Stream, APeerThatStopsFailsTheReader) {
  auto& a = net.add();
  auto& b = net.add();
  auto out = open(a, net.address(1));
  auto in = accept(b);
  EXPECT_EQ(asio::async_write(out, asio::buffer(pattern(1000, 9)), asio::use_future).get(), 1000u);
  byte_vector first(1000);
  EXPECT_EQ(asio::async_read(in, asio::buffer(first), asio::use_future).get(), 1000u);
  a.async_stop(asio::use_future).get();
  auto [got, ec] = read_all(in);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(ec, make_error_code(core::errc::connection_closed)) << ec.message();
}

stream open(node& from, const uri& to, const std::string& protocol) {
  auto [ec, s] = wait<error_code, stream>([&](auto h) { from.async_open_stream(to, protocol, h); });
  EXPECT_FALSE(ec) << ec.message();
  return std::move(s);
}

// Writes `text`, ends the stream's direction, and returns what the other end read of it.
std::string carry(stream& from, stream& to, const std::string& text) {
  EXPECT_EQ(asio::async_write(from, asio::buffer(text), asio::use_future).get(), text.size());
  from.shutdown_send();
  auto [got, ec] = read_all(to);
  EXPECT_EQ(ec, asio::error::eof);
  return std::string(got.begin(), got.end());
}

TEST_P(Stream, EachStreamGoesToTheAcceptorOfTheProtocolItsHeaderNames) {
  auto& a = net.add();
  auto& b = net.add();
  auto chat = b.async_accept_stream("chat/1", asio::use_future);
  auto plain = b.async_accept_stream(asio::use_future);
  auto out_plain = open(a, net.address(1));
  auto out_chat = open(a, net.address(1), "chat/1");
  EXPECT_EQ(out_chat.protocol(), "chat/1");
  auto in_chat = chat.get();
  auto in_plain = plain.get();
  EXPECT_EQ(in_chat.protocol(), "chat/1");
  EXPECT_EQ(in_plain.protocol(), "");
  // The header is not part of what the acceptor reads.
  EXPECT_EQ(carry(out_chat, in_chat, "hello, chat"), "hello, chat");
  EXPECT_EQ(carry(out_plain, in_plain, "plain bytes"), "plain bytes");
}

TEST_P(Stream, AStreamOfAProtocolNobodyServesIsRefused) {
  auto& a = net.add();
  auto& b = net.add();
  auto served = b.async_accept_stream("served", asio::use_future);
  auto out = open(a, net.address(1), "not-served");
  auto [got, ec] = read_all(out);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(ec, make_error_code(core::errc::protocol_not_served)) << ec.message();
  EXPECT_EQ(served.wait_for(0s), std::future_status::timeout) << "nothing for the protocol b serves";
}

TEST_P(Stream, AServedProtocolsStreamsWaitForTheirNextAccept) {
  auto& a = net.add();
  auto& b = net.add();
  auto first = b.async_accept_stream("jobs", asio::use_future);
  auto out1 = open(a, net.address(1), "jobs");
  auto in1 = first.get();
  // Nobody accepts "jobs" now, but b serves it: the next one waits in the backlog.
  auto out2 = open(a, net.address(1), "jobs");
  EXPECT_EQ(asio::async_write(out2, asio::buffer(std::string("second")), asio::use_future).get(), 6u);
  auto [ec, in2] = wait<error_code, stream>([&](auto h) { b.async_accept_stream("jobs", h); });
  ASSERT_FALSE(ec) << ec.message();
  byte_vector six(6);
  EXPECT_EQ(asio::async_read(in2, asio::buffer(six), asio::use_future).get(), 6u);
  EXPECT_EQ(std::string(six.begin(), six.end()), "second");
}

// Per-operation cancellation: an accept still waiting and a read still pending end with
// operation_aborted when their slot is signalled, and take nothing with them: the protocol stays
// served, the stream keeps its bytes.
TEST_P(Stream, AWaitingAcceptAndAPendingReadCanBeCancelled) {
  auto& a = net.add();
  auto& b = net.add();
  asio::cancellation_signal cancel_accept;
  std::promise<error_code> accept_ended;
  b.async_accept_stream("jobs", asio::bind_cancellation_slot(cancel_accept.slot(), [&](error_code ec, stream) {
                          accept_ended.set_value(ec);
                        }));
  asio::post(b.get_executor(), [&] { cancel_accept.emit(asio::cancellation_type::terminal); });
  EXPECT_EQ(accept_ended.get_future().get(), asio::error::operation_aborted);

  auto out = open(a, net.address(1), "jobs");  // served still: it waits for the next accept
  auto [ec, in] = wait<error_code, stream>([&](auto h) { b.async_accept_stream("jobs", h); });
  ASSERT_FALSE(ec) << ec.message();

  asio::cancellation_signal cancel_read;
  std::promise<std::pair<error_code, std::size_t>> read_ended;
  byte_vector buffer(16);
  in.async_read_some(asio::buffer(buffer), asio::bind_cancellation_slot(cancel_read.slot(), [&](error_code e, std::size_t n) {
                       read_ended.set_value({e, n});
                     }));
  asio::post(b.get_executor(), [&] { cancel_read.emit(asio::cancellation_type::terminal); });
  EXPECT_EQ(read_ended.get_future().get(), std::make_pair(error_code(asio::error::operation_aborted), std::size_t{0}));
  EXPECT_EQ(asio::async_write(out, asio::buffer(std::string("after")), asio::use_future).get(), 5u);
  byte_vector five(5);
  EXPECT_EQ(asio::async_read(in, asio::buffer(five), asio::use_future).get(), 5u);
  EXPECT_EQ(std::string(five.begin(), five.end()), "after");
}

// A write waits while the reader does not read (the window is full); cancelled then, it ends
// with operation_aborted and 0 bytes, and takes none: the reader later gets exactly what the
// completed writes took, then what is written after the cancel.
TEST_P(Stream, AWriteWaitingForRoomCanBeCancelledAndTakesNoByte) {
  auto& a = net.add();
  auto& b = net.add();
  // Served before the stream comes (one of a protocol nobody accepts yet is refused).
  auto accepted = b.async_accept_stream("sink", asio::use_future);
  auto out = open(a, net.address(1), "sink");
  stream in = accepted.get();

  const byte_vector block = testing::byte_pattern(256 * 1024, 7);
  std::size_t taken = 0;  // what completed writes took, in block order from its start each time
  byte_vector expected;
  bool aborted = false;
  for (int attempt = 0; attempt < 1000 && !aborted; ++attempt) {  // the window fills within a few MB
    asio::cancellation_signal cancel;
    std::promise<std::pair<error_code, std::size_t>> ended;
    out.async_write_some(asio::buffer(block), asio::bind_cancellation_slot(cancel.slot(), [&](error_code e, std::size_t n) {
                           ended.set_value({e, n});
                         }));
    asio::post(a.get_executor(), [&] { cancel.emit(asio::cancellation_type::terminal); });
    auto [e, n] = ended.get_future().get();
    if (e == asio::error::operation_aborted) {
      EXPECT_EQ(n, 0u);
      aborted = true;
    } else {
      ASSERT_FALSE(e) << e.message();
      taken += n;
      expected.insert(expected.end(), block.begin(), block.begin() + static_cast<std::ptrdiff_t>(n));
    }
  }
  ASSERT_TRUE(aborted) << "no write ever waited for room";
  const std::string after = "after the cancel";
  auto tail = std::async(std::launch::async, [&] { return asio::async_write(out, asio::buffer(after), asio::use_future).get(); });
  byte_vector got(taken + after.size());
  EXPECT_EQ(asio::async_read(in, asio::buffer(got), asio::use_future).get(), got.size());
  EXPECT_EQ(tail.get(), after.size());
  expected.insert(expected.end(), after.begin(), after.end());
  EXPECT_TRUE(got == expected) << "bytes lost or doubled around the cancelled write";
}

// The idiom that needs it: wait for a stream or a timer, whichever comes first.
TEST_P(Stream, AnAcceptRacedAgainstATimerEndsWithTheTimer) {
  using namespace asio::experimental::awaitable_operators;
  auto& b = net.add();
  auto outcome = asio::co_spawn(
      b.get_executor(),
      [&]() -> asio::awaitable<std::size_t> {
        asio::steady_timer timer(b.get_executor(), 50ms);
        auto r = co_await (b.async_accept_stream("nobody/1", asio::use_awaitable) || timer.async_wait(asio::use_awaitable));
        co_return r.index();
      },
      asio::use_future);
  ASSERT_EQ(outcome.wait_for(30s), std::future_status::ready) << "the accept was not cancelled";
  EXPECT_EQ(outcome.get(), 1u) << "the timer won";
}

TEST_P(Stream, StreamsNobodyAcceptsFillOnlyTheirOwnProtocolsBacklog) {
  auto& a = net.add();
  auto& b = net.add();
  // b never accepts the default protocol: 256 of its streams wait, the next ones are reset.
  std::vector<stream> parked;
  for (int i = 0; i < 260; ++i) parked.push_back(open(a, net.address(1)));
  auto [got, ec] = read_all(parked.back());
  EXPECT_EQ(ec, asio::error::connection_reset) << ec.message();
  // Another protocol's streams still reach their acceptor.
  auto accepted = b.async_accept_stream("other", asio::use_future);
  auto out = open(a, net.address(1), "other");
  ASSERT_EQ(accepted.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_EQ(accepted.get().protocol(), "other");
}

TEST_P(Stream, AProtocolNameThatIsNotPrintableUtf8IsRefusedBeforeAnythingIsSent) {
  auto& a = net.add();
  net.add();
  EXPECT_THROW(a.async_open_stream(net.address(1), "new\nline", asio::use_future), std::invalid_argument);
  EXPECT_THROW(a.async_open_stream(net.address(1), std::string(256, 'x'), asio::use_future), std::invalid_argument);
  EXPECT_THROW(a.async_accept_stream("tab\there", asio::use_future), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Loopback, Stream, ::testing::ValuesIn(testing::loopback_transports()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kadnet
