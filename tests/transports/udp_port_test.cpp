// transports::udp_port on loopback: batches of packets leave as separate datagrams, whole and in
// order, whether the kernel segments runs of equal-sized ones (UDP GSO) or they go one by one;
// impaired, the seeded draws decide each datagram's fate and the rest still leave in batches.
#include "kadnet/transports/udp_port.hpp"

#include <netinet/udp.h>
#include <sys/socket.h>

#include <cstring>

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <random>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "kadnet/core/wire/packet.hpp"

namespace kadnet::transports {
namespace {

namespace asio = boost::asio;

byte_vector packet_of(std::size_t payload, std::uint8_t fill) {
  byte_vector p;
  core::wire::append_packet(p, core::wire::packet_type::stream, byte_vector(payload, fill));
  return p;
}

// Two ports on 127.0.0.1 that share one strand.
struct port_pair {
  asio::io_context io;
  asio::strand<asio::io_context::executor_type> strand = asio::make_strand(io.get_executor());
  std::shared_ptr<udp_port> a = open(), b = open();

  std::shared_ptr<udp_port> open() {
    return std::make_shared<udp_port>(udp_port::executor(strand),
                                      asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  }

  // Sends `batch` from a to b, runs io until b has received `count` datagrams (20 s at most),
  // closes both ports and returns what b received, in order.
  std::vector<byte_vector> send_and_collect(const byte_vector& batch, std::size_t count) {
    return send_and_collect(std::vector<byte_vector>{batch}, count, {});
  }
  // The same with several batches, sent from one handler, each `gap` after the one before (the
  // clock is watched, not slept on: the port's timers cannot run in between).
  std::vector<byte_vector> send_and_collect(const std::vector<byte_vector>& batches, std::size_t count,
                                            std::chrono::microseconds gap) {
    std::vector<byte_vector> received;
    std::promise<void> all;
    b->start([&](const byte_vector&, byte_span d) {
      received.emplace_back(d.begin(), d.end());
      if (received.size() == count) all.set_value();
    }, [] {});
    asio::post(strand, [&] {
      for (std::size_t i = 0; i < batches.size(); ++i) {
        if (i > 0)
          for (auto since = std::chrono::steady_clock::now(); std::chrono::steady_clock::now() - since < gap;) {
          }
        a->send_packets(b->local_endpoint(), batches[i]);
      }
    });
    std::thread runner([&] { io.run(); });
    all.get_future().wait_for(std::chrono::seconds(20));
    asio::post(strand, [&] {
      a->close();
      b->close();
    });
    runner.join();
    return received;
  }
};

TEST(UdpPort, ABatchLeavesAsOneDatagramPerPacketInOrder) {
  port_pair ports;
  auto& a = ports.a;
  // 60 full packets (a GSO run, over one message's 64 KiB: two runs), then odd sizes.
  byte_vector batch;
  std::vector<byte_vector> expected;
  for (int i = 0; i < 60; ++i) expected.push_back(packet_of(1196, static_cast<std::uint8_t>(i)));
  for (std::size_t size : {10u, 500u, 500u, 1196u}) expected.push_back(packet_of(size, 0xEE));
  for (const auto& p : expected) batch.insert(batch.end(), p.begin(), p.end());

  std::vector<byte_vector> received = ports.send_and_collect(batch, expected.size());
  ASSERT_EQ(received.size(), expected.size()) << "datagrams arrived";
  EXPECT_EQ(received, expected);
  EXPECT_EQ(a->counters().datagrams_out, expected.size());
  EXPECT_EQ(ports.b->counters().datagrams_in, expected.size());
  // Where the kernel has both UDP GSO and GRO, the run of full packets arrives coalesced and is
  // split here, by the segment size the kernel reports, into the datagrams sent.
  if (ports.b->receives_coalesced() && a->counters().send_calls == 1) {
    EXPECT_GT(ports.b->counters().coalesced_in, 0u);
  }
  EXPECT_EQ(a->counters().send_drops, 0u);
}

TEST(UdpPort, AnImpairedBatchLosesAndHoldsTheSeededDatagramsAndSendsTheRestInBatches) {
  port_pair ports;
  auto& a = ports.a;
  udp_impairment imp;
  imp.loss = 0.3;
  imp.reorder = 0.2;
  imp.reorder_delay = std::chrono::milliseconds(2);
  imp.seed = 7;
  a->set_impairment(imp);

  // The rule of udp_impairment, drawn here as the port draws it: a loss draw per packet, then a
  // hold draw per survivor (no duplication, delay or jitter here). Held ones come after the rest.
  std::vector<byte_vector> packets, expected, held;
  byte_vector batch;
  std::mt19937_64 rng(imp.seed);
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  for (int i = 0; i < 60; ++i) {
    packets.push_back(packet_of(1196, static_cast<std::uint8_t>(i)));
    batch.insert(batch.end(), packets.back().begin(), packets.back().end());
    if (chance(imp.loss)) continue;
    (chance(imp.reorder) ? held : expected).push_back(packets.back());
  }
  const std::size_t survivors = expected.size();
  expected.insert(expected.end(), held.begin(), held.end());
  ASSERT_GT(held.size(), 0u);
  ASSERT_LT(expected.size(), packets.size());

  std::vector<byte_vector> received = ports.send_and_collect(batch, expected.size());
  ASSERT_EQ(received.size(), expected.size()) << "datagrams arrived";
  EXPECT_EQ(received, expected);
  EXPECT_EQ(a->counters().impaired_lost, packets.size() - expected.size());
  EXPECT_EQ(a->counters().impaired_reordered, held.size());
  EXPECT_EQ(a->counters().datagrams_out, expected.size());
  // One call for the survivors and one for the held ones (all due at once), not one per datagram
  // (one more where the kernel refuses UDP GSO: the batch is sent again plainly).
  EXPECT_LE(a->counters().send_calls, 3u) << survivors << " survivors, " << held.size() << " held";
}

TEST(UdpPort, AHeldDatagramThatIsDueLeadsTheNextBatchToItsAddress) {
  port_pair ports;
  auto& a = ports.a;
  udp_impairment imp;
  imp.reorder = 0.2;
  imp.reorder_delay = std::chrono::milliseconds(2);
  imp.seed = 7;
  a->set_impairment(imp);

  // Two batches 3 ms apart: the first's held datagrams are due when the second is sent, so they
  // leave at its front; the second's held ones leave by the timer (within the slack), last.
  std::vector<byte_vector> batches(2), expected, held_first, held_second;
  std::mt19937_64 rng(imp.seed);
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  std::vector<byte_vector> survivors_first, survivors_second;
  for (int b = 0; b < 2; ++b) {
    for (int i = 0; i < 30; ++i) {
      byte_vector p = packet_of(1196, static_cast<std::uint8_t>(b * 100 + i));
      batches[b].insert(batches[b].end(), p.begin(), p.end());
      bool held = chance(imp.reorder);
      (b == 0 ? (held ? held_first : survivors_first) : (held ? held_second : survivors_second)).push_back(p);
    }
  }
  ASSERT_GT(held_first.size(), 0u);
  ASSERT_GT(held_second.size(), 0u);
  for (auto* part : {&survivors_first, &held_first, &survivors_second, &held_second})
    expected.insert(expected.end(), part->begin(), part->end());

  std::vector<byte_vector> received = ports.send_and_collect(batches, expected.size(), std::chrono::milliseconds(3));
  ASSERT_EQ(received.size(), expected.size()) << "datagrams arrived";
  EXPECT_EQ(received, expected);
  EXPECT_EQ(a->counters().impaired_reordered, held_first.size() + held_second.size());
  // The first batch, the second led by the first's held ones, the timer's: three calls (one more
  // where the kernel refuses UDP GSO and the first batch is sent again plainly).
  EXPECT_LE(a->counters().send_calls, 4u);
}

TEST(UdpPort, ADatagramLargerThanAnyKadnetPacketIsCountedAndDropped) {
  port_pair ports;
  // From a plain socket: 1,500 bytes, then a run of three 1,400-byte datagrams as one UDP GSO
  // message (coalesced again at the receiver where it has GRO), then a valid packet.
  asio::ip::udp::socket plain(ports.io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::vector<byte_vector> received;
  std::promise<void> valid_arrived;
  const byte_vector valid = packet_of(100, 0x42);
  ports.b->start([&](const byte_vector&, byte_span d) {
    received.emplace_back(d.begin(), d.end());
    if (received.back() == valid) valid_arrived.set_value();
  }, [] {});
  const auto to = ports.b->local_endpoint();
  plain.send_to(asio::buffer(byte_vector(1500, 0xEE)), to);
  byte_vector run(3 * 1400, 0xDD);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(std::uint16_t))] = {};
  iovec iov{run.data(), run.size()};
  msghdr message{};
  message.msg_name = const_cast<sockaddr*>(to.data());
  message.msg_namelen = static_cast<socklen_t>(to.size());
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&message);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
  const std::uint16_t segment = 1400;
  std::memcpy(CMSG_DATA(c), &segment, sizeof segment);
  std::size_t oversized = 1;
  if (::sendmsg(plain.native_handle(), &message, 0) == static_cast<ssize_t>(run.size())) oversized += 3;
  plain.send_to(asio::buffer(valid), to);

