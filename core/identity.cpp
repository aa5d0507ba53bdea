#include "kadnet/core/identity.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>

#include <sodium.h>

namespace kadnet::core {
namespace {
constexpr std::string_view key_file_tag = "kadnet-ed25519-seed-v1";
}

void ensure_sodium() {
  static const int result = sodium_init();
  if (result < 0) throw std::runtime_error("libsodium failed to initialise");
}

identity identity::generate() {
  ensure_sodium();
  std::array<std::uint8_t, 32> seed;
  randombytes_buf(seed.data(), seed.size());
  return from_seed(seed);
}

identity identity::from_seed(const std::array<std::uint8_t, 32>& seed) {
  ensure_sodium();
  identity out;
  out.seed_ = seed;
  node_id::bytes_type pk;
  crypto_sign_seed_keypair(pk.data(), out.secret_key_.data(), seed.data());
  out.id_ = node_id(pk);
  return out;
}

identity identity::load(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0)
    throw std::runtime_error("identity file " + file.string() + " cannot be read: " + std::strerror(errno));
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    throw std::runtime_error("identity file " + file.string() +
                             " is accessible by group or others; run chmod 600 on it");
  std::ifstream in(file);
  std::string tag, hex;
  in >> tag >> hex;
  byte_vector raw;
  if (tag != key_file_tag || !from_hex(hex, raw) || raw.size() != 32)
    throw std::runtime_error("identity file " + file.string() + " is not a kadnet key file");
  std::array<std::uint8_t, 32> seed;
  std::copy(raw.begin(), raw.end(), seed.begin());
  sodium_memzero(raw.data(), raw.size());
  return from_seed(seed);
}

identity identity::load_or_create(const std::filesystem::path& file) {
  if (std::filesystem::exists(file)) return load(file);
  identity fresh = generate();
  fresh.save(file);
  return fresh;
}

identity identity::in_data_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("data directory " + dir.string() + " cannot be made: " + ec.message());
  return load_or_create(dir / "identity.key");
}

void identity::save(const std::filesystem::path& file) const {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    throw std::runtime_error("cannot create identity file " + file.string() + ": " + std::strerror(errno));
  std::string line = std::string(key_file_tag) + " " + to_hex(seed_) + "\n";
  const ssize_t written = ::write(fd, line.data(), line.size());
  int error = written < 0 ? errno : written < static_cast<ssize_t>(line.size()) ? ENOSPC : 0;  // short: out of room
  if (!error && ::fsync(fd) != 0) error = errno;
  const bool ok = error == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write identity file " + file.string() + ": " + std::strerror(error));
}

signature identity::sign(byte_span message) const {
  signature sig;
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_key_.data());
  return sig;
}

bool identity::verify(const node_id& signer, byte_span message, const signature& sig) {
  ensure_sodium();
  return crypto_sign_verify_detached(sig.data(), message.data(), message.size(),
                                     signer.bytes().data()) == 0;
}

}  // namespace kadnet::core
