#include "kadnet/transports/local_file.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "kadnet/transports/file_transfer_error.hpp"

namespace kadnet::transports {
namespace {

using boost::system::error_code;

error_code last_error() { return {errno, boost::system::system_category()}; }

}  // namespace

local_file& local_file::operator=(local_file&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

local_file::~local_file() { close(); }

void local_file::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

local_file local_file::regular_file(int fd, error_code& ec) {
  if (fd < 0) {
    ec = last_error();
    return {};
  }
  local_file f(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) ec = last_error();
  else if (!S_ISREG(st.st_mode)) ec = file_errc::not_a_file;
  else ec = {};
  if (ec) f.close();
  return f;
}

local_file local_file::open_for_sending(const std::filesystem::path& path, error_code& ec) {
  local_file f = regular_file(::open(path.c_str(), O_RDONLY | O_CLOEXEC), ec);
  if (ec) return f;
  // Files under /proc say they hold 0 bytes, and those under /sys 4,096, and then read as
  // something else: the offer would promise the wrong size. Any other file that says it is
  // empty and is not is refused too.
  struct statfs fs {};
  std::uint8_t probe;
  if (::fstatfs(f.fd_, &fs) == 0 && (fs.f_type == PROC_SUPER_MAGIC || fs.f_type == SYSFS_MAGIC))
    ec = file_errc::size_unknown;
  else if (f.size(ec) == 0 && !ec && ::pread(f.fd_, &probe, 1, 0) > 0)
    ec = file_errc::size_unknown;
  if (ec) f.close();
  return f;
}

local_file local_file::open_partial(const std::filesystem::path& path, error_code& ec) {
  // O_NOFOLLOW: a symlink planted under the partial name must not redirect the write elsewhere.
  return regular_file(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644), ec);
}

std::uint64_t local_file::size(error_code& ec) const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    ec = last_error();
    return 0;
  }
  ec = {};
  return static_cast<std::uint64_t>(st.st_size);
}

std::size_t local_file::read_at(std::uint64_t offset, mutable_byte_span out, error_code& ec) const {
  std::size_t done = 0;
  ec = {};
  while (done < out.size()) {
    ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      ec = last_error();
      break;
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

void local_file::write_at(std::uint64_t offset, byte_span bytes, error_code& ec) {
  std::size_t done = 0;
  ec = {};
  while (done < bytes.size()) {
    ssize_t n = ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      ec = last_error();
      return;
    }
    done += static_cast<std::size_t>(n);
  }
}

void local_file::truncate(std::uint64_t size, error_code& ec) {
  ec = ::ftruncate(fd_, static_cast<off_t>(size)) == 0 ? error_code{} : last_error();
}

void local_file::sync(error_code& ec) { ec = ::fsync(fd_) == 0 ? error_code{} : last_error(); }

boost::asio::awaitable<error_code> hash_file_range(const local_file& file, std::uint64_t from, std::uint64_t to,
                                                   blake2b_256& hash, const std::function<void()>& on_slice) {
  constexpr std::size_t slice = 1 << 20;
  byte_vector buffer(static_cast<std::size_t>(std::min<std::uint64_t>(slice, to - from)));
  auto ex = co_await boost::asio::this_coro::executor;
  while (from < to) {
    auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), to - from));
    error_code ec;
    std::size_t n = file.read_at(from, mutable_byte_span(buffer.data(), want), ec);
    if (ec) co_return ec;
    if (n < want) co_return make_error_code(file_errc::file_changed);
    hash.update(byte_span(buffer.data(), n));
    from += n;
    if (on_slice) on_slice();
    // Let the node serve its peers between slices of a large file.
    if (from < to) co_await boost::asio::post(ex, boost::asio::use_awaitable);
  }
  co_return error_code{};
}

}  // namespace kadnet::transports
