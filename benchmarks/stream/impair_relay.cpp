#include "benchmarks/stream/impair_relay.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <deque>
#include <random>
#include <vector>

#include "benchmarks/stream/socket_util.hpp"

namespace kadnet::bench {
namespace {
using clock_type = std::chrono::steady_clock;
constexpr std::size_t batch = 64;
constexpr std::size_t max_datagram = 2048;
constexpr int socket_buffer_bytes = 4 << 20;  // as transports::udp_port asks

int bound_socket() {
  int fd = bound_loopback_socket(SOCK_DGRAM | SOCK_NONBLOCK);
  set_buffers(fd, socket_buffer_bytes);
  return fd;
}

// One direction: its random source and the datagrams held back (one constant delay, so they
// are due in arrival order).
struct direction {
  std::mt19937_64 rng;
  struct held_datagram {
    clock_type::time_point due;
    std::vector<std::uint8_t> bytes;
  };
  std::deque<held_datagram> held;
};
using datagram_ref = std::pair<const std::uint8_t*, std::size_t>;
}  // namespace

impair_relay::impair_relay(const sockaddr_in& server, const impairment& path) : path_(path), server_(server) {
  client_side_ = bound_socket();
  try {
    server_side_ = bound_socket();
  } catch (...) {
    ::close(client_side_);
    throw;
  }
  client_port_ = local_port(client_side_);
}

impair_relay::~impair_relay() {
  stop();
  ::close(client_side_);
  ::close(server_side_);
}

void impair_relay::start() {
  thread_ = std::thread([this] { run(); });
}

void impair_relay::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void impair_relay::run() {
  direction dirs[2];
  dirs[0].rng.seed(path_.seed);
  dirs[1].rng.seed(path_.seed + 1);
  const int in_fd[2] = {client_side_, server_side_};
  const int out_fd[2] = {server_side_, client_side_};
  sockaddr_in client{};
  bool have_client = false;

  std::vector<std::array<std::uint8_t, max_datagram>> buffers(batch);
  std::array<mmsghdr, batch> msgs{};
  std::array<iovec, batch> iov{};
  std::array<sockaddr_in, batch> from{};

  // The same draws as transports::udp_port::send_impaired: loss first, then reordering.
  auto chance = [](std::mt19937_64& rng, double p) {
    return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < p;
  };
  // Sends datagrams one way in batches (dropping, and counting, what the kernel does not take).
  auto flush = [&](int d, const std::vector<datagram_ref>& datagrams) {
    if (datagrams.empty() || (d == 1 && !have_client)) return;
    const sockaddr_in* to = d == 0 ? &server_ : &client;
    std::array<mmsghdr, batch> out{};
    std::array<iovec, batch> out_iov{};
    for (std::size_t sent = 0; sent < datagrams.size();) {
      std::size_t n = std::min(batch, datagrams.size() - sent);
      for (std::size_t i = 0; i < n; ++i) {
        const auto& [bytes, size] = datagrams[sent + i];
        out_iov[i] = {const_cast<std::uint8_t*>(bytes), size};
        out[i].msg_hdr = msghdr{};
        out[i].msg_hdr.msg_iov = &out_iov[i];
        out[i].msg_hdr.msg_iovlen = 1;
        out[i].msg_hdr.msg_name = const_cast<sockaddr_in*>(to);
        out[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
      }
      std::size_t done = 0;
      while (done < n) {
        int k = ::sendmmsg(out_fd[d], out.data() + done, static_cast<unsigned>(n - done), MSG_DONTWAIT);
        if (k <= 0) break;
        done += static_cast<std::size_t>(k);
      }
      counters_[d].out += done;
      counters_[d].send_drops += n - done;
      sent += n;
    }
  };

  std::vector<datagram_ref> now_list, due;
  now_list.reserve(batch);
  while (!stopping_.load(std::memory_order_relaxed)) {
    // Release what is due, then wait for datagrams until the next release (at most 5 ms, so
    // that stop() is seen).
    auto now = clock_type::now();
    std::chrono::nanoseconds wait = std::chrono::milliseconds(5);
    for (int d = 0; d < 2; ++d) {
      due.clear();
      for (auto& h : dirs[d].held) {
        if (h.due > now) break;
        due.emplace_back(h.bytes.data(), h.bytes.size());
      }
      flush(d, due);
      dirs[d].held.erase(dirs[d].held.begin(), dirs[d].held.begin() + static_cast<std::ptrdiff_t>(due.size()));
      if (!dirs[d].held.empty()) wait = std::min<std::chrono::nanoseconds>(wait, dirs[d].held.front().due - now);
    }
    pollfd fds[2] = {{client_side_, POLLIN, 0}, {server_side_, POLLIN, 0}};
    timespec timeout{0, static_cast<long>(std::max<std::int64_t>(wait.count(), 0))};
    if (::ppoll(fds, 2, &timeout, nullptr) < 0 && errno != EINTR) break;
    for (int d = 0; d < 2; ++d) {
      if (!(fds[d].revents & POLLIN)) continue;
      for (int round = 0; round < 8; ++round) {  // a few batches per wake-up
        for (std::size_t i = 0; i < batch; ++i) {
          iov[i] = {buffers[i].data(), buffers[i].size()};
          msgs[i].msg_hdr = msghdr{};
          msgs[i].msg_hdr.msg_iov = &iov[i];
          msgs[i].msg_hdr.msg_iovlen = 1;
          msgs[i].msg_hdr.msg_name = &from[i];
          msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
        }
        int n = ::recvmmsg(in_fd[d], msgs.data(), batch, MSG_DONTWAIT, nullptr);
        if (n <= 0) break;
        auto arrived = clock_type::now();
        now_list.clear();
        for (int i = 0; i < n; ++i) {
          ++counters_[d].in;
          if (d == 0) {
            client = from[i];
            have_client = true;
          }
          const std::size_t size = msgs[i].msg_len;
          if (chance(dirs[d].rng, path_.loss)) {
            ++counters_[d].lost;
            continue;
          }
          if (chance(dirs[d].rng, path_.reorder)) {
            ++counters_[d].reordered;
            dirs[d].held.push_back({arrived + path_.reorder_delay,
                                    std::vector<std::uint8_t>(buffers[i].data(), buffers[i].data() + size)});
            continue;
          }
          now_list.emplace_back(buffers[i].data(), size);
        }
        flush(d, now_list);
        if (static_cast<std::size_t>(n) < batch) break;
      }
    }
  }
}

}  // namespace kadnet::bench
