// The outer packet (core/wire/packet.cpp): one-datagram parsing and the stream splitter fed
// whole, byte by byte and in random chunks.
#include <functional>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/wire/packet.hpp"

namespace kadnet::core::wire {
namespace {

using boost::system::error_code;

byte_vector packet(packet_type type, std::size_t payload_size, std::uint8_t fill = 0x5a,
                   std::uint8_t version = protocol_version) {
  byte_vector payload(payload_size, fill);
  byte_vector out;
  append_packet(out, type, payload, version);
  return out;
}

TEST(ParsePacket, RoundTrip) {
  byte_vector wire = packet(packet_type::stream_data, 3, 0x11);
  EXPECT_EQ(to_hex(wire), "010a0003111111");
  packet_view p;
  ASSERT_FALSE(parse_packet(wire, p));
  EXPECT_EQ(p.version, 1);
  EXPECT_EQ(p.type, packet_type::stream_data);
  EXPECT_EQ(p.header.data(), wire.data());
  EXPECT_EQ(p.header.size(), packet_header_size);
  EXPECT_EQ(p.payload.data(), wire.data() + 4);
  EXPECT_EQ(p.payload.size(), 3u);
}

TEST(ParsePacket, EmptyPayloadAndLargest) {
  packet_view p;
  ASSERT_FALSE(parse_packet(packet(packet_type::cookie, 0), p));
  EXPECT_TRUE(p.payload.empty());
  byte_vector big = packet(packet_type::stream_data, max_stream_payload);
  ASSERT_FALSE(parse_packet(big, p));
  EXPECT_EQ(p.payload.size(), max_stream_payload);
}

TEST(ParsePacket, ShortHeaderIsTruncated) {
  byte_vector wire = packet(packet_type::hello, 0);
  for (std::size_t n = 0; n < packet_header_size; ++n) {
    packet_view p;
    EXPECT_EQ(parse_packet(byte_span(wire).first(n), p), errc::truncated) << n;
  }
}

TEST(ParsePacket, EveryTruncationOfThePayload) {
  byte_vector wire = packet(packet_type::refuse, 20);
  for (std::size_t n = packet_header_size; n < wire.size(); ++n) {
    packet_view p;
    EXPECT_EQ(parse_packet(byte_span(wire).first(n), p), errc::truncated) << n;
  }
}

TEST(ParsePacket, TrailingBytesAreABadLength) {
  byte_vector wire = packet(packet_type::hello, 5);
  wire.push_back(0);
  packet_view p;
  EXPECT_EQ(parse_packet(wire, p), errc::bad_length);
}

TEST(ParsePacket, UnknownTypes) {
  for (int type = max_packet_type + 1; type < 256; ++type) {
    byte_vector wire = {1, static_cast<std::uint8_t>(type), 0, 0};
    packet_view p;
    EXPECT_EQ(parse_packet(wire, p), errc::unknown_packet_type) << type;
  }
  for (int type = 0; type <= max_packet_type; ++type) {
    byte_vector wire = {1, static_cast<std::uint8_t>(type), 0, 0};
    packet_view p;
    EXPECT_FALSE(parse_packet(wire, p)) << type;
  }
}

TEST(ParsePacket, ForeignVersionIsReturnedForAPoliteRefusal) {
  packet_view p;
  ASSERT_FALSE(parse_packet(packet(packet_type::hello, 2, 0, 7), p));
  EXPECT_EQ(p.version, 7);
}

TEST(PacketTypes, SealedOnlyAfterTheHandshake) {
  EXPECT_FALSE(is_sealed(packet_type::hello));
  EXPECT_FALSE(is_sealed(packet_type::cookie));
  EXPECT_FALSE(is_sealed(packet_type::refuse));
  EXPECT_FALSE(is_sealed(packet_type::punch));
  for (int t = 2; t <= 8; ++t) {
    if (t == 6) continue;
    EXPECT_TRUE(is_sealed(static_cast<packet_type>(t))) << t;
  }
  EXPECT_TRUE(is_sealed(packet_type::stream_data));
}

// A stream of packets of assorted types and sizes, and the payloads expected out of it.
struct stream_fixture {
  byte_vector stream;
  std::vector<std::pair<packet_type, byte_vector>> expected;

