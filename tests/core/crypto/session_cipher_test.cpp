#include "core/crypto/session_cipher.hpp"

#include <numeric>
#include <stdexcept>

#include <gtest/gtest.h>
#include <sodium.h>

#include "core/errors.hpp"
#include "core/wire/packet.hpp"

namespace kadnet::core::crypto {
namespace {

using wire::packet_type;

key test_key(std::uint8_t fill) {
  key k;
  std::iota(k.begin(), k.end(), fill);
  return k;
}

byte_vector text(std::size_t n, std::uint8_t start = 0) {
  byte_vector v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

wire::packet_view parse(const byte_vector& packet) {
  wire::packet_view p;
  EXPECT_FALSE(wire::parse_packet(packet, p));
  return p;
}

byte_vector seal_one(packet_sealer& s, byte_span plaintext,
                     packet_type type = packet_type::stream_data) {
  byte_vector out;
  s.seal(type, plaintext, out);
  return out;
}

TEST(SessionCipher, RoundTrip) {
  packet_sealer sealer(test_key(1));
  packet_opener opener(test_key(1));
  const byte_vector message = text(1000);
  const byte_vector packet = seal_one(sealer, message);
  ASSERT_EQ(packet.size(), packet_sealer::overhead + message.size());
  const wire::packet_view p = parse(packet);
  EXPECT_EQ(p.type, packet_type::stream_data);
  byte_vector plain;
  ASSERT_FALSE(opener.open(p, plain));
  EXPECT_EQ(plain, message);
  EXPECT_EQ(sealer.next_counter(), 1u);
}

// The layout of PROTOCOL.md 3.4, rebuilt with libsodium alone.
TEST(SessionCipher, MatchesTheSpecifiedLayout) {
  packet_sealer sealer(test_key(9));
  const byte_vector message = text(77);
  seal_one(sealer, message);  // counter 0
  const byte_vector packet = seal_one(sealer, message, packet_type::reliable_data);  // counter 1

  byte_vector expected;
  byte_writer w(expected);
  w.u8(1);                                    // version
  w.u8(2);                                    // type reliable_data
  w.u16(77 + 24);                             // length
  w.u64(1);                                   // counter
  std::array<std::uint8_t, 12> nonce{};
  nonce[11] = 1;
  byte_vector sealed(message.size() + 16);
  unsigned long long sealed_len = 0;
  const key k = test_key(9);
  crypto_aead_chacha20poly1305_ietf_encrypt(sealed.data(), &sealed_len, message.data(),
                                            message.size(), expected.data(), 4, nullptr,
                                            nonce.data(), k.data());
  ASSERT_EQ(sealed_len, sealed.size());
  w.bytes(sealed);
  EXPECT_EQ(packet, expected);
}

TEST(SessionCipher, EmptyPlaintext) {
  packet_sealer sealer(test_key(1));
  packet_opener opener(test_key(1));
  const byte_vector packet = seal_one(sealer, {});
  ASSERT_EQ(packet.size(), packet_sealer::overhead);
  byte_vector plain = {1, 2, 3};
  ASSERT_FALSE(opener.open(parse(packet), plain));
  EXPECT_TRUE(plain.empty());
}

TEST(SessionCipher, SealAppendsPacketsBackToBack) {
  packet_sealer sealer(test_key(1));
  packet_opener opener(test_key(1));
  byte_vector stream;
  sealer.seal(packet_type::stream_data, text(10), stream);
  sealer.seal(packet_type::stream_data, text(20, 5), stream);
  wire::stream_packet_reader reader;
  reader.feed(stream);
  boost::system::error_code ec;
  byte_vector plain;
  auto first = reader.next(ec);
  ASSERT_TRUE(first);
  ASSERT_FALSE(opener.open(*first, plain));
  EXPECT_EQ(plain, text(10));
  auto second = reader.next(ec);
  ASSERT_TRUE(second);
  ASSERT_FALSE(opener.open(*second, plain));
  EXPECT_EQ(plain, text(20, 5));
}

TEST(SessionCipher, LargestPlaintextFitsOnePacket) {
  EXPECT_EQ(packet_sealer::max_plaintext_for(65535), 65535u - 24);
  EXPECT_EQ(packet_sealer::max_plaintext_for(100000), 65535u - 24);
  EXPECT_EQ(packet_sealer::max_plaintext_for(wire::max_datagram_size - wire::packet_header_size),
            1200u - 28);
  EXPECT_EQ(packet_sealer::max_plaintext_for(24), 0u);
  EXPECT_EQ(packet_sealer::max_plaintext_for(3), 0u);

  packet_sealer sealer(test_key(1));
  packet_opener opener(test_key(1));
  const byte_vector big = text(packet_sealer::max_plaintext_for(65535));
  const byte_vector packet = seal_one(sealer, big);
  EXPECT_EQ(packet.size(), 4u + 65535);
  byte_vector plain;
  ASSERT_FALSE(opener.open(parse(packet), plain));
  EXPECT_EQ(plain, big);

  byte_vector out;
  EXPECT_THROW(sealer.seal(packet_type::stream_data, text(big.size() + 1), out),
               std::length_error);
}

TEST(SessionCipher, FlippedCounterCiphertextOrTagFailsAuthentication) {
  packet_sealer sealer(test_key(1));
  const byte_vector packet = seal_one(sealer, text(40));
  for (std::size_t i = 4; i < packet.size(); ++i) {
    for (std::uint8_t mask : {0x01, 0x80, 0xff}) {
      byte_vector bad = packet;
      bad[i] ^= mask;
      packet_opener opener(test_key(1));
      byte_vector plain;
      EXPECT_EQ(opener.open(parse(bad), plain), errc::decrypt_failed) << "byte " << i;
      EXPECT_TRUE(plain.empty());
    }
  }
}

TEST(SessionCipher, AlteredHeaderFailsAuthentication) {
  packet_sealer sealer(test_key(1));
  const byte_vector packet = seal_one(sealer, text(40));
  byte_vector plain;
  {  // another version
    byte_vector bad = packet;
    bad[0] = 2;
    packet_opener opener(test_key(1));
    EXPECT_EQ(opener.open(parse(bad), plain), errc::decrypt_failed);
  }
  {  // another (sealed) type
    byte_vector bad = packet;
    bad[1] = static_cast<std::uint8_t>(packet_type::reliable_data);
    packet_opener opener(test_key(1));
    EXPECT_EQ(opener.open(parse(bad), plain), errc::decrypt_failed);
  }
  {  // a shorter length, read as a stream reader would: the tag moves
    byte_vector bad = packet;
    bad[3] -= 1;
    bad.pop_back();
    packet_opener opener(test_key(1));
    EXPECT_EQ(opener.open(parse(bad), plain), errc::decrypt_failed);
  }
  {  // a hand-made view whose fields disagree with the sealed header
    wire::packet_view p = parse(packet);
    p.type = packet_type::introduction;
    packet_opener opener(test_key(1));
    EXPECT_EQ(opener.open(p, plain), errc::decrypt_failed);
  }
}

TEST(SessionCipher, WrongKeyFailsAuthentication) {
  packet_sealer sealer(test_key(1));
  packet_opener opener(test_key(2));
  byte_vector plain;
  EXPECT_EQ(opener.open(parse(seal_one(sealer, text(10))), plain), errc::decrypt_failed);
}

TEST(SessionCipher, ShortPayloadIsTruncated) {
  packet_opener opener(test_key(1));
  for (std::size_t n = 0; n < packet_sealer::payload_overhead; ++n) {
    byte_vector packet;
    wire::append_packet(packet, packet_type::stream_data, text(n));
    byte_vector plain;
    EXPECT_EQ(opener.open(parse(packet), plain), errc::truncated) << n;
  }
}

TEST(SessionCipher, ReplayOfTheSamePacketIsRefused) {
  packet_sealer sealer(test_key(1));
  packet_opener opener(test_key(1));
  const byte_vector packet = seal_one(sealer, text(10));
  byte_vector plain;
  ASSERT_FALSE(opener.open(parse(packet), plain));
  EXPECT_EQ(opener.open(parse(packet), plain), errc::replayed);
  EXPECT_TRUE(plain.empty());
}

TEST(SessionCipher, OutOfOrderWithinTheWindowOpensOnce) {
  packet_sealer sealer(test_key(1));
  packet_opener opener(test_key(1));
  std::vector<byte_vector> packets;
  for (int i = 0; i < 10; ++i) packets.push_back(seal_one(sealer, text(5, i)));
  byte_vector plain;
  ASSERT_FALSE(opener.open(parse(packets[9]), plain));
  for (int i = 8; i >= 0; --i) {
    ASSERT_FALSE(opener.open(parse(packets[i]), plain)) << i;
    EXPECT_EQ(plain, text(5, i));
  }
  for (int i = 0; i < 10; ++i) EXPECT_EQ(opener.open(parse(packets[i]), plain), errc::replayed);
}

TEST(SessionCipher, OlderThanTheWindowIsRefused) {
  packet_sealer sealer(test_key(1));
  packet_opener opener(test_key(1));
  std::vector<byte_vector> packets;
  for (int i = 0; i <= 2100; ++i) packets.push_back(seal_one(sealer, text(1)));
  byte_vector plain;
  ASSERT_FALSE(opener.open(parse(packets[2100]), plain));
  EXPECT_EQ(opener.open(parse(packets[2100 - 2049]), plain), errc::replayed);
  EXPECT_EQ(opener.open(parse(packets[0]), plain), errc::replayed);
  EXPECT_FALSE(opener.open(parse(packets[2100 - 2048]), plain));
}

TEST(SessionCipher, ForgeriesDoNotMoveTheWindow) {
  packet_sealer sealer(test_key(1));
  packet_opener opener(test_key(1));
  const byte_vector packet = seal_one(sealer, text(10));
  byte_vector forged = packet;
  forged[4] = 0x7f;  // counter far ahead; would push counter 0 out of the window
  byte_vector plain;
  EXPECT_EQ(opener.open(parse(forged), plain), errc::decrypt_failed);
  EXPECT_FALSE(opener.window().any_accepted());
  EXPECT_FALSE(opener.open(parse(packet), plain));
}

TEST(SessionCipher, OpensIntoACallerBuffer) {
  packet_sealer sealer(test_key(1));
  packet_opener opener(test_key(1));
  const byte_vector packet = seal_one(sealer, text(30));
  std::array<std::uint8_t, 29> small{};
  std::array<std::uint8_t, 64> buffer{};
  std::size_t written = 99;
  EXPECT_EQ(opener.open(parse(packet), small, written), errc::bad_length);
  EXPECT_EQ(written, 0u);
  ASSERT_FALSE(opener.open(parse(packet), buffer, written));
  ASSERT_EQ(written, 30u);
  EXPECT_TRUE(std::equal(buffer.begin(), buffer.begin() + 30, text(30).begin()));
}

TEST(SessionCipher, MovedFromSealerCannotRepeatNonces) {
  packet_sealer first(test_key(1));
  seal_one(first, text(3));
  packet_sealer second(std::move(first));
  EXPECT_EQ(second.next_counter(), 1u);
  EXPECT_TRUE(first.exhausted());  // NOLINT(bugprone-use-after-move): that is the point
  byte_vector out;
  EXPECT_THROW(first.seal(packet_type::stream_data, text(3), out), std::logic_error);
  packet_opener opener(test_key(1));
  byte_vector plain;
  ASSERT_FALSE(opener.open(parse(seal_one(second, text(3))), plain));
}

}  // namespace
}  // namespace kadnet::core::crypto
