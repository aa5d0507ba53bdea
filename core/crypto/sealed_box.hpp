#pragma once
// WHISPER's end-to-end encryption (PROTOCOL.md 5.7): libsodium's sealed boxes (crypto_box_seal)
// to the X25519 form of a node's Ed25519 key. Anyone may seal to a NodeId; only the holder of
// its key pair can open. A sealed box is `sealed_box_overhead` bytes longer than its plaintext
// (an ephemeral public key and a MAC) and says nothing about who sealed it.
#include <optional>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/core/node_id.hpp"

namespace kadnet::core::crypto {

inline constexpr std::size_t sealed_box_overhead = 48;  // crypto_box_SEALBYTES

// Seals `plaintext` to `recipient`; nullopt when the id is not a valid Ed25519 public key (no
// node can hold it).
std::optional<byte_vector> seal_to(const node_id& recipient, byte_span plaintext);

// Opens a box sealed to `self`; nullopt when it was sealed to another key, altered or truncated.
std::optional<byte_vector> open_sealed(const identity& self, byte_span sealed);

}  // namespace kadnet::core::crypto
