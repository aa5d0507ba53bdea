// Compare-and-swap reply payloads (dht/cas_codec.hpp): the layouts byte by byte, round trips,
// every truncation, trailing bytes, limits and undefined values.
#include "kadnet/dht/cas_codec.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "kadnet/core/errors.hpp"

namespace kadnet::dht {
namespace {

using core::errc;

byte_vector bytes_of(const std::string& s) { return byte_vector(s.begin(), s.end()); }

core::node_id id_filled(std::uint8_t b) {
  core::node_id::bytes_type bytes;
  bytes.fill(b);
  return core::node_id(bytes);
}

cas_promise accepted_promise() {
  accepted_proposal a{ballot{0x0102, id_filled(0x33)}, {}, bytes_of("val")};
  a.proposal.fill(0x44);
  return cas_promise{a};
}

// Every proper prefix of `wire` is truncated; `wire` plus one byte has trailing bytes.
void check_truncations(const byte_vector& wire, const std::function<boost::system::error_code(byte_span)>& decode) {
  for (std::size_t n = 0; n < wire.size(); ++n)
    EXPECT_EQ(decode(byte_span(wire.data(), n)), errc::truncated) << "prefix of " << n;
  byte_vector longer = wire;
  longer.push_back(0);
  EXPECT_EQ(decode(longer), errc::trailing_bytes);
}

TEST(CasCodec, PromiseLayoutAndRoundTrip) {
  byte_vector empty;
  encode_promise(cas_promise{}, empty);
  EXPECT_EQ(empty, byte_vector{0});

  byte_vector wire;
  encode_promise(accepted_promise(), wire);
  ASSERT_EQ(wire.size(), 1u + 8 + 32 + 16 + 4 + 3);
  EXPECT_EQ(wire[0], 1);
  EXPECT_EQ(wire[7], 0x01);
  EXPECT_EQ(wire[8], 0x02);
  cas_promise back;
  ASSERT_FALSE(decode_promise(wire, back, 1024));
  EXPECT_EQ(back, accepted_promise());
  check_truncations(wire, [](byte_span in) {
    cas_promise p;
    return decode_promise(in, p, 1024);
  });
  check_truncations(empty, [](byte_span in) {
    cas_promise p;
    return decode_promise(in, p, 1024);
  });
}

TEST(CasCodec, PromiseRefusesUndefinedFlagsAndLongValues) {
  byte_vector wire;
  encode_promise(accepted_promise(), wire);
  for (int flags = 2; flags < 256; ++flags) {
    byte_vector b = wire;
    b[0] = static_cast<std::uint8_t>(flags);
    cas_promise p;
    EXPECT_EQ(decode_promise(b, p, 1024), errc::bad_field) << flags;
  }
  cas_promise p;
  EXPECT_EQ(decode_promise(wire, p, 2), errc::too_large);
  byte_vector huge = wire;
  huge[1 + 8 + 32 + 16] = 0xff;  // value length 0xff000003, far beyond the input
  EXPECT_EQ(decode_promise(huge, p, 1 << 20), errc::too_large);
  EXPECT_EQ(p, cas_promise{}) << "untouched on error";
}

TEST(CasCodec, ConflictLayoutAndRoundTrip) {
  cas_conflict unknown{7, std::nullopt, bytes_of("now")};
  byte_vector short_wire;
  encode_conflict(unknown, short_wire);
  EXPECT_EQ(to_hex(short_wire), "0000000000000007" "00" "00000003" "6e6f77");
  cas_conflict back_unknown;
  ASSERT_FALSE(decode_conflict(short_wire, back_unknown, 1024));
  EXPECT_EQ(back_unknown, unknown);

  proposal_id writer;
  writer.fill(0x5e);
  cas_conflict c{7, writer, bytes_of("now")};
  byte_vector wire;
  encode_conflict(c, wire);
  EXPECT_EQ(to_hex(wire), "0000000000000007" "01" "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e" "00000003" "6e6f77");
  cas_conflict back;
  ASSERT_FALSE(decode_conflict(wire, back, 1024));
  EXPECT_EQ(back, c);
  check_truncations(wire, [](byte_span in) {
    cas_conflict x;
    return decode_conflict(in, x, 1024);
  });
  for (int flags = 2; flags < 256; ++flags) {
    byte_vector bad = wire;
    bad[8] = static_cast<std::uint8_t>(flags);
    EXPECT_EQ(decode_conflict(bad, back, 1024), errc::bad_field) << flags;
  }
  EXPECT_EQ(decode_conflict(wire, back, 2), errc::too_large);
}

TEST(CasCodec, BallotAndVersion) {
  ballot b{0x1122334455667788, id_filled(0x99)};
  byte_vector wire;
  encode_ballot(b, wire);
  ASSERT_EQ(wire.size(), 40u);
  ballot back;
  ASSERT_FALSE(decode_ballot(wire, back));
  EXPECT_EQ(back, b);
  check_truncations(wire, [](byte_span in) {
    ballot x;
    return decode_ballot(in, x);
  });

  byte_vector v;
  encode_version(42, v);
  std::uint64_t version = 0;
  ASSERT_FALSE(decode_version(v, version));
  EXPECT_EQ(version, 42u);
  check_truncations(v, [](byte_span in) {
    std::uint64_t x = 0;
    return decode_version(in, x);
  });
}

TEST(CasCodec, BallotsOrderByRoundThenProposer) {
  EXPECT_LT((ballot{1, id_filled(0xff)}), (ballot{2, id_filled(0x00)}));
  EXPECT_LT((ballot{2, id_filled(0x01)}), (ballot{2, id_filled(0x02)}));
  EXPECT_EQ((ballot{2, id_filled(0x01)}), (ballot{2, id_filled(0x01)}));
}

}  // namespace
}  // namespace kadnet::dht
