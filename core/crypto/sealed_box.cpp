#include "kadnet/core/crypto/sealed_box.hpp"

#include <array>

#include <sodium.h>

namespace kadnet::core::crypto {

static_assert(sealed_box_overhead == crypto_box_SEALBYTES);

std::optional<byte_vector> seal_to(const node_id& recipient, byte_span plaintext) {
  ensure_sodium();
  std::array<std::uint8_t, crypto_box_PUBLICKEYBYTES> x25519{};
  // Fails for the few 32-byte strings that are not points of the curve.
  if (crypto_sign_ed25519_pk_to_curve25519(x25519.data(), recipient.bytes().data()) != 0) return std::nullopt;
  byte_vector sealed(plaintext.size() + crypto_box_SEALBYTES);
  crypto_box_seal(sealed.data(), plaintext.data(), plaintext.size(), x25519.data());
  return sealed;
}

std::optional<byte_vector> open_sealed(const identity& self, byte_span sealed) {
  ensure_sodium();
  if (sealed.size() < crypto_box_SEALBYTES) return std::nullopt;
  // The identity keeps its seed; the X25519 secret is derived from it for this call and wiped.
  std::array<std::uint8_t, crypto_sign_PUBLICKEYBYTES> ed_public{};
  std::array<std::uint8_t, crypto_sign_SECRETKEYBYTES> ed_secret{};
  std::array<std::uint8_t, crypto_box_PUBLICKEYBYTES> x_public{};
  std::array<std::uint8_t, crypto_box_SECRETKEYBYTES> x_secret{};
  crypto_sign_seed_keypair(ed_public.data(), ed_secret.data(), self.seed().data());
  bool converted = crypto_sign_ed25519_pk_to_curve25519(x_public.data(), ed_public.data()) == 0 &&
                   crypto_sign_ed25519_sk_to_curve25519(x_secret.data(), ed_secret.data()) == 0;
  sodium_memzero(ed_secret.data(), ed_secret.size());
  std::optional<byte_vector> plain;
  if (converted) {
    plain.emplace(sealed.size() - crypto_box_SEALBYTES);
    if (crypto_box_seal_open(plain->data(), sealed.data(), sealed.size(), x_public.data(), x_secret.data()) != 0)
      plain.reset();
  }
  sodium_memzero(x_secret.data(), x_secret.size());
  return plain;
}

}  // namespace kadnet::core::crypto