  stream_fixture() {
    const std::size_t sizes[] = {0, 1, 161, 3, 1200, max_stream_payload, 0, 17};
    std::uint8_t fill = 1;
    for (std::size_t i = 0; i < std::size(sizes); ++i) {
      auto type = static_cast<packet_type>(i % (max_packet_type + 1));
      byte_vector payload(sizes[i]);
      for (auto& b : payload) b = fill++;
      append_packet(stream, type, payload);
      expected.emplace_back(type, std::move(payload));
    }
  }
};

// Feeds `stream` in the given chunk sizes, draining after every feed.
std::vector<std::pair<packet_type, byte_vector>> read_in_chunks(
    const byte_vector& stream, const std::function<std::size_t()>& next_chunk) {
  stream_packet_reader reader;
  std::vector<std::pair<packet_type, byte_vector>> got;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    std::size_t n = std::min(next_chunk(), stream.size() - pos);
    reader.feed(byte_span(stream).subspan(pos, n));
    pos += n;
    error_code ec;
    while (auto p = reader.next(ec)) got.emplace_back(p->type, byte_vector(p->payload.begin(), p->payload.end()));
    EXPECT_FALSE(ec) << ec.message();
    // Bounded memory: never more than one unfinished packet plus the last chunk.
    EXPECT_LE(reader.buffered(), packet_header_size + max_stream_payload + n);
  }
  EXPECT_EQ(reader.buffered(), 0u);
  return got;
}

TEST(StreamPacketReader, WholeStream) {
  stream_fixture f;
  auto got = read_in_chunks(f.stream, [&] { return f.stream.size(); });
  EXPECT_EQ(got, f.expected);
}

TEST(StreamPacketReader, ByteByByte) {
  stream_fixture f;
  auto got = read_in_chunks(f.stream, [] { return std::size_t{1}; });
  EXPECT_EQ(got, f.expected);
}

TEST(StreamPacketReader, RandomChunkSizes) {
  stream_fixture f;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<std::size_t> small(1, 9), large(1, 70000);
    auto got = read_in_chunks(f.stream, [&] { return rng() % 2 ? small(rng) : large(rng); });
    EXPECT_EQ(got, f.expected) << "seed " << seed;
  }
}

TEST(StreamPacketReader, WaitsForAWholeHeaderAndPayload) {
  stream_packet_reader reader;
  byte_vector wire = packet(packet_type::stream_data, 10);
  error_code ec;
  reader.feed(byte_span(wire).first(3));
  EXPECT_FALSE(reader.next(ec));
  EXPECT_FALSE(ec);
  reader.feed(byte_span(wire).subspan(3, 8));
  EXPECT_FALSE(reader.next(ec));
  EXPECT_FALSE(ec);
  EXPECT_EQ(reader.buffered(), 11u);
  reader.feed(byte_span(wire).subspan(11));
  auto p = reader.next(ec);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->payload.size(), 10u);
  EXPECT_FALSE(reader.next(ec));
  EXPECT_FALSE(ec);
}

TEST(StreamPacketReader, BadHeaderStopsTheStream) {
  stream_packet_reader reader;
  byte_vector wire = packet(packet_type::hello, 2);
  byte_vector bad = {1, 0xee, 0, 0};
  wire.insert(wire.end(), bad.begin(), bad.end());
  reader.feed(wire);
  error_code ec;
  ASSERT_TRUE(reader.next(ec));
  EXPECT_FALSE(ec);
  EXPECT_FALSE(reader.next(ec));
  EXPECT_EQ(ec, errc::unknown_packet_type);
}

TEST(StreamPacketReader, ForeignVersionPassesThrough) {
  stream_packet_reader reader;
  reader.feed(packet(packet_type::hello, 1, 0, 9));
  error_code ec;
  auto p = reader.next(ec);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->version, 9);
}

}  // namespace
}  // namespace kadnet::core::wire
