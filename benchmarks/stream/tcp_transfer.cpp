// (c) The payload through one kernel TCP connection on 127.0.0.1, for context: no impairment
// (the kernel's netem is not available here), default socket buffers. The receiver hashes what
// it reads, as kadnet's and UDT's do.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "benchmarks/stream/memory.hpp"
#include "benchmarks/stream/payload.hpp"
#include "benchmarks/stream/socket_util.hpp"
#include "benchmarks/stream/text.hpp"
#include "benchmarks/stream/transfer.hpp"

namespace kadnet::bench {
namespace {
using clock_type = std::chrono::steady_clock;
constexpr std::size_t chunk = 256 * 1024;
}  // namespace

transfer_result run_tcp(const transfer_settings& settings) {
  transfer_result r;
  r.rss_before_kib = current_rss_kib();
  fd_guard listener, client, server;
  try {
    listener.reset(bound_loopback_socket(SOCK_STREAM));
    if (::listen(listener.get(), 1) != 0) throw std::runtime_error(std::string("listen: ") + std::strerror(errno));
    client.reset(::socket(AF_INET, SOCK_STREAM, 0));
    sockaddr_in to = loopback_address(local_port(listener.get()));
    if (::connect(client.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0)
      throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
    server.reset(::accept(listener.get(), nullptr, nullptr));  // the connection is already queued
    if (server.get() < 0) throw std::runtime_error(std::string("accept: ") + std::strerror(errno));
  } catch (const std::exception& e) {
    r.note = std::string("TCP setup failed: ") + e.what();
    return r;
  }
  set_io_timeouts(client.get(), std::chrono::milliseconds(1000));
  set_io_timeouts(server.get(), std::chrono::milliseconds(1000));

  const auto started = clock_type::now();
  const auto deadline = started + settings.time_limit;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> received{0};
  clock_type::time_point all_arrived{};
  std::array<std::uint8_t, 32> digest{};
  std::string receive_error;
  std::thread receiver([&] {
    std::vector<std::uint8_t> buffer(chunk);
    payload_hash hash;
    std::uint64_t total = 0;
    while (total < settings.bytes && !stop && clock_type::now() < deadline) {
      ssize_t n = ::recv(server.get(), buffer.data(), buffer.size(), 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        receive_error = n == 0 ? "the connection ended early" : std::strerror(errno);
        break;
      }
      hash.update(std::span(buffer.data(), static_cast<std::size_t>(n)));
      total += static_cast<std::uint64_t>(n);
      received = total;
    }
    if (total == settings.bytes) all_arrived = clock_type::now();
    digest = hash.final();
  });

  std::string send_error;
  std::vector<std::uint8_t> block(chunk);
  for (std::uint64_t sent = 0; sent < settings.bytes && clock_type::now() < deadline && send_error.empty();) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, settings.bytes - sent));
    fill_payload(settings.content_seed, sent, std::span(block.data(), n));
    for (std::size_t off = 0; off < n && clock_type::now() < deadline;) {
      ssize_t k = ::send(client.get(), block.data() + off, n - off, MSG_NOSIGNAL);
      if (k < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (k < 0) {
        send_error = std::strerror(errno);
        break;
      }
      off += static_cast<std::size_t>(k);
      sent += static_cast<std::uint64_t>(k);
    }
  }
  if (!send_error.empty()) stop = true;
  receiver.join();
  r.rss_high_kib = r.rss_after_kib = current_rss_kib();
  r.peak_rss_after_kib = peak_rss_kib();
  r.delivered = received;
  if (all_arrived != clock_type::time_point{}) {
    r.completed = true;
    r.seconds = std::chrono::duration<double>(all_arrived - started).count();
    r.intact = digest == settings.expected_hash;
  } else {
    r.seconds = std::chrono::duration<double>(clock_type::now() - started).count();
    r.note = !send_error.empty()      ? "send failed: " + send_error
             : !receive_error.empty() ? "recv failed: " + receive_error
                                      : "did not finish within " + std::to_string(settings.time_limit.count()) +
                                            " s: " + with_commas(r.delivered) + " of " + with_commas(settings.bytes) +
                                            " bytes arrived";
  }
  return r;
}

}  // namespace kadnet::bench
