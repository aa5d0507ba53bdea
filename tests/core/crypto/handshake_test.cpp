#include "kadnet/core/crypto/handshake.hpp"

#include <memory>

#include <gtest/gtest.h>
#include <sodium.h>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/wire/packet.hpp"

namespace kadnet::core::crypto {
namespace {

using wire::packet_type;
constexpr std::uint64_t minute = 60'000;

identity fixed_identity(std::uint8_t n) {
  std::array<std::uint8_t, 32> seed{};
  seed.fill(n);
  return identity::from_seed(seed);
}

// Deterministic randomness: libsodium's seeded generator, one fresh stream per call.
random_source seeded(std::uint8_t seed) {
  return [seed, calls = std::make_shared<std::uint64_t>(0)](mutable_byte_span out) {
    std::array<std::uint8_t, randombytes_SEEDBYTES> s{};
    s[0] = seed;
    std::memcpy(s.data() + 8, calls.get(), sizeof(std::uint64_t));
    ++*calls;
    randombytes_buf_deterministic(out.data(), out.size(), s.data());
  };
}

std::array<std::uint8_t, 18> address(std::uint8_t last_octet, std::uint16_t port = 4000) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, last_octet,
          static_cast<std::uint8_t>(port >> 8), static_cast<std::uint8_t>(port)};
}

wire::packet_view parse(const byte_vector& packet) {
  wire::packet_view p;
  EXPECT_FALSE(wire::parse_packet(packet, p)) << to_hex(packet);
  return p;
}

bool is_one_of(boost::system::error_code ec, std::initializer_list<errc> codes) {
  for (errc c : codes)
    if (ec == c) return true;
  return false;
}

// An initiator hello signed properly by `who` but carrying a chosen ephemeral key.
byte_vector signed_initiator_hello(const identity& who, const std::array<std::uint8_t, 32>& eph) {
  hello_fields h;
  h.ephemeral = eph;
  h.identity = who.id();
  byte_vector payload = h.encode();
  byte_vector message(initiator_signature_context.begin(), initiator_signature_context.end());
  message.insert(message.end(), payload.begin(), payload.begin() + hello_fields::signed_size);
  h.sig = who.sign(message);
  byte_vector packet;
  wire::append_packet(packet, packet_type::hello, h.encode());
  return packet;
}

class Handshake : public ::testing::Test {
 protected:
  identity alice = fixed_identity(1);  // dials
  identity bob = fixed_identity(2);    // listens
  responder bob_responder{bob, {}, seeded(20)};
  cookie_jar jar{seeded(30)};
  std::array<std::uint8_t, 18> alice_address = address(1);

  responder::response deliver(const byte_vector& hello, std::uint64_t now = 0,
                              bool under_load = false) {
    return bob_responder.on_hello(parse(hello), alice_address, now, under_load, jar);
  }
};

TEST_F(Handshake, FullHandshakeGivesMatchingKeysAndIdentities) {
  initiator_handshake a(alice, {.dynamic_ip = true}, bob.id(), seeded(10));
  const auto r = deliver(a.first_packet());
  ASSERT_FALSE(r.ec) << r.ec.message();
  ASSERT_TRUE(r.done);
  EXPECT_EQ(r.done->peer, alice.id());
  EXPECT_TRUE(r.done->peer_dynamic_ip);
  ASSERT_TRUE(r.initiator_hello);
  EXPECT_EQ(r.initiator_hello->identity, alice.id());
  EXPECT_EQ(parse(r.reply).type, packet_type::hello);

  const auto s = a.on_packet(parse(r.reply));
  ASSERT_FALSE(s.ec) << s.ec.message();
  ASSERT_TRUE(s.done);
  EXPECT_TRUE(s.reply.empty());
  EXPECT_TRUE(a.finished());
  EXPECT_EQ(s.done->peer, bob.id());
  EXPECT_FALSE(s.done->peer_dynamic_ip);
  EXPECT_EQ(s.done->keys.tx, r.done->keys.rx);
  EXPECT_EQ(s.done->keys.rx, r.done->keys.tx);
  EXPECT_NE(s.done->keys.tx, s.done->keys.rx);
}

