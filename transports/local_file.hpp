#pragma once
// The two local ends of a file transfer: a POSIX file read or written at explicit offsets, and
// the BLAKE2b-256 of its bytes, computed in slices that let the node's other work run between
// them. Failures are errno values in boost::system::system_category; nothing throws.
#include <filesystem>
#include <functional>
#include <memory>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <sodium.h>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/wire/file_transfer.hpp"

namespace kadnet::transports {

class local_file {
 public:
  local_file() = default;
  local_file(local_file&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  local_file& operator=(local_file&& other) noexcept;
  ~local_file();

  // A regular file to send (a symlink is followed, a directory or device refused: not_a_file; one
  // whose size is not known before it is read, like those of /proc and /sys: size_unknown).
  static local_file open_for_sending(const std::filesystem::path& path, boost::system::error_code& ec);
  // A partial file to receive into: created (mode 0644 less the umask) if missing, opened for
  // reading and writing if not; never through a symlink, and only a regular file.
  static local_file open_partial(const std::filesystem::path& path, boost::system::error_code& ec);

  bool is_open() const { return fd_ >= 0; }
  std::uint64_t size(boost::system::error_code& ec) const;
  // Reads up to out.size() bytes at `offset`; fewer only at the end of the file.
  std::size_t read_at(std::uint64_t offset, mutable_byte_span out, boost::system::error_code& ec) const;
  // Writes all of `bytes` at `offset`.
  void write_at(std::uint64_t offset, byte_span bytes, boost::system::error_code& ec);
  void truncate(std::uint64_t size, boost::system::error_code& ec);
  // Makes the data durable before the file is renamed into place.
  void sync(boost::system::error_code& ec);
  void close();

 private:
  explicit local_file(int fd) : fd_(fd) {}
  // Takes the descriptor an open() returned: fails (closing it) unless it is a regular file.
  static local_file regular_file(int fd, boost::system::error_code& ec);
  int fd_ = -1;
};

// BLAKE2b-256 of bytes given in pieces (libsodium crypto_generichash, no key). The state lives on
// the heap: it wants 64-byte alignment, which coroutine frames do not promise.
class blake2b_256 {
 public:
  static_assert(crypto_generichash_BYTES == std::tuple_size_v<core::wire::file_digest>);
  blake2b_256() : state_(new crypto_generichash_state) { reset(); }
  blake2b_256(const blake2b_256& other) : state_(new crypto_generichash_state(*other.state_)) {}
  blake2b_256& operator=(const blake2b_256& other) {
    *state_ = *other.state_;
    return *this;
  }
  void reset() { crypto_generichash_init(state_.get(), nullptr, 0, crypto_generichash_BYTES); }
  void update(byte_span bytes) { crypto_generichash_update(state_.get(), bytes.data(), bytes.size()); }
  // The digest of everything given so far; the hash must be reset before it is used again.
  core::wire::file_digest finish() {
    core::wire::file_digest out;
    crypto_generichash_final(state_.get(), out.data(), out.size());
    return out;
  }

 private:
  std::unique_ptr<crypto_generichash_state> state_;
};

// Feeds bytes [from, to) of `file` into `hash`, a slice (1 MiB) at a time, yielding to the
// coroutine's executor between slices and calling `on_slice` after each. A file shorter than
// `to` fails with file_errc::file_changed.
boost::asio::awaitable<boost::system::error_code> hash_file_range(const local_file& file, std::uint64_t from,
                                                                  std::uint64_t to, blake2b_256& hash,
                                                                  const std::function<void()>& on_slice);

}  // namespace kadnet::transports
