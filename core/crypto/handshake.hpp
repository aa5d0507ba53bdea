#pragma once
// The kadnet handshake (docs/PROTOCOL.md 3.1-3.3 and 3.5), sans-I/O: packets in, packets out.
//
// Flow, with the initiator being the side that dialed:
//
//   initiator_handshake h(self, options, expected_peer);
//   send(h.first_packet());
//   for each packet received:        auto s = h.on_packet(p);
//     if (!s.reply.empty())          send(s.reply);          // a re-sent hello, or a refuse
//     if (s.done)                    use s.done->keys and s.done->cipher;  // start sealing
//     else if (s.ec)                 close (s.refusal_text says why when the peer refused)
//
//   responder r(self, options);      cookie_jar jar;         // one of each per node
//   for each hello received:         auto x = r.on_hello(p, address, now_ms, under_load, jar);
//     if (!x.reply.empty())          send(x.reply);          // responder hello, cookie or refuse
//     if (x.done)                    session established
//     else                           close (after sending any reply); x.ec says why
//
// The responder keeps no state between hellos: a cookie challenge costs it one BLAKE2b call,
// and the initiator answers it on the same connection with a new hello. Neither class reads a
// clock or a socket; randomness comes from the injected random_source (libsodium by default).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/crypto/cookie_jar.hpp"
#include "kadnet/core/crypto/random_source.hpp"
#include "kadnet/core/crypto/session_cipher.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/core/node_id.hpp"
#include "kadnet/core/wire/packet.hpp"

namespace kadnet::core::crypto {

// Domain-separation prefixes of the two hello signatures.
inline constexpr std::string_view initiator_signature_context = "kadnet-hello-1-i";
inline constexpr std::string_view responder_signature_context = "kadnet-hello-1-r";

// The bits of the hello's flags byte (PROTOCOL.md 3.1); any other bit set is malformed.
inline constexpr std::uint8_t hello_flag_dynamic_ip = 0x01;
inline constexpr std::uint8_t hello_flag_aes_gcm = 0x02;  // "I seal with AES-256-GCM too"

// The 161-byte hello payload: ephemeral X25519 key (32) | NodeId (32) | flags (1) |
// cookie (32) | signature (64).
struct hello_fields {
  static constexpr std::size_t size = 161;
  static constexpr std::size_t signed_size = 97;  // everything but the signature

  std::array<std::uint8_t, 32> ephemeral{};
  node_id identity;
  bool dynamic_ip = false;  // flags bit 0
  bool aes_gcm = false;     // flags bit 1
  cookie_jar::cookie cookie{};
  signature sig{};

  // Appends the 161 bytes to `out`.
  void encode(byte_vector& out) const;
  byte_vector encode() const;
  // Errors: truncated (fewer than 161 bytes), bad_length (more), bad_field (a flag bit other
  // than bits 0 and 1 set). `out` is written only on success. The signature is not checked here.
  static boost::system::error_code decode(byte_span payload, hello_fields& out);
};

// What a node says about itself in its hellos.
struct hello_options {
  // Our address may change (flags bit 0).
  bool dynamic_ip = false;
  // Offer AES-256-GCM for the session (flags bit 1). The bit is sent only where
  // aes256_gcm_available(), and by a responder only to an initiator that sent it too.
  bool offer_aes_gcm = false;
};

// A finished handshake: who the peer is, the session keys (tx seals, rx opens) and the AEAD to
// seal and open with: AES-256-GCM exactly when both hellos carry flags bit 1.
struct handshake_result {
  node_id peer;
  bool peer_dynamic_ip = false;
  session_keys keys;
  aead cipher = aead::chacha20_poly1305;
};

// refuse (type 9): reason | lowest version | highest version | text length | text.
inline constexpr std::uint8_t refuse_version_mismatch = 1;
inline constexpr std::uint8_t refuse_overloaded = 2;
inline constexpr std::uint8_t refuse_identity = 3;

struct refusal {
  std::uint8_t reason = 0;
  std::uint8_t lowest_version = 0;
  std::uint8_t highest_version = 0;
  std::string text;
};

// A whole refuse packet under this node's version, advertising protocol_version..protocol_version.
// `text` is cut to 255 bytes, at a UTF-8 character boundary.
byte_vector make_refuse_packet(std::uint8_t reason, std::string_view text);
// Decodes a refuse payload. Errors: truncated, bad_length (bytes after the text). Unknown reasons
// are returned as they are.
boost::system::error_code decode_refuse(byte_span payload, refusal& out);

// The dialing side. Single use: create one per connection attempt.
class initiator_handshake {
 public:
  struct step {
    boost::system::error_code ec;  // set when the handshake failed; it is then over
    byte_vector reply;             // a whole packet to send (re-sent hello, or a refuse)
    std::optional<handshake_result> done;
    std::string refusal_text;      // the peer's refuse text, when it refused us
  };
  static constexpr int max_challenges = 2;

