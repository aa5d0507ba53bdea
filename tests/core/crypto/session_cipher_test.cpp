#include "kadnet/core/crypto/session_cipher.hpp"

#include <numeric>
#include <stdexcept>

#include <gtest/gtest.h>
#include <sodium.h>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/wire/packet.hpp"
#include "tests/support/sealed_packets.hpp"

namespace kadnet::core::crypto {
namespace {

using wire::packet_type;
using testing::parse;
using testing::test_key;
using testing::counting_bytes;

byte_vector seal_one(packet_sealer& s, byte_span plaintext,
                     packet_type type = packet_type::stream_data) {
  byte_vector out;
  s.seal(type, plaintext, out);
  return out;
}

const char* name_of(aead a) {
  return a == aead::aes256_gcm ? "Aes256Gcm" : "ChaCha20Poly1305";
}

constexpr const char* no_aes_gcm =
    "this CPU lacks AES-NI/PCLMUL (crypto_aead_aes256gcm_is_available() is 0), which "
    "libsodium's AES-256-GCM needs";

// Every test runs with both AEADs: they share the layout and all the rules but the cipher.
class SessionCipher : public ::testing::TestWithParam<aead> {
 protected:
  void SetUp() override {
    if (cipher() == aead::aes256_gcm && !aes256_gcm_available()) GTEST_SKIP() << no_aes_gcm;
  }
  static aead cipher() { return GetParam(); }
};

TEST_P(SessionCipher, RoundTrip) {
  packet_sealer sealer(test_key(1), cipher());
  packet_opener opener(test_key(1), cipher());
  const byte_vector message = counting_bytes(1000);
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
TEST_P(SessionCipher, MatchesTheSpecifiedLayout) {
  packet_sealer sealer(test_key(9), cipher());
  const byte_vector message = counting_bytes(77);
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
  if (cipher() == aead::aes256_gcm)
    crypto_aead_aes256gcm_encrypt(sealed.data(), &sealed_len, message.data(), message.size(),
                                  expected.data(), 4, nullptr, nonce.data(), k.data());
  else
    crypto_aead_chacha20poly1305_ietf_encrypt(sealed.data(), &sealed_len, message.data(),
                                              message.size(), expected.data(), 4, nullptr,
                                              nonce.data(), k.data());
  ASSERT_EQ(sealed_len, sealed.size());
  w.bytes(sealed);
  EXPECT_EQ(packet, expected);
}

TEST_P(SessionCipher, EmptyPlaintext) {
  packet_sealer sealer(test_key(1), cipher());
  packet_opener opener(test_key(1), cipher());
  const byte_vector packet = seal_one(sealer, {});
  ASSERT_EQ(packet.size(), packet_sealer::overhead);
  byte_vector plain = {1, 2, 3};
  ASSERT_FALSE(opener.open(parse(packet), plain));
  EXPECT_TRUE(plain.empty());
}

TEST_P(SessionCipher, SealAppendsPacketsBackToBack) {
  packet_sealer sealer(test_key(1), cipher());
  packet_opener opener(test_key(1), cipher());
  byte_vector stream;
  sealer.seal(packet_type::stream_data, counting_bytes(10), stream);
  sealer.seal(packet_type::stream_data, counting_bytes(20, 5), stream);
  wire::stream_packet_reader reader;
  reader.feed(stream);
  boost::system::error_code ec;
  byte_vector plain;
  auto first = reader.next(ec);
  ASSERT_TRUE(first);
  ASSERT_FALSE(opener.open(*first, plain));
  EXPECT_EQ(plain, counting_bytes(10));
  auto second = reader.next(ec);
  ASSERT_TRUE(second);
  ASSERT_FALSE(opener.open(*second, plain));
  EXPECT_EQ(plain, counting_bytes(20, 5));
}

TEST_P(SessionCipher, LargestPlaintextFitsOnePacket) {
  EXPECT_EQ(packet_sealer::max_plaintext_for(65535), 65535u - 24);
  EXPECT_EQ(packet_sealer::max_plaintext_for(100000), 65535u - 24);
  EXPECT_EQ(packet_sealer::max_plaintext_for(wire::max_datagram_size - wire::packet_header_size),
            1200u - 28);
  EXPECT_EQ(packet_sealer::max_plaintext_for(24), 0u);
  EXPECT_EQ(packet_sealer::max_plaintext_for(3), 0u);

  packet_sealer sealer(test_key(1), cipher());
  packet_opener opener(test_key(1), cipher());
  const byte_vector big = counting_bytes(packet_sealer::max_plaintext_for(65535));
  const byte_vector packet = seal_one(sealer, big);
  EXPECT_EQ(packet.size(), 4u + 65535);
  byte_vector plain;
  ASSERT_FALSE(opener.open(parse(packet), plain));
  EXPECT_EQ(plain, big);

  byte_vector out;
  EXPECT_THROW(sealer.seal(packet_type::stream_data, counting_bytes(big.size() + 1), out),
               std::length_error);
}

TEST_P(SessionCipher, FlippedCounterCiphertextOrTagFailsAuthentication) {
  packet_sealer sealer(test_key(1), cipher());
  const byte_vector packet = seal_one(sealer, counting_bytes(40));
  for (std::size_t i = 4; i < packet.size(); ++i) {
    for (std::uint8_t mask : {0x01, 0x80, 0xff}) {
      byte_vector bad = packet;
      bad[i] ^= mask;
      packet_opener opener(test_key(1), cipher());
      byte_vector plain;
      EXPECT_EQ(opener.open(parse(bad), plain), errc::decrypt_failed) << "byte " << i;
      EXPECT_TRUE(plain.empty());
    }
  }
}

TEST_P(SessionCipher, AlteredHeaderFailsAuthentication) {
  packet_sealer sealer(test_key(1), cipher());
  const byte_vector packet = seal_one(sealer, counting_bytes(40));
  byte_vector plain;
  {  // another version
    byte_vector bad = packet;
    bad[0] = 2;
    packet_opener opener(test_key(1), cipher());
    EXPECT_EQ(opener.open(parse(bad), plain), errc::decrypt_failed);
  }
  {  // another (sealed) type
    byte_vector bad = packet;
    bad[1] = static_cast<std::uint8_t>(packet_type::reliable_data);
    packet_opener opener(test_key(1), cipher());
    EXPECT_EQ(opener.open(parse(bad), plain), errc::decrypt_failed);
  }
  {  // a shorter length, read as a stream reader would: the tag moves
    byte_vector bad = packet;
    bad[3] -= 1;
    bad.pop_back();
    packet_opener opener(test_key(1), cipher());
    EXPECT_EQ(opener.open(parse(bad), plain), errc::decrypt_failed);
  }
  {  // a hand-made view whose fields disagree with the sealed header
    wire::packet_view p = parse(packet);
    p.type = packet_type::introduction;
    packet_opener opener(test_key(1), cipher());
    EXPECT_EQ(opener.open(p, plain), errc::decrypt_failed);
  }
}

TEST_P(SessionCipher, WrongKeyFailsAuthentication) {
  packet_sealer sealer(test_key(1), cipher());
  packet_opener opener(test_key(2), cipher());
  byte_vector plain;
  EXPECT_EQ(opener.open(parse(seal_one(sealer, counting_bytes(10))), plain), errc::decrypt_failed);
}

TEST_P(SessionCipher, ShortPayloadIsTruncated) {
  packet_opener opener(test_key(1), cipher());
  for (std::size_t n = 0; n < packet_sealer::payload_overhead; ++n) {
    byte_vector packet;
    wire::append_packet(packet, packet_type::stream_data, counting_bytes(n));
    byte_vector plain;
    EXPECT_EQ(opener.open(parse(packet), plain), errc::truncated) << n;
  }
}

TEST_P(SessionCipher, ReplayOfTheSamePacketIsRefused) {
  packet_sealer sealer(test_key(1), cipher());
  packet_opener opener(test_key(1), cipher());
  const byte_vector packet = seal_one(sealer, counting_bytes(10));
  byte_vector plain;
  ASSERT_FALSE(opener.open(parse(packet), plain));
  EXPECT_EQ(opener.open(parse(packet), plain), errc::replayed);
  EXPECT_TRUE(plain.empty());
}

TEST_P(SessionCipher, OutOfOrderWithinTheWindowOpensOnce) {
  packet_sealer sealer(test_key(1), cipher());
  packet_opener opener(test_key(1), cipher());
  std::vector<byte_vector> packets;
  for (int i = 0; i < 10; ++i) packets.push_back(seal_one(sealer, counting_bytes(5, i)));
  byte_vector plain;
  ASSERT_FALSE(opener.open(parse(packets[9]), plain));
  for (int i = 8; i >= 0; --i) {
    ASSERT_FALSE(opener.open(parse(packets[i]), plain)) << i;
    EXPECT_EQ(plain, counting_bytes(5, i));
  }
  for (int i = 0; i < 10; ++i) EXPECT_EQ(opener.open(parse(packets[i]), plain), errc::replayed);
}

TEST_P(SessionCipher, OlderThanTheWindowIsRefused) {
  packet_sealer sealer(test_key(1), cipher());
  packet_opener opener(test_key(1), cipher());
  std::vector<byte_vector> packets;
  for (int i = 0; i <= 2100; ++i) packets.push_back(seal_one(sealer, counting_bytes(1)));
  byte_vector plain;
  ASSERT_FALSE(opener.open(parse(packets[2100]), plain));
  EXPECT_EQ(opener.open(parse(packets[2100 - 2049]), plain), errc::replayed);
  EXPECT_EQ(opener.open(parse(packets[0]), plain), errc::replayed);
  EXPECT_FALSE(opener.open(parse(packets[2100 - 2048]), plain));
}

TEST_P(SessionCipher, ForgeriesDoNotMoveTheWindow) {
  packet_sealer sealer(test_key(1), cipher());
  packet_opener opener(test_key(1), cipher());
  const byte_vector packet = seal_one(sealer, counting_bytes(10));
  byte_vector forged = packet;
  forged[4] = 0x7f;  // counter far ahead; would push counter 0 out of the window
  byte_vector plain;
  EXPECT_EQ(opener.open(parse(forged), plain), errc::decrypt_failed);
  EXPECT_FALSE(opener.window().any_accepted());
  EXPECT_FALSE(opener.open(parse(packet), plain));
}

TEST_P(SessionCipher, OpensIntoACallerBuffer) {
  packet_sealer sealer(test_key(1), cipher());
  packet_opener opener(test_key(1), cipher());
  const byte_vector packet = seal_one(sealer, counting_bytes(30));
  std::array<std::uint8_t, 29> small{};
  std::array<std::uint8_t, 64> buffer{};
  std::size_t written = 99;
  EXPECT_EQ(opener.open(parse(packet), small, written), errc::bad_length);
  EXPECT_EQ(written, 0u);
  ASSERT_FALSE(opener.open(parse(packet), buffer, written));
  ASSERT_EQ(written, 30u);
  EXPECT_TRUE(std::equal(buffer.begin(), buffer.begin() + 30, counting_bytes(30).begin()));
}

TEST_P(SessionCipher, MovedFromSealerCannotRepeatNonces) {
  packet_sealer first(test_key(1), cipher());
  seal_one(first, counting_bytes(3));
  packet_sealer second(std::move(first));
  EXPECT_EQ(second.next_counter(), 1u);
  EXPECT_TRUE(first.exhausted());  // NOLINT(bugprone-use-after-move): that is the point
  byte_vector out;
  EXPECT_THROW(first.seal(packet_type::stream_data, counting_bytes(3), out), std::logic_error);
  packet_opener opener(test_key(1), cipher());
  byte_vector plain;
  ASSERT_FALSE(opener.open(parse(seal_one(second, counting_bytes(3))), plain));
}

INSTANTIATE_TEST_SUITE_P(Aead, SessionCipher,
                         ::testing::Values(aead::chacha20_poly1305, aead::aes256_gcm),
                         [](const auto& info) { return std::string(name_of(info.param)); });

// The same key, counter, header and plaintext sealed with one AEAD never opens with the other:
// both ends must have chosen the same (PROTOCOL.md 3.1).
TEST(SessionCipherAeads, SealedWithOneDoesNotOpenWithTheOther) {
  if (!aes256_gcm_available()) GTEST_SKIP() << no_aes_gcm;
  for (aead sealed_with : {aead::chacha20_poly1305, aead::aes256_gcm}) {
    const aead other =
        sealed_with == aead::aes256_gcm ? aead::chacha20_poly1305 : aead::aes256_gcm;
    packet_sealer sealer(test_key(1), sealed_with);
    const byte_vector packet = seal_one(sealer, counting_bytes(100));
    packet_opener wrong(test_key(1), other);
    byte_vector plain;
    EXPECT_EQ(wrong.open(parse(packet), plain), errc::decrypt_failed) << name_of(sealed_with);
    EXPECT_TRUE(plain.empty());
    EXPECT_FALSE(wrong.window().any_accepted());
    packet_opener right(test_key(1), sealed_with);
    ASSERT_FALSE(right.open(parse(packet), plain)) << name_of(sealed_with);
    EXPECT_EQ(plain, counting_bytes(100));
  }
}

TEST(SessionCipherAeads, TheTwoCiphertextsDiffer) {
  if (!aes256_gcm_available()) GTEST_SKIP() << no_aes_gcm;
  packet_sealer chacha(test_key(1), aead::chacha20_poly1305), aes(test_key(1), aead::aes256_gcm);
  const byte_vector a = seal_one(chacha, counting_bytes(50)), b = seal_one(aes, counting_bytes(50));
  ASSERT_EQ(a.size(), b.size());  // the same layout...
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + 12, b.begin()));  // header and counter
  EXPECT_FALSE(std::equal(a.begin() + 12, a.end(), b.begin() + 12));  // ...not the same cipher
  EXPECT_EQ(chacha.cipher(), aead::chacha20_poly1305);
  EXPECT_EQ(aes.cipher(), aead::aes256_gcm);
}

// Both are held per session, for tens of thousands of sessions: the AEAD costs one byte each
// (and its alignment), never a precomputed key schedule; key epochs (PROTOCOL.md 3.4) cost the
// sealer nothing and the opener one pointer, which stays empty while no epoch is crossed.
TEST(SessionCipherAeads, SealerAndOpenerStaySmall) {
  EXPECT_LE(sizeof(packet_sealer), sizeof(key) + 2 * sizeof(std::uint64_t));
  EXPECT_LE(sizeof(packet_opener), sizeof(key) + sizeof(replay_window) + sizeof(std::uint64_t));
  packet_sealer sealer(test_key(1), aead::chacha20_poly1305);
  packet_opener opener(test_key(1), aead::chacha20_poly1305);
  byte_vector plain;
  for (int i = 0; i < 100; ++i) ASSERT_FALSE(opener.open(parse(seal_one(sealer, counting_bytes(10))), plain));
  EXPECT_EQ(opener.heap_bytes(), 0u);
}

}  // namespace
}  // namespace kadnet::core::crypto
