#pragma once
// Sealing and opening of the packets of an established session (docs/PROTOCOL.md 3.4).
//
// A sealed packet is an outer packet whose payload is  counter (u64) ‖ ciphertext ‖ tag,  made
// with the session's AEAD (ChaCha20-Poly1305 IETF, or AES-256-GCM when both hellos chose it) under
// the sender's tx key; the nonce is 4 zero bytes ‖ counter and the associated data is the 4-byte
// outer header, so version, type and length are authenticated. Both AEADs take a 32-byte key and
// a 12-byte nonce and make a 16-byte tag, so the layout is the same.
//
// The key changes every 2^23 packets, by counter alone (key epochs, PROTOCOL.md 3.4): counter c
// is sealed under K_{c >> 23}, where K_0 is the direction's crypto_kx key and
// K_{e+1} = crypto_kdf_derive_from_key(32, e + 1, "kadnetep", K_e). This keeps AES-256-GCM under
// its limit of 2^23 packets per key (RFC 9001 6.6); both AEADs follow the same rule. Each key
// comes from the previous one, so a side that moved on forgets the old key.
//
// packet_sealer owns the send direction (its counter starts at 0 and never repeats; it holds
// only the current epoch's key). packet_opener owns the receive direction (authentication, then
// the replay window); it holds the current epoch's key and, for a little while after moving to
// a new epoch, the previous one. Both are move-only: a copied sealer would reuse nonces. Neither
// allocates except to grow the caller's output vector, and the opener once for its replay
// bitmap if the path loses or reorders more than a little, and for 32 bytes from each epoch
// change until the old epoch is out of the replay window. Not thread-safe; one sealer and one
// opener per session. Keys are wiped (sodium_memzero) when replaced or destroyed.
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/crypto/replay_window.hpp"
#include "kadnet/core/wire/packet.hpp"

namespace kadnet::core::crypto {

using key = std::array<std::uint8_t, 32>;

// The two directions of a session as crypto_kx derives them. The initiator's tx is the
// responder's rx and vice versa. Both keys are wiped when the object is destroyed.
struct session_keys {
  key tx{};
  key rx{};
  ~session_keys();
};

// Wipes a key (or any secret array) with sodium_memzero, which the optimiser may not drop.
void wipe(mutable_byte_span secret);

// The AEAD a session seals with (PROTOCOL.md 3.4); the two hellos choose it (3.1).
enum class aead : std::uint8_t { chacha20_poly1305, aes256_gcm };

// Whether this machine can seal with AES-256-GCM: libsodium's implementation needs the AES-NI
// and PCLMUL instructions, and has no software fallback.
bool aes256_gcm_available();

// Packets per key epoch is 2^epoch_bits; the packet with counter c is sealed under the key of
// epoch epoch_of(c).
inline constexpr unsigned epoch_bits = 23;
constexpr std::uint64_t epoch_of(std::uint64_t counter) { return counter >> epoch_bits; }
constexpr std::uint64_t epoch_start(std::uint64_t epoch) { return epoch << epoch_bits; }

class packet_sealer {
 public:
  static constexpr std::size_t counter_size = 8;
  static constexpr std::size_t tag_size = 16;
  // Bytes a sealed packet adds to its plaintext in the outer payload (counter and tag)...
  static constexpr std::size_t payload_overhead = counter_size + tag_size;
  // ...and on the wire, header included.
  static constexpr std::size_t overhead = wire::packet_header_size + payload_overhead;

  // The largest plaintext whose sealed packet has an outer payload of at most
  // `max_packet_payload` bytes (which is itself capped at 65,535). For a UDP datagram pass
  // wire::max_datagram_size - wire::packet_header_size. 0 when nothing fits.
  static constexpr std::size_t max_plaintext_for(std::size_t max_packet_payload) {
    const std::size_t payload = max_packet_payload < wire::max_stream_payload
                                    ? max_packet_payload
                                    : wire::max_stream_payload;
    return payload > payload_overhead ? payload - payload_overhead : 0;
  }

  // Throws std::invalid_argument for aead::aes256_gcm where !aes256_gcm_available().
  packet_sealer(const key& tx, aead cipher);
  // For tests only: a sealer whose next packet carries `next_counter`, holding that counter's
  // epoch key, derived from `tx` (the epoch-0 key) one epoch at a time.
  static packet_sealer for_testing_at(const key& tx, aead cipher, std::uint64_t next_counter);
  packet_sealer(packet_sealer&& other) noexcept;
  packet_sealer& operator=(packet_sealer&& other) noexcept;
  packet_sealer(const packet_sealer&) = delete;
  packet_sealer& operator=(const packet_sealer&) = delete;
  ~packet_sealer();