TEST_F(Handshake, SealedPacketsFlowBothWays) {
  initiator_handshake a(alice, {});
  const auto r = deliver(a.first_packet());
  ASSERT_TRUE(r.done);
  const auto s = a.on_packet(parse(r.reply));
  ASSERT_TRUE(s.done);

  packet_sealer alice_tx(s.done->keys.tx, s.done->cipher), bob_tx(r.done->keys.tx, r.done->cipher);
  packet_opener alice_rx(s.done->keys.rx, s.done->cipher), bob_rx(r.done->keys.rx, r.done->cipher);
  const byte_vector ping = {0x0a, 0, 0, 0, 1};
  byte_vector packet, plain;
  alice_tx.seal(packet_type::stream_data, ping, packet);
  ASSERT_FALSE(bob_rx.open(parse(packet), plain));
  EXPECT_EQ(plain, ping);
  // The keys are directional: a packet does not open in the direction it was sent.
  EXPECT_EQ(alice_rx.open(parse(packet), plain), errc::decrypt_failed);
  packet.clear();
  bob_tx.seal(packet_type::stream_data, ping, packet);
  ASSERT_FALSE(alice_rx.open(parse(packet), plain));
  EXPECT_EQ(plain, ping);
}

TEST_F(Handshake, ExpectedIdentityMismatchIsRefused) {
  const identity carol = fixed_identity(3);
  initiator_handshake a(alice, {}, carol.id(), seeded(10));
  const auto r = deliver(a.first_packet());
  ASSERT_TRUE(r.done);
  const auto s = a.on_packet(parse(r.reply));
  EXPECT_EQ(s.ec, errc::unexpected_identity);
  EXPECT_FALSE(s.done);
  // The initiator tells the responder why it hangs up (refuse reason 3).
  const wire::packet_view refuse = parse(s.reply);
  ASSERT_EQ(refuse.type, packet_type::refuse);
  refusal f;
  ASSERT_FALSE(decode_refuse(refuse.payload, f));
  EXPECT_EQ(f.reason, refuse_identity);
  EXPECT_NE(f.text.find("is not the expected NodeId"), std::string::npos);
}

TEST_F(Handshake, FlippedByteInInitiatorHelloNeverSucceeds) {
  initiator_handshake a(alice, {}, std::nullopt, seeded(10));
  const byte_vector hello = a.first_packet();
  for (std::size_t i = wire::packet_header_size; i < hello.size(); ++i) {
    for (std::uint8_t mask : {0x01, 0x80, 0xff}) {
      byte_vector bad = hello;
      bad[i] ^= mask;
      const auto r = deliver(bad);
      EXPECT_TRUE(is_one_of(r.ec, {errc::bad_signature, errc::bad_field}))
          << "byte " << i << " mask " << int(mask) << ": " << r.ec.message();
      EXPECT_FALSE(r.done);
      EXPECT_TRUE(r.reply.empty());
    }
  }
}

TEST_F(Handshake, FlippedByteInResponderHelloNeverSucceeds) {
  for (std::size_t i = wire::packet_header_size; i < 4 + hello_fields::size; ++i) {
    for (std::uint8_t mask : {0x01, 0x80, 0xff}) {
      initiator_handshake a(alice, {}, std::nullopt, seeded(10));
      const auto r = deliver(a.first_packet());
      ASSERT_TRUE(r.done);
      byte_vector bad = r.reply;
      bad[i] ^= mask;
      const auto s = a.on_packet(parse(bad));
      EXPECT_TRUE(is_one_of(s.ec, {errc::bad_signature, errc::bad_field}))
          << "byte " << i << " mask " << int(mask) << ": " << s.ec.message();
      EXPECT_FALSE(s.done);
    }
  }
}

TEST_F(Handshake, ResponderHelloForAnotherInitiatorHelloIsRejected) {
  // Bob's answer to one hello cannot complete a different handshake (the signature binds both).
  initiator_handshake first(alice, {}, std::nullopt, seeded(10));
  initiator_handshake second(alice, {}, std::nullopt, seeded(11));
  first.first_packet();
  const auto r = deliver(second.first_packet());
  ASSERT_TRUE(r.done);
  EXPECT_EQ(first.on_packet(parse(r.reply)).ec, errc::bad_signature);
}

