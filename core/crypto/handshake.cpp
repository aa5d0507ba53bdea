#include "kadnet/core/crypto/handshake.hpp"

#include <algorithm>

#include <sodium.h>

#include "kadnet/core/errors.hpp"

namespace kadnet::core::crypto {
namespace {

static_assert(crypto_kx_PUBLICKEYBYTES == 32 && crypto_kx_SECRETKEYBYTES == 32);
static_assert(crypto_kx_SEEDBYTES == 32 && crypto_kx_SESSIONKEYBYTES == sizeof(key));
static_assert(initiator_signature_context.size() == 16 && responder_signature_context.size() == 16);

using initiator_message =
    std::array<std::uint8_t, initiator_signature_context.size() + hello_fields::signed_size>;
using responder_message = std::array<std::uint8_t, responder_signature_context.size() +
                                                       hello_fields::size +
                                                       hello_fields::signed_size>;

// "kadnet-hello-1-i" ‖ the first 97 bytes of the initiator's hello.
initiator_message initiator_signed(byte_span own_hello) {
  initiator_message m;
  std::copy(initiator_signature_context.begin(), initiator_signature_context.end(), m.begin());
  std::copy_n(own_hello.begin(), hello_fields::signed_size,
              m.begin() + initiator_signature_context.size());
  return m;
}

// "kadnet-hello-1-r" ‖ the initiator's whole hello ‖ the first 97 bytes of the responder's.
responder_message responder_signed(byte_span initiator_hello, byte_span own_hello) {
  responder_message m;
  auto it = std::copy(responder_signature_context.begin(), responder_signature_context.end(),
                      m.begin());
  it = std::copy_n(initiator_hello.begin(), hello_fields::size, it);
  std::copy_n(own_hello.begin(), hello_fields::signed_size, it);
  return m;
}

// A fresh X25519 key pair drawn from the injected randomness.
void ephemeral_keypair(const random_source& random, std::array<std::uint8_t, 32>& pk,
                       std::array<std::uint8_t, 32>& sk) {
  std::array<std::uint8_t, crypto_kx_SEEDBYTES> seed;
  fill_random(random, seed);
  crypto_kx_seed_keypair(pk.data(), sk.data(), seed.data());
  wipe(seed);
}

byte_vector hello_packet(byte_span payload) {
  byte_vector out;
  out.reserve(wire::packet_header_size + payload.size());
  wire::append_packet(out, wire::packet_type::hello, payload);
  return out;
}

// Cuts UTF-8 text to at most `limit` bytes without splitting a character.
std::string_view cut_utf8(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

}  // namespace

// ---- hello_fields ----

void hello_fields::encode(byte_vector& out) const {
  byte_writer w(out);
  w.bytes(ephemeral);
  w.bytes(identity.bytes());
  w.u8(static_cast<std::uint8_t>((dynamic_ip ? hello_flag_dynamic_ip : 0) |
                                 (aes_gcm ? hello_flag_aes_gcm : 0)));
  w.bytes(cookie);
  w.bytes(sig);
}

byte_vector hello_fields::encode() const {
  byte_vector out;
  out.reserve(size);
  encode(out);
  return out;
}

boost::system::error_code hello_fields::decode(byte_span payload, hello_fields& out) {
  if (payload.size() < size) return errc::truncated;
  if (payload.size() > size) return errc::bad_length;
  byte_reader r(payload);
  hello_fields h;
  node_id::bytes_type id;
  std::uint8_t flags = 0;
  r.array(h.ephemeral);
  r.array(id);
  r.u8(flags);
  r.array(h.cookie);
  r.array(h.sig);
  if ((flags & ~(hello_flag_dynamic_ip | hello_flag_aes_gcm)) != 0) return errc::bad_field;
  h.identity = node_id(id);
  h.dynamic_ip = (flags & hello_flag_dynamic_ip) != 0;
  h.aes_gcm = (flags & hello_flag_aes_gcm) != 0;
  out = h;
  return {};
}

// ---- refuse ----

byte_vector make_refuse_packet(std::uint8_t reason, std::string_view text) {
  text = cut_utf8(text, 255);
  byte_vector payload;
  payload.reserve(4 + text.size());
  byte_writer w(payload);
  w.u8(reason);
  w.u8(wire::protocol_version);
  w.u8(wire::protocol_version);
  w.u8(static_cast<std::uint8_t>(text.size()));
  w.bytes(as_bytes(text));
  byte_vector out;
  wire::append_packet(out, wire::packet_type::refuse, payload);
  return out;
}

boost::system::error_code decode_refuse(byte_span payload, refusal& out) {
  byte_reader r(payload);
  refusal f;
  std::uint8_t length = 0;
  byte_span text;
  if (!r.u8(f.reason) || !r.u8(f.lowest_version) || !r.u8(f.highest_version) || !r.u8(length) ||
      !r.span(length, text))
    return errc::truncated;
  if (!r.empty()) return errc::bad_length;
  f.text = std::string(as_chars(text));
  out = std::move(f);
  return {};
}

// ---- initiator_handshake ----

initiator_handshake::initiator_handshake(const identity& self, hello_options options,
                                         std::optional<node_id> expected_peer,
                                         random_source random)
    : self_(&self),
      dynamic_ip_(options.dynamic_ip),
      aes_gcm_(options.offer_aes_gcm && aes256_gcm_available()),
      expected_peer_(expected_peer) {
  ensure_sodium();
  ephemeral_keypair(random, eph_pk_, eph_sk_);
}

initiator_handshake::~initiator_handshake() { wipe(eph_sk_); }

byte_vector initiator_handshake::make_hello() {
  hello_fields h;
  h.ephemeral = eph_pk_;
  h.identity = self_->id();
  h.dynamic_ip = dynamic_ip_;
  h.aes_gcm = aes_gcm_;
  h.cookie = cookie_;
  byte_vector payload = h.encode();
  h.sig = self_->sign(initiator_signed(payload));
  std::copy(h.sig.begin(), h.sig.end(), payload.begin() + hello_fields::signed_size);
  std::copy(payload.begin(), payload.end(), sent_hello_.begin());
  return hello_packet(payload);
}

byte_vector initiator_handshake::first_packet() {
  state_ = state::waiting;
  return make_hello();
}

initiator_handshake::step initiator_handshake::fail(boost::system::error_code ec,
                                                    byte_vector reply, std::string text) {
  state_ = state::failed;
  wipe(eph_sk_);
  step s;
  s.ec = ec;
  s.reply = std::move(reply);
  s.refusal_text = std::move(text);
  return s;
}

initiator_handshake::step initiator_handshake::on_packet(const wire::packet_view& p) {
  if (state_ != state::waiting) return fail(errc::handshake_failed);
  // A refuse carries its sender's version, which is exactly what may differ from ours.
  if (p.type == wire::packet_type::refuse) return on_refuse(p);
  if (p.version != wire::protocol_version) return fail(errc::handshake_failed);
  switch (p.type) {
    case wire::packet_type::hello: return on_responder_hello(p);
    case wire::packet_type::cookie: return on_cookie(p);
    default: return fail(errc::handshake_failed);
  }
}

bool initiator_handshake::answers_us(const wire::packet_view& p) const {
  if (state_ != state::waiting) return false;
  if (p.type != wire::packet_type::hello) return true;
  hello_fields h;
  const bool ok = !hello_fields::decode(p.payload, h) &&
                  sodium_memcmp(h.cookie.data(), cookie_.data(), cookie_.size()) == 0 &&
                  identity::verify(h.identity, responder_signed(sent_hello_, p.payload), h.sig);
  // on_packet() will be handed this very hello next: it need not verify the signature again.
  if (ok) verified_answer_.assign(p.payload.begin(), p.payload.end());
  return ok;
}

initiator_handshake::step initiator_handshake::on_responder_hello(const wire::packet_view& p) {
  hello_fields h;
  if (auto ec = hello_fields::decode(p.payload, h)) return fail(ec);
  // The responder repeats our cookie field; its signature covers it too, but a mismatch is a
  // malformed hello rather than a forgery.
  if (sodium_memcmp(h.cookie.data(), cookie_.data(), cookie_.size()) != 0)
    return fail(errc::bad_field);
  const bool verified = verified_answer_.size() == p.payload.size() &&
                        std::equal(p.payload.begin(), p.payload.end(), verified_answer_.begin());
  if (!verified && !identity::verify(h.identity, responder_signed(sent_hello_, p.payload), h.sig))
    return fail(errc::bad_signature);
  if (expected_peer_ && h.identity != *expected_peer_) {
    const std::string text = "peer identity " + h.identity.short_hex() +
                             " is not the expected NodeId " + expected_peer_->short_hex();
    return fail(errc::unexpected_identity, make_refuse_packet(refuse_identity, text));
  }

  step s;
  // Both flags are signed (ours in the hello the responder's signature covers), so nobody in
  // between can make the two sides choose differently, or either side choose ChaCha20 alone.
  handshake_result result{h.identity, h.dynamic_ip, {},
                          aes_gcm_ && h.aes_gcm ? aead::aes256_gcm : aead::chacha20_poly1305};
  const int rc = crypto_kx_client_session_keys(result.keys.rx.data(), result.keys.tx.data(),
                                               eph_pk_.data(), eph_sk_.data(),
                                               h.ephemeral.data());
  if (rc != 0) return fail(errc::handshake_failed);
  wipe(eph_sk_);
  state_ = state::done;
  s.done = std::move(result);
  return s;
}

initiator_handshake::step initiator_handshake::on_cookie(const wire::packet_view& p) {
  if (p.payload.size() < cookie_.size()) return fail(errc::truncated);
  if (p.payload.size() > cookie_.size()) return fail(errc::bad_length);
  if (challenges_ >= max_challenges) return fail(errc::handshake_failed);
  ++challenges_;
  std::copy(p.payload.begin(), p.payload.end(), cookie_.begin());
  step s;
  s.reply = make_hello();
  return s;
}

initiator_handshake::step initiator_handshake::on_refuse(const wire::packet_view& p) {
  refusal r;
  if (decode_refuse(p.payload, r)) return fail(errc::handshake_failed);
  const boost::system::error_code ec = r.reason == refuse_version_mismatch
                                           ? make_error_code(errc::version_mismatch)
                                           : make_error_code(errc::handshake_failed);
  return fail(ec, {}, std::move(r.text));
}

// ---- responder ----

responder::responder(const identity& self, hello_options options, random_source random)
    : self_(&self),
      dynamic_ip_(options.dynamic_ip),
      aes_gcm_(options.offer_aes_gcm && aes256_gcm_available()),
      random_(std::move(random)) {
  ensure_sodium();
}

responder::response responder::on_hello(const wire::packet_view& hello, byte_span peer_address,
                                        std::uint64_t now_ms, bool under_load, cookie_jar& jar) {
  response out;
  if (hello.type != wire::packet_type::hello) {
    out.ec = errc::handshake_failed;
    return out;
  }
  // Version before length: another version may define another hello, and deserves a refuse.
  if (hello.version != wire::protocol_version) {
    out.ec = errc::version_mismatch;
    out.reply = make_refuse_packet(
        refuse_version_mismatch,
        "kadnet protocol version " + std::to_string(hello.version) +
            " is not supported; this node speaks " + std::to_string(wire::protocol_version) +
            " to " + std::to_string(wire::protocol_version));
    return out;
  }
  hello_fields h;
  if ((out.ec = hello_fields::decode(hello.payload, h))) return out;
  out.initiator_hello = h;

  // Under load the cookie comes before any public-key work, so a flood of hellos from spoofed
  // addresses costs one keyed BLAKE2b each and leaves no state behind.
  if (under_load && !jar.check(h.cookie, peer_address, now_ms)) {
    static constexpr cookie_jar::cookie none{};
    out.ec = h.cookie == none ? errc::cookie_required : errc::bad_cookie;
    const cookie_jar::cookie fresh = jar.make(peer_address, now_ms);
    wire::append_packet(out.reply, wire::packet_type::cookie, fresh);
    return out;
  }

  ++expensive_operations_;
  if (!identity::verify(h.identity, initiator_signed(hello.payload), h.sig)) {
    out.ec = errc::bad_signature;
    return out;
  }

  hello_fields own;
  std::array<std::uint8_t, 32> eph_sk;
  ++expensive_operations_;
  ephemeral_keypair(random_, own.ephemeral, eph_sk);
  // Bit 1 goes back only to an initiator that sent it: one that never sets it may take any
  // other value of the byte than 0 and 1 as malformed (as this protocol did before the bit).
  own.aes_gcm = aes_gcm_ && h.aes_gcm;
  handshake_result result{h.identity, h.dynamic_ip, {},
                          own.aes_gcm ? aead::aes256_gcm : aead::chacha20_poly1305};
  ++expensive_operations_;
  const int rc = crypto_kx_server_session_keys(result.keys.rx.data(), result.keys.tx.data(),
                                               own.ephemeral.data(), eph_sk.data(),
                                               h.ephemeral.data());
  wipe(eph_sk);
  if (rc != 0) {
    out.ec = errc::handshake_failed;
    return out;
  }

  own.identity = self_->id();
  own.dynamic_ip = dynamic_ip_;
  own.cookie = h.cookie;
  byte_vector payload = own.encode();
  ++expensive_operations_;
  own.sig = self_->sign(responder_signed(hello.payload, payload));
  std::copy(own.sig.begin(), own.sig.end(), payload.begin() + hello_fields::signed_size);
  out.reply = hello_packet(payload);
  out.done = std::move(result);
  return out;
}

}  // namespace kadnet::core::crypto
