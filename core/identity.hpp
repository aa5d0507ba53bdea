#pragma once
// A node's long-term Ed25519 key pair. The public key is the node's NodeId.
//
// Key files hold one line "kadnet-ed25519-seed-v1 <64 hex digits of the 32-byte seed>". They are
// created with mode 0600; loading a file that group or others may read throws, naming the file,
// because a leaked seed is a stolen identity.
#include <array>
#include <cstdint>
#include <filesystem>
#include <span>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/node_id.hpp"

namespace kadnet::core {

inline constexpr std::size_t signature_size = 64;
using signature = std::array<std::uint8_t, signature_size>;

class identity {
 public:
  // A fresh random key pair.
  static identity generate();
  // The key pair derived from a 32-byte seed (deterministic; used for test vectors).
  static identity from_seed(const std::array<std::uint8_t, 32>& seed);
  // Loads a key file. Throws std::runtime_error naming the file if it is missing, malformed or
  // readable by group or others.
  static identity load(const std::filesystem::path& file);
  // Loads the file if it exists, else generates a key pair and saves it there.
  static identity load_or_create(const std::filesystem::path& file);
  // A node's identity kept in its data directory: makes `dir` if missing (throws
  // std::runtime_error naming it and why when that fails), then load_or_create(dir/identity.key).
  static identity in_data_dir(const std::filesystem::path& dir);
  // Writes the key file with mode 0600; refuses to overwrite an existing file. Throws on failure.
  void save(const std::filesystem::path& file) const;

  const node_id& id() const { return id_; }
  const std::array<std::uint8_t, 32>& seed() const { return seed_; }
  signature sign(byte_span message) const;
  // Checks an Ed25519 signature by the key `signer` over `message`.
  static bool verify(const node_id& signer, byte_span message, const signature& sig);

 private:
  identity() = default;
  std::array<std::uint8_t, 32> seed_{};
  std::array<std::uint8_t, 64> secret_key_{};  // libsodium form: seed || public key
  node_id id_;
};

// Calls sodium_init() once; every entry point that uses libsodium calls it first.
void ensure_sodium();

}  // namespace kadnet::core
