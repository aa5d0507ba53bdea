#include "kadnet/core/crypto/cookie_jar.hpp"

#include <sodium.h>

#include "kadnet/core/crypto/session_cipher.hpp"
#include "kadnet/core/identity.hpp"

namespace kadnet::core::crypto {

static_assert(crypto_generichash_KEYBYTES == sizeof(cookie_jar::cookie));

cookie_jar::cookie_jar(random_source random) : random_(std::move(random)) { ensure_sodium(); }

cookie_jar::~cookie_jar() {
  wipe(current_);
  wipe(previous_);
}

void cookie_jar::advance(std::uint64_t now_ms) {
  const std::uint64_t slot = now_ms / slot_ms;
  if (started_ && slot <= slot_) return;
  if (started_ && slot == slot_ + 1) {
    previous_ = current_;
    have_previous_ = true;
  } else {
    // First use, or a gap of two slots or more: no cookie of slot - 1 was ever issued.
    wipe(previous_);
    have_previous_ = false;
  }
  fill_random(random_, current_);
  slot_ = slot;
  started_ = true;
}

cookie_jar::cookie cookie_jar::compute(const cookie& secret, byte_span address,
                                       std::uint64_t slot) {
  std::array<std::uint8_t, 8> slot_bytes;
  for (int i = 7; i >= 0; --i, slot >>= 8) slot_bytes[i] = static_cast<std::uint8_t>(slot);
  crypto_generichash_state state;
  crypto_generichash_init(&state, secret.data(), secret.size(), sizeof(cookie));
  crypto_generichash_update(&state, address.data(), address.size());
  crypto_generichash_update(&state, slot_bytes.data(), slot_bytes.size());
  cookie out;
  crypto_generichash_final(&state, out.data(), out.size());
  sodium_memzero(&state, sizeof state);
  return out;
}

cookie_jar::cookie cookie_jar::make(byte_span address, std::uint64_t now_ms) {
  advance(now_ms);
  return compute(current_, address, slot_);
}

bool cookie_jar::check(const cookie& c, byte_span address, std::uint64_t now_ms) {
  advance(now_ms);
  static constexpr cookie none{};
  if (sodium_memcmp(c.data(), none.data(), c.size()) == 0) return false;
  const cookie now_cookie = compute(current_, address, slot_);
  if (sodium_memcmp(c.data(), now_cookie.data(), c.size()) == 0) return true;
  if (!have_previous_) return false;
  const cookie prev_cookie = compute(previous_, address, slot_ - 1);
  return sodium_memcmp(c.data(), prev_cookie.data(), c.size()) == 0;
}

}  // namespace kadnet::core::crypto
