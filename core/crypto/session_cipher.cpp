#include "core/crypto/session_cipher.hpp"

#include <stdexcept>

#include <sodium.h>

#include "core/errors.hpp"
#include "core/identity.hpp"

namespace kadnet::core::crypto {
namespace {

using nonce = std::array<std::uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES>;
static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == sizeof(key));
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == packet_sealer::tag_size);
static_assert(sizeof(nonce) == 4 + packet_sealer::counter_size);
// AES-256-GCM fits the same layout: same key, nonce and tag sizes.
static_assert(crypto_aead_aes256gcm_KEYBYTES == sizeof(key));
static_assert(crypto_aead_aes256gcm_ABYTES == packet_sealer::tag_size);
static_assert(crypto_aead_aes256gcm_NPUBBYTES == sizeof(nonce));

void put_u64(std::uint8_t* out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<std::uint8_t>(v);
}

std::uint64_t get_u64(const std::uint8_t* in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | in[i];
  return v;
}

// 4 zero bytes ‖ the counter as it travels (big-endian).
nonce make_nonce(const std::uint8_t* counter_bytes) {
  nonce n{};
  std::memcpy(n.data() + 4, counter_bytes, packet_sealer::counter_size);
  return n;
}

// Checked where a sealer or opener is made: libsodium's AES-256-GCM would execute AES-NI
// instructions the CPU lacks.
aead usable(aead cipher) {
  ensure_sodium();
  if (cipher == aead::aes256_gcm && !aes256_gcm_available())
    throw std::invalid_argument(
        "kadnet: AES-256-GCM needs AES-NI and PCLMUL, which this CPU lacks");
  return cipher;
}

}  // namespace

bool aes256_gcm_available() {
  ensure_sodium();  // sodium_init() is what detects the CPU's features
  return crypto_aead_aes256gcm_is_available() == 1;
}

void wipe(mutable_byte_span secret) { sodium_memzero(secret.data(), secret.size()); }

session_keys::~session_keys() {
  wipe(tx);
  wipe(rx);
}

// ---- packet_sealer ----

packet_sealer::packet_sealer(const key& tx, aead cipher) : key_(tx), cipher_(usable(cipher)) {}

packet_sealer::packet_sealer(packet_sealer&& other) noexcept
    : key_(other.key_), counter_(other.counter_), cipher_(other.cipher_) {
  // The moved-from sealer must never seal again with this key: that would repeat nonces.
  wipe(other.key_);
  other.counter_ = std::numeric_limits<std::uint64_t>::max();
}

packet_sealer& packet_sealer::operator=(packet_sealer&& other) noexcept {
  if (this != &other) {
    key_ = other.key_;
    counter_ = other.counter_;
    cipher_ = other.cipher_;
    wipe(other.key_);
    other.counter_ = std::numeric_limits<std::uint64_t>::max();
  }
  return *this;
}

packet_sealer::~packet_sealer() { wipe(key_); }

void packet_sealer::seal(wire::packet_type type, byte_span plaintext, byte_vector& out) {
  if (plaintext.size() > max_plaintext_for(wire::max_stream_payload))
    throw std::length_error("kadnet: plaintext too long for one sealed packet");
  if (exhausted()) throw std::logic_error("kadnet: packet counter exhausted; close the session");

  const std::size_t start = out.size();
  wire::append_packet_header(out, type, payload_overhead + plaintext.size());
  out.resize(start + overhead + plaintext.size());
  std::uint8_t* header = out.data() + start;
  std::uint8_t* counter = header + wire::packet_header_size;
  std::uint8_t* ciphertext = counter + counter_size;
  std::uint8_t* tag = ciphertext + plaintext.size();

  put_u64(counter, counter_++);
  const nonce n = make_nonce(counter);
  // The plain AES-GCM call expands the key on every packet; the precomputed (beforenm) state
  // would save that, but it is 512 bytes per direction and a node holds tens of thousands of
  // sessions.
  if (cipher_ == aead::aes256_gcm)
    crypto_aead_aes256gcm_encrypt_detached(ciphertext, tag, nullptr, plaintext.data(),
                                           plaintext.size(), header, wire::packet_header_size,
                                           nullptr, n.data(), key_.data());
  else
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(
        ciphertext, tag, nullptr, plaintext.data(), plaintext.size(), header,
        wire::packet_header_size, nullptr, n.data(), key_.data());
}

// ---- packet_opener ----

packet_opener::packet_opener(const key& rx, aead cipher) : key_(rx), cipher_(usable(cipher)) {}

packet_opener::packet_opener(packet_opener&& other) noexcept
    : key_(other.key_), window_(std::move(other.window_)), cipher_(other.cipher_) {
  wipe(other.key_);
}

packet_opener& packet_opener::operator=(packet_opener&& other) noexcept {
  if (this != &other) {
    key_ = other.key_;
    window_ = std::move(other.window_);
    cipher_ = other.cipher_;
    wipe(other.key_);
  }
  return *this;
}

packet_opener::~packet_opener() { wipe(key_); }

boost::system::error_code packet_opener::open(const wire::packet_view& p, byte_vector& plaintext) {
  if (p.payload.size() < packet_sealer::payload_overhead) {
    plaintext.clear();
    return errc::truncated;
  }
  plaintext.resize(p.payload.size() - packet_sealer::payload_overhead);
  std::size_t written = 0;
  auto ec = open_into(p, plaintext.data(), written);
  if (ec) plaintext.clear();
  return ec;
}

boost::system::error_code packet_opener::open(const wire::packet_view& p,
                                              mutable_byte_span plaintext, std::size_t& written) {
  written = 0;
  if (p.payload.size() < packet_sealer::payload_overhead) return errc::truncated;
  if (plaintext.size() < p.payload.size() - packet_sealer::payload_overhead)
    return errc::bad_length;
  return open_into(p, plaintext.data(), written);
}

boost::system::error_code packet_opener::open_into(const wire::packet_view& p,
                                                   std::uint8_t* plaintext, std::size_t& written) {
  const std::uint8_t* counter_bytes = p.payload.data();
  const std::uint8_t* ciphertext = counter_bytes + packet_sealer::counter_size;
  const std::size_t length = p.payload.size() - packet_sealer::payload_overhead;
  const std::uint8_t* tag = ciphertext + length;

  // The replay test is cheap and needs no key, so it runs first; the window itself only moves
  // after authentication.
  const std::uint64_t counter = get_u64(counter_bytes);
  if (!window_.check(counter)) return errc::replayed;

  // Rebuilt rather than taken from p.header so that a hand-made view cannot authenticate one
  // header and deliver another.
  if (p.payload.size() > wire::max_stream_payload) return errc::bad_length;
  const auto size = static_cast<std::uint16_t>(p.payload.size());
  const std::array<std::uint8_t, wire::packet_header_size> header{
      p.version, static_cast<std::uint8_t>(p.type), static_cast<std::uint8_t>(size >> 8),
      static_cast<std::uint8_t>(size)};

  const nonce n = make_nonce(counter_bytes);
  const int rc =
      cipher_ == aead::aes256_gcm
          ? crypto_aead_aes256gcm_decrypt_detached(plaintext, nullptr, ciphertext, length, tag,
                                                   header.data(), header.size(), n.data(),
                                                   key_.data())
          : crypto_aead_chacha20poly1305_ietf_decrypt_detached(plaintext, nullptr, ciphertext,
                                                               length, tag, header.data(),
                                                               header.size(), n.data(),
                                                               key_.data());
  if (rc != 0) return errc::decrypt_failed;
  window_.accept(counter);
  written = length;
  return {};
}

}  // namespace kadnet::core::crypto
