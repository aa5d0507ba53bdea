// The DHT reply payloads (dht/dht_codec.hpp): round trips, and every malformed case mapped to
// one specific error.
#include "kadnet/dht/dht_codec.hpp"

#include <random>

#include <gtest/gtest.h>

#include "kadnet/core/errors.hpp"

namespace kadnet::dht {
namespace {

using core::errc;

wire_contact contact_n(std::uint8_t n, std::vector<std::string> addresses) {
  core::node_id::bytes_type id;
  id.fill(n);
  return wire_contact{core::node_id(id), std::move(addresses)};
}

std::vector<wire_contact> sample_contacts() {
  return {contact_n(1, {"tcp://127.0.0.1:4000"}),
          contact_n(2, {"tcp://[::1]:4001", "udp://203.0.113.9:4001"})};
}

wire_value sample_value(bool owned) {
  wire_value v;
  v.version = 7;
  v.ttl_seconds = 3600;
  v.value = {'v', 'a', 'l'};
  if (owned) {
    v.owner = contact_n(9, {"x"}).id;
    core::signature s;
    s.fill(0xab);
    v.sig = s;
  }
  return v;
}

TEST(DhtCodec, ContactsRoundTrip) {
  byte_vector bytes;
  encode_contacts(sample_contacts(), bytes);
  std::vector<wire_contact> back;
  ASSERT_FALSE(decode_contacts(bytes, back));
  EXPECT_EQ(back, sample_contacts());
  // count | id | n | len | "tcp://127.0.0.1:4000" ...
  EXPECT_EQ(bytes[0], 2);
  EXPECT_EQ(bytes[33], 1);
  EXPECT_EQ(bytes[34], 20);
}

TEST(DhtCodec, EmptyContactListIsOneByte) {
  byte_vector bytes;
  encode_contacts({}, bytes);
  EXPECT_EQ(bytes, byte_vector{0});
  std::vector<wire_contact> back{contact_n(1, {"a"})};
  ASSERT_FALSE(decode_contacts(bytes, back));
  EXPECT_TRUE(back.empty());
}

TEST(DhtCodec, FindValueRepliesRoundTrip) {
  for (const find_value_reply& reply : {find_value_reply(sample_contacts()), find_value_reply(sample_value(false)),
                                        find_value_reply(sample_value(true)), find_value_reply(wire_current{7})}) {
    byte_vector bytes;
    encode_find_value_reply(reply, bytes);
    find_value_reply back;
    ASSERT_FALSE(decode_find_value_reply(bytes, back, 64 * 1024));
    EXPECT_EQ(back, reply);
  }
}

TEST(DhtCodec, EveryTruncationIsAnError) {
  std::vector<byte_vector> samples(4);
  encode_contacts(sample_contacts(), samples[0]);
  encode_find_value_reply(sample_value(true), samples[1]);
  encode_find_value_reply(sample_contacts(), samples[2]);
  encode_find_value_reply(wire_current{0x0102030405060708}, samples[3]);
  for (const auto& s : samples) {
    for (std::size_t n = 0; n < s.size(); ++n) {
      byte_span cut(s.data(), n);
      find_value_reply r;
      std::vector<wire_contact> c;
      EXPECT_TRUE(&s == &samples[0] ? decode_contacts(cut, c) : decode_find_value_reply(cut, r, 1 << 16))
          << "accepted a truncation to " << n << " bytes";
    }
  }
}

TEST(DhtCodec, TrailingBytesAreRefused) {
  byte_vector bytes;
  encode_contacts(sample_contacts(), bytes);
  bytes.push_back(0);
  std::vector<wire_contact> c;
  EXPECT_EQ(decode_contacts(bytes, c), make_error_code(errc::trailing_bytes));
  byte_vector v;
  encode_find_value_reply(sample_value(false), v);
  v.push_back(0);
  find_value_reply r;
  EXPECT_EQ(decode_find_value_reply(v, r, 1 << 16), make_error_code(errc::trailing_bytes));
  byte_vector current;
  encode_find_value_reply(wire_current{3}, current);
  ASSERT_EQ(current.size(), 9u);  // status 2, then the version
  EXPECT_EQ(current[0], 2);
  current.push_back(0);
  EXPECT_EQ(decode_find_value_reply(current, r, 1 << 16), make_error_code(errc::trailing_bytes));
}

TEST(DhtCodec, MalformedFieldsMapToSpecificErrors) {
  std::vector<wire_contact> c;
  find_value_reply r;
  // Too many contacts announced.
  EXPECT_EQ(decode_contacts(byte_vector{33}, c), make_error_code(errc::too_large));
  // A contact with no address.
  byte_vector no_address(1 + 32 + 1, 0);
  no_address[0] = 1;
  EXPECT_EQ(decode_contacts(no_address, c), make_error_code(errc::bad_field));
  // A non-printable address byte.
  byte_vector bytes;
  encode_contacts({contact_n(1, {"tcp://a"})}, bytes);
  bytes.back() = 0x01;
  EXPECT_EQ(decode_contacts(bytes, c), make_error_code(errc::bad_field));
  // Unknown status, unknown flags, a value over the limit.
  EXPECT_EQ(decode_find_value_reply(byte_vector{3}, r, 10), make_error_code(errc::bad_field));
  byte_vector v;
  encode_find_value_reply(sample_value(false), v);
  v[13] = 0x02;  // flags after status (1), version (8), ttl (4)
  EXPECT_EQ(decode_find_value_reply(v, r, 1 << 16), make_error_code(errc::bad_field));
  byte_vector big;
  encode_find_value_reply(sample_value(false), big);
  EXPECT_EQ(decode_find_value_reply(big, r, 2), make_error_code(errc::too_large));
}

TEST(DhtCodec, RandomMutationsNeverCrashAndNeverOverAllocate) {
  const unsigned seed = 20261122;
  std::mt19937 rng(seed);
  byte_vector base;
  encode_find_value_reply(sample_contacts(), base);
  for (int i = 0; i < 20000; ++i) {
    byte_vector m = base;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      std::size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0: m[at] = static_cast<std::uint8_t>(rng()); break;
        case 1: m.erase(m.begin() + static_cast<std::ptrdiff_t>(at)); break;
        default: m.insert(m.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::uint8_t>(rng())); break;
      }
      if (m.empty()) m.push_back(0);
    }
    find_value_reply r;
    if (!decode_find_value_reply(m, r, 1 << 16)) {
      std::size_t held = 0;
      if (auto* cs = std::get_if<std::vector<wire_contact>>(&r))
        for (const auto& c : *cs) {
          held += 32;
          for (const auto& a : c.addresses) held += a.size();
        }
      else
        held = std::get<wire_value>(r).value.size();
      ASSERT_LE(held, m.size()) << "seed " << seed << " iteration " << i;
    }
  }
}

}  // namespace
}  // namespace kadnet::dht