TEST_F(Handshake, VersionMismatchIsRefusedWithAReadableText) {
  initiator_handshake a(alice, {}, std::nullopt, seeded(10));
  byte_vector hello = a.first_packet();
  hello[0] = 2;
  const auto r = deliver(hello);
  EXPECT_EQ(r.ec, errc::version_mismatch);
  EXPECT_FALSE(r.done);
  const wire::packet_view refuse = parse(r.reply);
  ASSERT_EQ(refuse.type, packet_type::refuse);
  EXPECT_EQ(refuse.version, wire::protocol_version);
  refusal f;
  ASSERT_FALSE(decode_refuse(refuse.payload, f));
  EXPECT_EQ(f.reason, refuse_version_mismatch);
  EXPECT_EQ(f.lowest_version, 1);
  EXPECT_EQ(f.highest_version, 1);

  const auto s = a.on_packet(refuse);
  EXPECT_EQ(s.ec, errc::version_mismatch);
  EXPECT_EQ(s.refusal_text, "kadnet protocol version 2 is not supported; this node speaks 1 to 1");
  EXPECT_FALSE(s.done);
}

TEST_F(Handshake, VersionIsCheckedBeforeTheHelloLength) {
  // A later version may define a longer hello; it is refused, not dropped as malformed.
  byte_vector hello;
  wire::append_packet(hello, packet_type::hello, byte_vector(200, 7), 3);
  const auto r = deliver(hello);
  EXPECT_EQ(r.ec, errc::version_mismatch);
  EXPECT_EQ(parse(r.reply).type, packet_type::refuse);
}

TEST_F(Handshake, InitiatorAcceptsARefuseOfAnotherVersion) {
  initiator_handshake a(alice, {});
  a.first_packet();
  byte_vector refuse;
  const byte_vector payload = {1, 2, 3, 2, 'n', 'o'};
  wire::append_packet(refuse, packet_type::refuse, payload, 2);
  const auto s = a.on_packet(parse(refuse));
  EXPECT_EQ(s.ec, errc::version_mismatch);
  EXPECT_EQ(s.refusal_text, "no");
}

TEST_F(Handshake, OtherRefusalsFailTheHandshakeWithTheirText) {
  initiator_handshake a(alice, {});
  a.first_packet();
  const auto s = a.on_packet(parse(make_refuse_packet(refuse_overloaded, "busy, try later")));
  EXPECT_EQ(s.ec, errc::handshake_failed);
  EXPECT_EQ(s.refusal_text, "busy, try later");
}

TEST_F(Handshake, CookieFlowUnderLoad) {
  initiator_handshake a(alice, {}, bob.id(), seeded(10));
  const auto challenge = deliver(a.first_packet(), 1000, true);
  EXPECT_EQ(challenge.ec, errc::cookie_required);
  EXPECT_FALSE(challenge.done);
  const wire::packet_view cookie = parse(challenge.reply);
  ASSERT_EQ(cookie.type, packet_type::cookie);
  ASSERT_EQ(cookie.payload.size(), 32u);

  const auto again = a.on_packet(cookie);
  ASSERT_FALSE(again.ec) << again.ec.message();
  ASSERT_FALSE(again.done);
  ASSERT_EQ(a.challenges(), 1);
  hello_fields second;
  ASSERT_FALSE(hello_fields::decode(parse(again.reply).payload, second));
  EXPECT_TRUE(std::equal(second.cookie.begin(), second.cookie.end(), cookie.payload.begin()));

  const auto r = deliver(again.reply, 2000, true);
  ASSERT_FALSE(r.ec) << r.ec.message();
  ASSERT_TRUE(r.done);
  hello_fields reply;
  ASSERT_FALSE(hello_fields::decode(parse(r.reply).payload, reply));
  EXPECT_EQ(reply.cookie, second.cookie);  // the responder repeats the cookie field

  const auto s = a.on_packet(parse(r.reply));
  ASSERT_FALSE(s.ec) << s.ec.message();
  ASSERT_TRUE(s.done);
  EXPECT_EQ(s.done->keys.tx, r.done->keys.rx);
}

