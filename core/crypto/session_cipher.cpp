#include "kadnet/core/crypto/session_cipher.hpp"

#include <stdexcept>

#include <sodium.h>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/identity.hpp"

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

// K_{epoch} from K_{epoch - 1} (PROTOCOL.md 3.4), in place; the old key is overwritten and the
// temporary wiped.
constexpr char epoch_kdf_context[crypto_kdf_CONTEXTBYTES + 1] = "kadnetep";
static_assert(crypto_kdf_KEYBYTES == sizeof(key));

void ratchet(key& k, std::uint64_t epoch) {
  key next;
  crypto_kdf_derive_from_key(next.data(), next.size(), epoch, epoch_kdf_context, k.data());
  k = next;
  wipe(next);
}

// The key of `epoch`, derived from the epoch-0 key one step at a time.
key key_of_epoch(const key& k0, std::uint64_t epoch) {
  key k = k0;
  for (std::uint64_t e = 1; e <= epoch; ++e) ratchet(k, e);
  return k;
}

bool decrypt(aead cipher, const key& k, std::uint8_t* plaintext, const std::uint8_t* ciphertext,
             std::size_t length, const std::uint8_t* tag, const std::uint8_t* ad,
             std::size_t ad_size, const nonce& n) {
  const int rc =
      cipher == aead::aes256_gcm
          ? crypto_aead_aes256gcm_decrypt_detached(plaintext, nullptr, ciphertext, length, tag, ad,
                                                   ad_size, n.data(), k.data())
          : crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                plaintext, nullptr, ciphertext, length, tag, ad, ad_size, n.data(), k.data());
  return rc == 0;
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

packet_sealer packet_sealer::for_testing_at(const key& tx, aead cipher,
                                            std::uint64_t next_counter) {
  key k = key_of_epoch(tx, epoch_of(next_counter));
  packet_sealer s(k, cipher);
  wipe(k);
  s.counter_ = next_counter;
  return s;
}

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

  // That was the epoch's last packet: move to the next key now, so that the old one is gone
  // as early as possible. (counter_ reaches the maximum only mid-epoch, as exhausted.)
  if (counter_ % (std::uint64_t{1} << epoch_bits) == 0) ratchet(key_, epoch_of(counter_));
}

// ---- packet_opener ----

void packet_opener::wiping_delete::operator()(key* k) const noexcept {
  wipe(*k);
  delete k;
}

packet_opener::packet_opener(const key& rx, aead cipher) : key_(rx), cipher_(usable(cipher)) {}

packet_opener packet_opener::for_testing_after(const key& rx, aead cipher,
                                               std::uint64_t counter) {
  key k = key_of_epoch(rx, epoch_of(counter));
  packet_opener o(k, cipher);
  wipe(k);
  o.window_.accept(counter);
  return o;
}

packet_opener::packet_opener(packet_opener&& other) noexcept
    : key_(other.key_),
      window_(std::move(other.window_)),
      cipher_(other.cipher_),
      previous_(std::move(other.previous_)) {
  wipe(other.key_);
}

packet_opener& packet_opener::operator=(packet_opener&& other) noexcept {
  if (this != &other) {
    key_ = other.key_;
    window_ = std::move(other.window_);
    cipher_ = other.cipher_;
    previous_ = std::move(other.previous_);  // wipes the key this opener held there
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
  // The key of the packet's epoch: the current one, the next one derived into a temporary (a
  // forged counter must not move the opener), or the previous one while it is kept.
  const std::uint64_t current = epoch();
  const std::uint64_t packet_epoch = epoch_of(counter);
  const bool next_epoch = packet_epoch == current + 1;
  key next;
  const key* k = nullptr;
  if (packet_epoch == current) {
    k = &key_;
  } else if (next_epoch) {
    next = key_;
    ratchet(next, packet_epoch);
    k = &next;
  } else if (packet_epoch + 1 == current && previous_) {
    k = previous_.get();
  } else {
    return errc::decrypt_failed;  // an epoch whose key this opener does not hold
  }
  const bool opened =
      decrypt(cipher_, *k, plaintext, ciphertext, length, tag, header.data(), header.size(), n);
  if (next_epoch && opened) {
    // Keep K_e only if the window can still accept some of epoch e, i.e. unless this first
    // packet of e + 1 already lies 2,048 or more past the epoch's start.
    if (counter - epoch_start(packet_epoch) < replay_window::window_size) {
      if (!previous_) previous_.reset(new key);
      *previous_ = key_;
    } else {
      previous_.reset();
    }
    key_ = next;
  }
  if (next_epoch) wipe(next);
  if (!opened) return errc::decrypt_failed;
  window_.accept(counter);
  if (previous_) forget_previous_if_out_of_window();
  written = length;
  return {};
}

void packet_opener::forget_previous_if_out_of_window() {
  // Every counter of the previous epoch is below epoch_start(epoch()); the window refuses them
  // all once its highest is window_size past that start.
  if (window_.highest() - epoch_start(epoch()) >= replay_window::window_size) previous_.reset();
}

}  // namespace kadnet::core::crypto
