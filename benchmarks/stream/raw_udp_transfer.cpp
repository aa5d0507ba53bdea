// (d) The raw UDP ceiling: 1,200-byte datagrams (kadnet's largest) from one socket to another on
// 127.0.0.1, sent in batches of 64 with sendmmsg as fast as the sender goes: no encryption, no
// acknowledgement, no retransmission. The receiver (recvmmsg, batches of 64) counts the bytes
// that arrive; goodput is what arrived over the time from the first send to the last arrival.
// Both sockets ask for 4 MiB buffers, as kadnet's udp_port does.
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <iomanip>
#include <sstream>
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
constexpr std::size_t datagram = 1200;
constexpr std::size_t batch = 64;
constexpr int socket_buffer_bytes = 4 << 20;
// The receiver stops once the sender is done and nothing arrived for this long.
constexpr auto quiet_end = std::chrono::milliseconds(200);
}  // namespace

transfer_result run_raw_udp(const transfer_settings& settings) {
  transfer_result r;
  r.rss_before_kib = current_rss_kib();
  fd_guard sender, receiver_fd;
  try {
    sender.reset(bound_loopback_socket(SOCK_DGRAM));
    receiver_fd.reset(bound_loopback_socket(SOCK_DGRAM));
  } catch (const std::exception& e) {
    r.note = std::string("UDP setup failed: ") + e.what();
    return r;
  }
  set_buffers(sender.get(), socket_buffer_bytes);
  set_buffers(receiver_fd.get(), socket_buffer_bytes);
  set_io_timeouts(sender.get(), std::chrono::milliseconds(1000));
  set_io_timeouts(receiver_fd.get(), std::chrono::milliseconds(20));
  sockaddr_in to = loopback_address(local_port(receiver_fd.get()));

  const std::uint64_t datagrams = (settings.bytes + datagram - 1) / datagram;
  std::atomic<bool> sender_done{false};
  std::atomic<std::uint64_t> received_bytes{0}, received_datagrams{0};
  clock_type::time_point started = clock_type::now(), last_arrival{};
  const auto deadline = started + settings.time_limit;

  std::thread receiver([&] {
    std::vector<std::array<std::uint8_t, 2048>> buffers(batch);
    std::array<mmsghdr, batch> msgs{};
    std::array<iovec, batch> iov{};
    std::uint64_t bytes = 0, count = 0;
    auto quiet_since = clock_type::now();
    while (count < datagrams && clock_type::now() < deadline) {
      for (std::size_t i = 0; i < batch; ++i) {
        iov[i] = {buffers[i].data(), buffers[i].size()};
        msgs[i].msg_hdr = msghdr{};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int n = ::recvmmsg(receiver_fd.get(), msgs.data(), batch, MSG_WAITFORONE, nullptr);
      auto now = clock_type::now();
      if (n <= 0) {
        if (!sender_done) quiet_since = now;
        else if (now - quiet_since >= quiet_end) break;
        continue;
      }
      for (int i = 0; i < n; ++i) bytes += msgs[i].msg_len;
      count += static_cast<std::uint64_t>(n);
      last_arrival = now;
      quiet_since = now;
      received_bytes = bytes;
      received_datagrams = count;
    }
  });

  // The datagrams' bytes: the payload's first 64 × 1,200 bytes, sent again and again (nothing
  // checks them; only the count matters here).
  std::vector<std::uint8_t> block(batch * datagram);
  fill_payload(settings.content_seed, 0, block);
  std::array<mmsghdr, batch> msgs{};
  std::array<iovec, batch> iov{};
  std::uint64_t sent = 0, send_failures = 0;
  started = clock_type::now();
  while (sent < datagrams && clock_type::now() < deadline) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(batch, datagrams - sent));
    for (std::size_t i = 0; i < n; ++i) {
      std::uint64_t offset = (sent + i) * datagram;
      iov[i] = {block.data() + i * datagram, static_cast<std::size_t>(std::min<std::uint64_t>(datagram, settings.bytes - offset))};
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &to;
      msgs[i].msg_hdr.msg_namelen = sizeof to;
    }
    int k = ::sendmmsg(sender.get(), msgs.data(), static_cast<unsigned>(n), 0);
    if (k <= 0) {
      ++send_failures;
      if (errno != EAGAIN && errno != EINTR && errno != ENOBUFS) break;
      continue;
    }
    sent += static_cast<std::uint64_t>(k);
  }
  const auto send_seconds = std::chrono::duration<double>(clock_type::now() - started).count();
  sender_done = true;
  receiver.join();

  r.rss_high_kib = r.rss_after_kib = current_rss_kib();
  r.peak_rss_after_kib = peak_rss_kib();
  r.delivered = received_bytes;
  r.completed = sent == datagrams;
  if (last_arrival != clock_type::time_point{})
    r.seconds = std::chrono::duration<double>(last_arrival - started).count();
  std::ostringstream note;
  if (!r.completed) note << "sent only " << with_commas(sent) << " of " << with_commas(datagrams) << " datagrams; ";
  note << with_commas(received_datagrams) << " of " << with_commas(sent) << " datagrams arrived (" << std::fixed
       << std::setprecision(1) << 100.0 * static_cast<double>(received_datagrams) / static_cast<double>(std::max<std::uint64_t>(sent, 1))
       << " %); the sender alone ran at " << std::setprecision(0)
       << static_cast<double>(sent * datagram) / std::max(send_seconds, 1e-9) / 1e6 << " MB/s";
  r.note = note.str();
  return r;
}

}  // namespace kadnet::bench