TEST_F(Handshake, CookieFromThePreviousSlotIsAccepted) {
  initiator_handshake a(alice, {}, std::nullopt, seeded(10));
  const auto challenge = deliver(a.first_packet(), 59 * minute + 59'000, true);
  const auto again = a.on_packet(parse(challenge.reply));
  EXPECT_TRUE(deliver(again.reply, 60 * minute + 59'000, true).done);
}

TEST_F(Handshake, ExpiredCookieIsChallengedAgain) {
  initiator_handshake a(alice, {}, std::nullopt, seeded(10));
  const auto challenge = deliver(a.first_packet(), 0, true);
  const auto again = a.on_packet(parse(challenge.reply));
  const auto r = deliver(again.reply, 3 * minute, true);  // more than two slots later
  EXPECT_EQ(r.ec, errc::bad_cookie);
  EXPECT_FALSE(r.done);
  const wire::packet_view fresh = parse(r.reply);
  ASSERT_EQ(fresh.type, packet_type::cookie);
  EXPECT_FALSE(std::equal(fresh.payload.begin(), fresh.payload.end(),
                          parse(challenge.reply).payload.begin()));
  // The second challenge is still followed, and its cookie works.
  const auto third = a.on_packet(fresh);
  ASSERT_FALSE(third.ec);
  EXPECT_TRUE(deliver(third.reply, 3 * minute + 1, true).done);
}

TEST_F(Handshake, ForgedCookieIsChallengedAgain) {
  initiator_handshake a(alice, {}, std::nullopt, seeded(10));
  a.first_packet();
  byte_vector forged_cookie;
  wire::append_packet(forged_cookie, packet_type::cookie, byte_vector(32, 0x42));
  const auto again = a.on_packet(parse(forged_cookie));  // as if an attacker had answered
  ASSERT_FALSE(again.ec);
  const auto r = deliver(again.reply, 0, true);
  EXPECT_EQ(r.ec, errc::bad_cookie);
  EXPECT_EQ(parse(r.reply).type, packet_type::cookie);
  EXPECT_FALSE(r.done);
  EXPECT_EQ(bob_responder.expensive_operations(), 0u);
}

TEST_F(Handshake, CookieIsBoundToTheAddress) {
  initiator_handshake a(alice, {}, std::nullopt, seeded(10));
  const auto challenge = deliver(a.first_packet(), 0, true);
  const auto again = a.on_packet(parse(challenge.reply));
  const auto elsewhere = address(99);
  const auto r = bob_responder.on_hello(parse(again.reply), elsewhere, 1, true, jar);
  EXPECT_EQ(r.ec, errc::bad_cookie);
  EXPECT_EQ(parse(r.reply).type, packet_type::cookie);
  EXPECT_FALSE(r.done);
  const auto other_port = address(1, 4001);
  EXPECT_EQ(bob_responder.on_hello(parse(again.reply), other_port, 1, true, jar).ec,
            errc::bad_cookie);
}

TEST_F(Handshake, InitiatorFollowsAtMostTwoChallenges) {
  initiator_handshake a(alice, {});
  a.first_packet();
  byte_vector cookie;
  wire::append_packet(cookie, packet_type::cookie, byte_vector(32, 5));
  EXPECT_FALSE(a.on_packet(parse(cookie)).ec);
  EXPECT_FALSE(a.on_packet(parse(cookie)).ec);
  const auto s = a.on_packet(parse(cookie));
  EXPECT_EQ(s.ec, errc::handshake_failed);
  EXPECT_TRUE(s.reply.empty());
  EXPECT_TRUE(a.finished());
}

TEST_F(Handshake, MalformedCookiePacketFailsTheHandshake) {
  for (std::size_t n : {0u, 31u, 33u}) {
    initiator_handshake a(alice, {});
    a.first_packet();
    byte_vector cookie;
    wire::append_packet(cookie, packet_type::cookie, byte_vector(n, 5));
    EXPECT_EQ(a.on_packet(parse(cookie)).ec, n < 32 ? errc::truncated : errc::bad_length);
  }
}

TEST_F(Handshake, NoExpensiveWorkForUncookiedHellosUnderLoad) {
  initiator_handshake a(alice, {}, std::nullopt, seeded(10));
  const byte_vector hello = a.first_packet();
  ASSERT_EQ(bob_responder.expensive_operations(), 0u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(deliver(hello, 0, true).ec, errc::cookie_required);
  EXPECT_EQ(bob_responder.expensive_operations(), 0u);

  // The order is visible too: a forged hello under load is challenged, not checked.
  byte_vector forged = hello;
  forged.back() ^= 1;
  EXPECT_EQ(deliver(forged, 0, true).ec, errc::cookie_required);
  EXPECT_EQ(deliver(forged, 0, false).ec, errc::bad_signature);
  EXPECT_EQ(bob_responder.expensive_operations(), 1u);  // one verification, then nothing

  // A completed handshake costs verify + key pair + key exchange + sign.
  EXPECT_TRUE(deliver(hello, 0, false).done);
  EXPECT_EQ(bob_responder.expensive_operations(), 5u);
}

TEST_F(Handshake, ResponderIgnoresTheCookieWhenNotUnderLoad) {
  initiator_handshake a(alice, {});
  const auto challenge = deliver(a.first_packet(), 0, true);
  const auto again = a.on_packet(parse(challenge.reply));
  EXPECT_TRUE(deliver(again.reply, 10 * minute, false).done);
}

TEST_F(Handshake, LowOrderEphemeralKeyFailsAtTheResponder) {
  const auto r = deliver(signed_initiator_hello(alice, {}));
  EXPECT_EQ(r.ec, errc::handshake_failed);
  EXPECT_FALSE(r.done);
  EXPECT_TRUE(r.reply.empty());
}

TEST_F(Handshake, LowOrderEphemeralKeyFailsAtTheInitiator) {
  initiator_handshake a(alice, {}, std::nullopt, seeded(10));
  const byte_vector hello = a.first_packet();
  const wire::packet_view hp = parse(hello);
  // A properly signed responder hello whose ephemeral key is the zero point.
  hello_fields h;
  h.identity = bob.id();
  byte_vector payload = h.encode();
  byte_vector message(responder_signature_context.begin(), responder_signature_context.end());
  message.insert(message.end(), hp.payload.begin(), hp.payload.end());
  message.insert(message.end(), payload.begin(), payload.begin() + hello_fields::signed_size);
  h.sig = bob.sign(message);
  byte_vector packet;
  wire::append_packet(packet, packet_type::hello, h.encode());
  EXPECT_EQ(a.on_packet(parse(packet)).ec, errc::handshake_failed);
}

TEST_F(Handshake, InitiatorRejectsUnexpectedPackets) {
  {
    initiator_handshake a(alice, {});
    a.first_packet();
    byte_vector data;
    wire::append_packet(data, packet_type::stream_data, byte_vector(30, 1));
    EXPECT_EQ(a.on_packet(parse(data)).ec, errc::handshake_failed);
  }
  {  // a hello of another version
    initiator_handshake a(alice, {});
    const auto r = deliver(a.first_packet());
    byte_vector reply = r.reply;
    reply[0] = 2;
    EXPECT_EQ(a.on_packet(parse(reply)).ec, errc::handshake_failed);
  }
  {  // anything after the end
    initiator_handshake a(alice, {});
    const auto r = deliver(a.first_packet());
    ASSERT_TRUE(a.on_packet(parse(r.reply)).done);
    EXPECT_EQ(a.on_packet(parse(r.reply)).ec, errc::handshake_failed);
  }
}

TEST_F(Handshake, ResponderDropsMalformedHellosWithoutAnswer) {
  initiator_handshake a(alice, {});
  const byte_vector hello = a.first_packet();
  const wire::packet_view p = parse(hello);
  for (std::size_t n = 0; n < hello_fields::size; ++n) {
    byte_vector cut;
    wire::append_packet(cut, packet_type::hello, p.payload.first(n));
    const auto r = deliver(cut, 0, true);
    EXPECT_EQ(r.ec, errc::truncated) << n;
    EXPECT_TRUE(r.reply.empty());
  }
  byte_vector longer(p.payload.begin(), p.payload.end());
  longer.push_back(0);
  byte_vector packet;
  wire::append_packet(packet, packet_type::hello, longer);
  EXPECT_EQ(deliver(packet).ec, errc::bad_length);
  EXPECT_EQ(bob_responder.expensive_operations(), 0u);

  byte_vector cookie;
  wire::append_packet(cookie, packet_type::cookie, byte_vector(32, 1));
  EXPECT_EQ(deliver(cookie).ec, errc::handshake_failed);
}

TEST_F(Handshake, InjectedRandomnessMakesRunsRepeatable) {
  initiator_handshake one(alice, {}, std::nullopt, seeded(10));
  initiator_handshake two(alice, {}, std::nullopt, seeded(10));
  initiator_handshake three(alice, {}, std::nullopt, seeded(11));
  const byte_vector h1 = one.first_packet();
  EXPECT_EQ(h1, two.first_packet());
  EXPECT_NE(h1, three.first_packet());
}

// ---- the AEAD the hellos choose (flags bit 1) ----

constexpr std::size_t flags_at = wire::packet_header_size + 64;  // in a whole hello packet

byte_vector payload_of(const byte_vector& packet) {
  const wire::packet_view p = parse(packet);
  return byte_vector(p.payload.begin(), p.payload.end());
}

// The cipher both ends agree on for every combination of who offers AES-256-GCM, and what each
// hello says. The responder answers bit 1 only to an initiator that sent it.
class Negotiation : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

TEST_P(Negotiation, AesGcmExactlyWhenBothOfferIt) {
  const auto [initiator_offers, responder_offers] = GetParam();
  const identity alice = fixed_identity(1), bob = fixed_identity(2);
  initiator_handshake a(alice, {.dynamic_ip = true, .offer_aes_gcm = initiator_offers}, bob.id(),
                        seeded(10));
  responder b(bob, {.offer_aes_gcm = responder_offers}, seeded(20));
  cookie_jar jar(seeded(30));
  const byte_vector hello = a.first_packet();
  const auto r = b.on_hello(parse(hello), address(1), 0, false, jar);
  ASSERT_TRUE(r.done) << r.ec.message();
  const auto s = a.on_packet(parse(r.reply));
  ASSERT_TRUE(s.done) << s.ec.message();

  const bool hardware = aes256_gcm_available();
  const bool aes = initiator_offers && responder_offers && hardware;
  const aead expected = aes ? aead::aes256_gcm : aead::chacha20_poly1305;
  EXPECT_EQ(s.done->cipher, expected);
  EXPECT_EQ(r.done->cipher, expected);
  EXPECT_TRUE(r.done->peer_dynamic_ip);  // bit 0 still means what it did
  EXPECT_EQ(hello[flags_at], (initiator_offers && hardware ? 0x03 : 0x01));
  EXPECT_EQ(r.reply[flags_at], aes ? 0x02 : 0x00);

  // Each side seals with what it chose, and the other opens it.
  packet_sealer alice_tx(s.done->keys.tx, s.done->cipher), bob_tx(r.done->keys.tx, r.done->cipher);
  packet_opener alice_rx(s.done->keys.rx, s.done->cipher), bob_rx(r.done->keys.rx, r.done->cipher);
  const byte_vector ping = {0x0a, 0, 0, 0, 1};
  byte_vector to_bob, to_alice, plain;
  alice_tx.seal(packet_type::stream_data, ping, to_bob);
  bob_tx.seal(packet_type::stream_data, ping, to_alice);
  ASSERT_FALSE(bob_rx.open(parse(to_bob), plain));
  EXPECT_EQ(plain, ping);
  ASSERT_FALSE(alice_rx.open(parse(to_alice), plain));
  EXPECT_EQ(plain, ping);

  if (initiator_offers && responder_offers && !hardware)
    GTEST_SKIP() << "this CPU lacks AES-NI/PCLMUL (crypto_aead_aes256gcm_is_available() is 0): "
                    "checked only the fallback to ChaCha20-Poly1305";
}

INSTANTIATE_TEST_SUITE_P(All, Negotiation, ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "I" : "NoI") + "AesGcm" +
                                  (std::get<1>(info.param) ? "R" : "NoR") + "AesGcm";
                         });

// Flags bit 1 is covered by both signatures: a man in the middle can neither strip it (to force
// ChaCha20-Poly1305) nor add it; the handshake fails instead.
constexpr const char* no_aes_gcm = "this CPU lacks AES-NI/PCLMUL: no hello carries bit 1";

TEST(AesGcmFlag, StrippedFromTheInitiatorHelloFailsTheSignature) {
  if (!aes256_gcm_available()) GTEST_SKIP() << no_aes_gcm;
  const identity alice = fixed_identity(1), bob = fixed_identity(2);
  initiator_handshake a(alice, {.offer_aes_gcm = true}, bob.id(), seeded(10));
  responder b(bob, {.offer_aes_gcm = true}, seeded(20));
  cookie_jar jar(seeded(30));
  byte_vector hello = a.first_packet();
  ASSERT_EQ(hello[flags_at], hello_flag_aes_gcm);
  hello[flags_at] ^= hello_flag_aes_gcm;
  const auto r = b.on_hello(parse(hello), address(1), 0, false, jar);
  EXPECT_EQ(r.ec, errc::bad_signature);
  EXPECT_FALSE(r.done);
  EXPECT_TRUE(r.reply.empty());
}

TEST(AesGcmFlag, StrippedFromTheResponderHelloFailsTheSignature) {
  if (!aes256_gcm_available()) GTEST_SKIP() << no_aes_gcm;
  const identity alice = fixed_identity(1), bob = fixed_identity(2);
  initiator_handshake a(alice, {.offer_aes_gcm = true}, bob.id(), seeded(10));
  responder b(bob, {.offer_aes_gcm = true}, seeded(20));
  cookie_jar jar(seeded(30));
  const auto r = b.on_hello(parse(a.first_packet()), address(1), 0, false, jar);
  ASSERT_TRUE(r.done);
  ASSERT_EQ(r.done->cipher, aead::aes256_gcm);
  byte_vector answer = r.reply;
  ASSERT_EQ(answer[flags_at], hello_flag_aes_gcm);
  answer[flags_at] ^= hello_flag_aes_gcm;
  const auto s = a.on_packet(parse(answer));
  EXPECT_EQ(s.ec, errc::bad_signature);
  EXPECT_FALSE(s.done);
}

TEST(AesGcmFlag, AddedInTransitFailsTheSignature) {
  const identity alice = fixed_identity(1), bob = fixed_identity(2);
  cookie_jar jar(seeded(30));
  {  // to the initiator's hello
    initiator_handshake a(alice, {}, bob.id(), seeded(10));
    responder b(bob, {.offer_aes_gcm = true}, seeded(20));
    byte_vector hello = a.first_packet();
    ASSERT_EQ(hello[flags_at], 0);
    hello[flags_at] |= hello_flag_aes_gcm;
    const auto r = b.on_hello(parse(hello), address(1), 0, false, jar);
    EXPECT_EQ(r.ec, errc::bad_signature);
    EXPECT_FALSE(r.done);
  }
  {  // to the responder's
    initiator_handshake a(alice, {.offer_aes_gcm = true}, bob.id(), seeded(10));
    responder b(bob, {}, seeded(20));
    const auto r = b.on_hello(parse(a.first_packet()), address(1), 0, false, jar);
    ASSERT_TRUE(r.done);
    byte_vector answer = r.reply;
    ASSERT_EQ(answer[flags_at], 0);
    answer[flags_at] |= hello_flag_aes_gcm;
    const auto s = a.on_packet(parse(answer));
    EXPECT_EQ(s.ec, errc::bad_signature);
    EXPECT_FALSE(s.done);
  }
}

// A hello whose flags byte has an unknown bit is malformed even when its signature is good.
TEST(AesGcmFlag, UnknownFlagBitIsMalformed) {
  const identity alice = fixed_identity(1), bob = fixed_identity(2);
  for (std::uint8_t bit : {0x04, 0x08, 0x80}) {
    // An initiator hello, signed over the unknown bit: dropped before the signature is checked.
    initiator_handshake a(alice, {}, bob.id(), seeded(10));
    byte_vector payload = payload_of(a.first_packet());
    payload[64] |= bit;
    byte_vector message(initiator_signature_context.begin(), initiator_signature_context.end());
    message.insert(message.end(), payload.begin(), payload.begin() + hello_fields::signed_size);
    const signature sig = alice.sign(message);
    std::copy(sig.begin(), sig.end(), payload.begin() + hello_fields::signed_size);
    byte_vector hello;
    wire::append_packet(hello, packet_type::hello, payload);
    responder b(bob, {.offer_aes_gcm = true}, seeded(20));
    cookie_jar jar(seeded(30));
    const auto r = b.on_hello(parse(hello), address(1), 0, false, jar);
    EXPECT_EQ(r.ec, errc::bad_field) << int(bit);
    EXPECT_FALSE(r.done);
    EXPECT_TRUE(r.reply.empty());
    EXPECT_EQ(b.expensive_operations(), 0u);

    // A responder hello, properly signed by bob over both hellos, with the unknown bit.
    initiator_handshake c(alice, {}, bob.id(), seeded(11));
    const byte_vector initiator_hello = c.first_packet();
    const auto ok = b.on_hello(parse(initiator_hello), address(1), 0, false, jar);
    ASSERT_TRUE(ok.done);
    byte_vector answer = payload_of(ok.reply);
    answer[64] |= bit;
    byte_vector signed_by_bob(responder_signature_context.begin(),
                              responder_signature_context.end());
    const wire::packet_view ih = parse(initiator_hello);
    signed_by_bob.insert(signed_by_bob.end(), ih.payload.begin(), ih.payload.end());
    signed_by_bob.insert(signed_by_bob.end(), answer.begin(),
                         answer.begin() + hello_fields::signed_size);
    const signature bob_sig = bob.sign(signed_by_bob);
    std::copy(bob_sig.begin(), bob_sig.end(), answer.begin() + hello_fields::signed_size);
    byte_vector answer_packet;
    wire::append_packet(answer_packet, packet_type::hello, answer);
    const auto s = c.on_packet(parse(answer_packet));
    EXPECT_EQ(s.ec, errc::bad_field) << int(bit);
    EXPECT_FALSE(s.done);
  }
}

// ---- hello_fields ----

TEST(HelloFields, RoundTrip) {
  hello_fields h;
  h.ephemeral.fill(1);
  h.identity = fixed_identity(4).id();
  h.dynamic_ip = true;
  h.cookie.fill(3);
  h.sig.fill(4);
  const byte_vector bytes = h.encode();
  ASSERT_EQ(bytes.size(), 161u);
  EXPECT_EQ(bytes[64], 1);
  hello_fields back;
  ASSERT_FALSE(hello_fields::decode(bytes, back));
  EXPECT_EQ(back.ephemeral, h.ephemeral);
  EXPECT_EQ(back.identity, h.identity);
  EXPECT_TRUE(back.dynamic_ip);
  EXPECT_EQ(back.cookie, h.cookie);
  EXPECT_EQ(back.sig, h.sig);
  EXPECT_EQ(back.encode(), bytes);
}

TEST(HelloFields, FlagsByte) {
  for (int flags = 0; flags < 4; ++flags) {
    hello_fields h;
    h.dynamic_ip = (flags & 1) != 0;
    h.aes_gcm = (flags & 2) != 0;
    const byte_vector bytes = h.encode();
    EXPECT_EQ(bytes[64], flags);
    hello_fields back;
    ASSERT_FALSE(hello_fields::decode(bytes, back)) << flags;
    EXPECT_EQ(back.dynamic_ip, h.dynamic_ip);
    EXPECT_EQ(back.aes_gcm, h.aes_gcm);
  }
}

TEST(HelloFields, DecodeErrors) {
  hello_fields h;
  h.ephemeral.fill(9);
  const byte_vector bytes = h.encode();
  hello_fields out;
  out.ephemeral.fill(0xee);
  for (std::size_t n = 0; n < bytes.size(); ++n)
    EXPECT_EQ(hello_fields::decode(byte_span(bytes).first(n), out), errc::truncated) << n;
  byte_vector longer = bytes;
  longer.push_back(0);
  EXPECT_EQ(hello_fields::decode(longer, out), errc::bad_length);
  for (int v : {4, 5, 7, 8, 0x80, 0xff}) {  // bits 0 and 1 are defined, no other
    byte_vector bad = bytes;
    bad[64] = static_cast<std::uint8_t>(v);
    EXPECT_EQ(hello_fields::decode(bad, out), errc::bad_field) << v;
  }
  EXPECT_EQ(out.ephemeral[0], 0xee);  // untouched on failure
}

// ---- refuse ----

TEST(Refuse, RoundTripAndErrors) {
  const byte_vector packet = make_refuse_packet(refuse_overloaded, "too busy");
  const wire::packet_view p = parse(packet);
  EXPECT_EQ(p.type, packet_type::refuse);
  refusal f;
  ASSERT_FALSE(decode_refuse(p.payload, f));
  EXPECT_EQ(f.reason, refuse_overloaded);
  EXPECT_EQ(f.text, "too busy");
  for (std::size_t n = 0; n < p.payload.size(); ++n)
    EXPECT_EQ(decode_refuse(p.payload.first(n), f), errc::truncated) << n;
  byte_vector longer(p.payload.begin(), p.payload.end());
  longer.push_back('!');
  EXPECT_EQ(decode_refuse(longer, f), errc::bad_length);
}

TEST(Refuse, LongTextIsCutAtACharacterBoundary) {
  std::string text(254, 'a');
  text += "\xc3\xa9";  // é: two bytes, the second would be byte 256
  refusal f;
  ASSERT_FALSE(decode_refuse(parse(make_refuse_packet(1, text)).payload, f));
  EXPECT_EQ(f.text, std::string(254, 'a'));
}

}  // namespace
}  // namespace kadnet::core::crypto