  std::thread runner([&] { ports.io.run(); });
  valid_arrived.get_future().wait_for(std::chrono::seconds(20));
  asio::post(ports.strand, [&] {
    ports.a->close();
    ports.b->close();
  });
  runner.join();
  ASSERT_EQ(received.size(), 1u) << "only the valid packet reaches the handler";
  EXPECT_EQ(received[0], valid);
  EXPECT_EQ(ports.b->counters().oversized_in, oversized);
  EXPECT_EQ(ports.b->counters().datagrams_in, oversized + 1);
}

// A datagram to a port nobody listens on brings back an ICMP port unreachable: the port names
// the address it was sent to, and its next batch to a live port leaves whole (the socket's
// pending error fails one send call, which is tried again).
TEST(UdpPort, APortUnreachableNamesTheAddressAndTheNextBatchStillLeaves) {
  port_pair ports;
  asio::ip::udp::endpoint closed;
  {
    asio::ip::udp::socket probe(ports.io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    closed = probe.local_endpoint();
  }
  std::promise<byte_vector> unreachable;
  ports.a->start([](const byte_vector&, byte_span) {}, [] {},
                 [&](const byte_vector& destination) { unreachable.set_value(destination); });
  const byte_vector packet = packet_of(100, 0x42);
  asio::post(ports.strand, [&] { ports.a->send_packets(closed, packet); });
  std::thread runner([&] { ports.io.run(); });
  auto named = unreachable.get_future();
  ASSERT_EQ(named.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_EQ(named.get(), udp_port::address_bytes(closed));
  EXPECT_EQ(ports.a->counters().unreachable_in, 1u);
  asio::post(ports.strand, [&] { ports.a->close(); });
  runner.join();

  // Again from a fresh port that is not started, so that nothing reads its error queue: on
  // loopback the ICMP error is back before sendmmsg returns and stays pending on the socket,
  // failing the first send call of the batch to b, which goes again and arrives.
  ports.io.restart();
  ports.a = ports.open();
  ports.a->send_packets(closed, packet);
  const auto calls_before = ports.a->counters().send_calls;
  auto got = ports.send_and_collect(packet, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], packet);
  EXPECT_EQ(ports.a->counters().send_calls - calls_before, 2u) << "the pending error failed one call";
}

}  // namespace
}  // namespace kadnet::transports