  // `self` must outlive the handshake. With `expected_peer` set, a responder with another key
  // fails the handshake with unexpected_identity (and a refuse of reason 3 to send).
  initiator_handshake(const identity& self, hello_options options,
                      std::optional<node_id> expected_peer = std::nullopt,
                      random_source random = {});
  initiator_handshake(const initiator_handshake&) = delete;
  initiator_handshake& operator=(const initiator_handshake&) = delete;
  ~initiator_handshake();

  // The hello to send first (a whole outer packet, cookie field zero). Call once, before
  // on_packet.
  byte_vector first_packet();

  // Feeds one packet from the responder:
  //  * responder hello: checks it (truncated, bad_length, bad_field, bad_signature,
  //    unexpected_identity, handshake_failed for a low-order key) and on success returns `done`;
  //  * cookie: returns the hello again with that cookie in `reply` (at most max_challenges
  //    times, then handshake_failed);
  //  * refuse: ec = version_mismatch (reason 1) or handshake_failed, with the peer's text;
  //  * anything else, or anything after the handshake ended: handshake_failed.
  // Every error ends the handshake.
  step on_packet(const wire::packet_view& p);
  // Whether on_packet would take `p` as the responder's answer (a hello whose signature covers
  // our hello, a cookie or a refuse), checked without changing any state. On a datagram path a
  // hello from the dialed address may instead be that node dialing us at the same moment.
  bool answers_us(const wire::packet_view& p) const;

  bool finished() const { return state_ == state::done || state_ == state::failed; }
  int challenges() const { return challenges_; }

 private:
  enum class state { idle, waiting, done, failed };
  byte_vector make_hello();
  step fail(boost::system::error_code ec, byte_vector reply = {}, std::string text = {});
  step on_responder_hello(const wire::packet_view& p);
  step on_cookie(const wire::packet_view& p);
  step on_refuse(const wire::packet_view& p);

  const identity* self_;
  bool dynamic_ip_;
  bool aes_gcm_;  // what our hello says: offered, and this CPU has it
  std::optional<node_id> expected_peer_;
  std::array<std::uint8_t, 32> eph_pk_{};
  std::array<std::uint8_t, 32> eph_sk_{};
  cookie_jar::cookie cookie_{};
  std::array<std::uint8_t, hello_fields::size> sent_hello_{};  // what the responder signs over
  int challenges_ = 0;
  state state_ = state::idle;
  mutable byte_vector verified_answer_;  // a hello answers_us() already checked
};

// The listening side: one per node, no state per hello (the cookie_jar is the node's).
class responder {
 public:
  struct response {
    boost::system::error_code ec;  // why no session was made (cookie_required/bad_cookie come
                                   // with a challenge in `reply`, version_mismatch with a refuse)
    byte_vector reply;             // a whole packet to send, possibly alongside an error
    std::optional<handshake_result> done;
    std::optional<hello_fields> initiator_hello;  // set once the hello decoded
  };

  // `self` must outlive the responder.
  responder(const identity& self, hello_options options, random_source random = {});

  // Handles one hello from `peer_address` (16-byte address ‖ 2-byte port) at `now_ms`. Checks in
  // order, cheapest first: type (handshake_failed), version (refuse reason 1, version_mismatch),
  // hello length and flags byte (truncated, bad_length, bad_field; no reply); when
  // `under_load`, the cookie (a challenge in `reply`: cookie_required for a zero cookie,
  // bad_cookie for a wrong or expired one) before any public-key work; then the initiator's
  // signature (bad_signature) and the key exchange (handshake_failed on a low-order key).
  response on_hello(const wire::packet_view& hello, byte_span peer_address, std::uint64_t now_ms,
                    bool under_load, cookie_jar& jar);

  // Public-key operations done so far (Ed25519 verify and sign, X25519 key generation and key
  // exchange count one each): a cookie challenge must leave this unchanged.
  std::uint64_t expensive_operations() const { return expensive_operations_; }

 private:
  const identity* self_;
  bool dynamic_ip_;
  bool aes_gcm_;  // offered, and this CPU has it: answer an initiator's bit 1 with ours
  random_source random_;
  std::uint64_t expensive_operations_ = 0;
};

}  // namespace kadnet::core::crypto