  // Appends one whole outer packet (header, counter, ciphertext, tag) of `type` to `out`,
  // encrypting straight into `out`. `plaintext` must not point into `out`.
  // Misuse throws: std::length_error when plaintext is longer than max_plaintext_for(65,535),
  // std::logic_error when the counter is exhausted (the session must then be closed).
  // After the last packet of an epoch it derives the next epoch's key and wipes the old one.
  void seal(wire::packet_type type, byte_span plaintext, byte_vector& out);

  // The counter the next packet will carry.
  std::uint64_t next_counter() const { return counter_; }
  // True once 2^64 - 1 packets were sealed (never in practice) or after being moved from.
  bool exhausted() const { return counter_ == std::numeric_limits<std::uint64_t>::max(); }
  aead cipher() const { return cipher_; }

 private:
  key key_;  // the key of epoch_of(counter_)
  std::uint64_t counter_ = 0;
  aead cipher_;
};

class packet_opener {
 public:
  // Throws std::invalid_argument for aead::aes256_gcm where !aes256_gcm_available().
  packet_opener(const key& rx, aead cipher);
  // For tests only: an opener in the state of one that has just accepted the packet with
  // `counter`: it holds that counter's epoch key, derived from `rx` (the epoch-0 key) one epoch
  // at a time, and no previous key.
  static packet_opener for_testing_after(const key& rx, aead cipher, std::uint64_t counter);
  packet_opener(packet_opener&& other) noexcept;
  packet_opener& operator=(packet_opener&& other) noexcept;
  packet_opener(const packet_opener&) = delete;
  packet_opener& operator=(const packet_opener&) = delete;
  ~packet_opener();

  // Authenticates and decrypts a sealed packet into `plaintext` (resized to fit; cleared on
  // failure). The associated data is rebuilt from p.version, p.type and p.payload.size(), which
  // is what the header held if `p` came from wire::parse_packet or stream_packet_reader.
  // Errors: truncated (payload shorter than counter + tag), replayed (counter seen before or
  // more than 2,048 below the highest accepted), decrypt_failed (altered, forged, or sealed
  // under another key or with the other AEAD, or from an epoch whose key the opener does not
  // hold). Only a packet that authenticates moves the replay window or the epoch.
  //
  // Epochs: the opener holds the key of the current epoch e (that of the highest accepted
  // counter; 0 at first). A packet of epoch e + 1 is tried under K_{e+1} derived into a
  // temporary, and only if it authenticates does the opener move to e + 1, keeping K_e in a
  // 32-byte heap slot for late packets of epoch e. That slot is wiped and freed once the
  // highest accepted counter is 2,048 or more past the new epoch's first counter, since the
  // replay window then refuses every counter of epoch e. Packets of any other epoch fail as
  // decrypt_failed (or as replayed when the window refuses them first).
  boost::system::error_code open(const wire::packet_view& p, byte_vector& plaintext);
  // The same into a caller's buffer, which must hold at least
  // p.payload.size() - payload_overhead bytes (else bad_length); `written` gets the length.
  boost::system::error_code open(const wire::packet_view& p, mutable_byte_span plaintext,
                                 std::size_t& written);

  const replay_window& window() const { return window_; }
  aead cipher() const { return cipher_; }
  // The epoch whose key the opener holds: that of the highest accepted counter, 0 before any.
  std::uint64_t epoch() const { return window_.any_accepted() ? epoch_of(window_.highest()) : 0; }
  // Whether the previous epoch's key is still held.
  bool holds_previous_key() const { return previous_ != nullptr; }
  // Heap bytes held: the replay bitmap and the previous epoch's key, when present.
  std::size_t heap_bytes() const {
    return window_.heap_bytes() + (previous_ ? sizeof(key) : 0);
  }

 private:
  // Deletes a heap key after wiping it.
  struct wiping_delete {
    void operator()(key* k) const noexcept;
  };

  boost::system::error_code open_into(const wire::packet_view& p, std::uint8_t* plaintext,
                                      std::size_t& written);
  // Wipes and frees the previous epoch's key once the window refuses all of that epoch.
  void forget_previous_if_out_of_window();

  key key_;  // the key of epoch()
  // A session holds one opener and there are tens of thousands of sessions, so the layout is
  // kept tight: [[no_unique_address]] lets cipher_ sit in window_'s tail padding (GCC and
  // Clang), and an opener that never changes epoch pays only the empty previous_ pointer.
  // SessionCipherAeads.SealerAndOpenerStaySmall checks the size.
  [[no_unique_address]] replay_window window_;
  aead cipher_;
  std::unique_ptr<key, wiping_delete> previous_;  // K_{epoch() - 1}, while the window allows it
};

}  // namespace kadnet::core::crypto
