// transports::udp_port on loopback: batches of packets leave as separate datagrams, whole and in
// order, whether the kernel segments runs of equal-sized ones (UDP GSO) or they go one by one;
// impaired, the seeded draws decide each datagram's fate and the rest still leave in batches.
#include "transports/udp_port.hpp"

#include <gtest/gtest.h>

#include <future>
#include <random>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "core/wire/packet.hpp"

namespace kadnet::transports {
namespace {

namespace asio = boost::asio;

byte_vector packet_of(std::size_t payload, std::uint8_t fill) {
  byte_vector p;
  core::wire::append_packet(p, core::wire::packet_type::stream, byte_vector(payload, fill));
  return p;
}

TEST(UdpPort, ABatchLeavesAsOneDatagramPerPacketInOrder) {
  asio::io_context io;
  auto strand = asio::make_strand(io.get_executor());
  udp_port::executor ex(strand);
  auto a = std::make_shared<udp_port>(ex, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto b = std::make_shared<udp_port>(ex, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  // 60 full packets (a GSO run, over one message's 64 KiB: two runs), then odd sizes.
  byte_vector batch;
  std::vector<byte_vector> expected;
  for (int i = 0; i < 60; ++i) expected.push_back(packet_of(1196, static_cast<std::uint8_t>(i)));
  for (std::size_t size : {10u, 500u, 500u, 1196u}) expected.push_back(packet_of(size, 0xEE));
  for (const auto& p : expected) batch.insert(batch.end(), p.begin(), p.end());

  std::vector<byte_vector> received;
  std::promise<void> all;
  b->start([&](const byte_vector&, byte_span d) {
    received.emplace_back(d.begin(), d.end());
    if (received.size() == expected.size()) all.set_value();
  }, [] {});
  asio::post(strand, [&] { a->send_packets(b->local_endpoint(), batch); });
  std::thread runner([&] { io.run(); });
  auto got = all.get_future();
  bool arrived = got.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  asio::post(strand, [&] {
    a->close();
    b->close();
  });
  runner.join();
  ASSERT_TRUE(arrived) << received.size() << " of " << expected.size() << " datagrams arrived";
  EXPECT_EQ(received, expected);
  EXPECT_EQ(a->counters().datagrams_out, expected.size());
  EXPECT_EQ(a->counters().send_drops, 0u);
}

TEST(UdpPort, AnImpairedBatchLosesAndHoldsTheSeededDatagramsAndSendsTheRestInBatches) {
  asio::io_context io;
  auto strand = asio::make_strand(io.get_executor());
  udp_port::executor ex(strand);
  auto a = std::make_shared<udp_port>(ex, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto b = std::make_shared<udp_port>(ex, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
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

  std::vector<byte_vector> received;
  std::promise<void> all;
  b->start([&](const byte_vector&, byte_span d) {
    received.emplace_back(d.begin(), d.end());
    if (received.size() == expected.size()) all.set_value();
  }, [] {});
  asio::post(strand, [&] { a->send_packets(b->local_endpoint(), batch); });
  std::thread runner([&] { io.run(); });
  auto got = all.get_future();
  bool arrived = got.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  asio::post(strand, [&] {
    a->close();
    b->close();
  });
  runner.join();
  ASSERT_TRUE(arrived) << received.size() << " of " << expected.size() << " datagrams arrived";
  EXPECT_EQ(received, expected);
  EXPECT_EQ(a->counters().impaired_lost, packets.size() - expected.size());
  EXPECT_EQ(a->counters().impaired_reordered, held.size());
  EXPECT_EQ(a->counters().datagrams_out, expected.size());
  // One call for the survivors and one for the held ones (all due at once), not one per datagram
  // (one more where the kernel refuses UDP GSO: the batch is sent again plainly).
  EXPECT_LE(a->counters().send_calls, 3u) << survivors << " survivors, " << held.size() << " held";
}

}  // namespace
}  // namespace kadnet::transports
