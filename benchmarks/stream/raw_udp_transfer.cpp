// (d) The raw UDP ceiling: 1,200-byte datagrams (kadnet's largest) from one socket to another on
// 127.0.0.1, sent as fast as the sender goes: no encryption, no acknowledgement, no
// retransmission. Three ways of batching:
//  * sendmmsg: batches of 64 datagrams, each its own message; the receiver takes batches of 64
//    with recvmmsg;
//  * GSO: batches of 64 messages of 54 datagrams each (UDP_SEGMENT); the receiving socket cuts
//    them into 1,200-byte datagrams, which it takes 64 at a time with recvmmsg;
//  * GSO and GRO, as kadnet's udp_port sends and receives: the receiver asks for UDP_GRO too, so
//    on loopback each batch arrives whole and is never cut into datagrams at all.
// The first two deliver datagrams one by one; the faster of them is the ceiling.
// The receiver counts the bytes that arrive; goodput is what arrived over the time from the first
// send to the last arrival. Both sockets ask for 4 MiB buffers, as kadnet's udp_port does.
#include <netinet/udp.h>
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
// GSO: datagrams per message (54 × 1,200 = 64,800 bytes, below UDP's 65,507), and the receive
// buffer a GRO message may fill.
constexpr std::size_t gso_segments = 54;
constexpr std::size_t gro_buffer = 65536;
constexpr int socket_buffer_bytes = 4 << 20;
// Datagrams that `bytes` fill: whole ones and at most one shorter last one.
constexpr std::uint64_t datagrams_in(std::uint64_t bytes) { return (bytes + datagram - 1) / datagram; }
// The receiver stops once the sender is done and nothing arrived for this long.
constexpr auto quiet_end = std::chrono::milliseconds(200);
}  // namespace

transfer_result run_raw_udp(const transfer_settings& settings, raw_batching batching) {
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
  const bool gso = batching != raw_batching::sendmmsg;
  const bool gro = batching == raw_batching::gso_gro;
  if (gro) {
    const int on = 1;
    if (::setsockopt(receiver_fd.get(), SOL_UDP, UDP_GRO, &on, sizeof on) != 0) {
      r.available = false;
      r.note = std::string("no UDP_GRO here: ") + std::strerror(errno);
      return r;
    }
  }
  // Datagrams per message, and the receive buffer each message gets.
  const std::size_t per_message = gso ? gso_segments : 1;
  const std::size_t receive_buffer = gro ? gro_buffer : 2048;
  sockaddr_in to = loopback_address(local_port(receiver_fd.get()));

  const std::uint64_t datagrams = datagrams_in(settings.bytes);
  std::atomic<bool> sender_done{false};
  std::atomic<std::uint64_t> received_bytes{0}, received_datagrams{0};
  clock_type::time_point started = clock_type::now(), last_arrival{};
  const auto deadline = started + settings.time_limit;

  std::thread receiver([&] {
    std::vector<std::uint8_t> buffers(batch * receive_buffer);
    std::array<mmsghdr, batch> msgs{};
    std::array<iovec, batch> iov{};
    std::uint64_t bytes = 0, count = 0;
    auto quiet_since = clock_type::now();
    while (count < datagrams && clock_type::now() < deadline) {
      for (std::size_t i = 0; i < batch; ++i) {
        iov[i] = {buffers.data() + i * receive_buffer, receive_buffer};
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
      for (int i = 0; i < n; ++i) bytes += msgs[i].msg_len, count += datagrams_in(msgs[i].msg_len);  // GRO: many
      last_arrival = now;
      quiet_since = now;
      received_bytes = bytes;
      received_datagrams = count;
    }
  });

  // The datagrams' bytes: the payload's first bytes, sent again and again (nothing checks them;
  // only the count matters here).
  std::vector<std::uint8_t> block(batch * per_message * datagram);
  fill_payload(settings.content_seed, 0, block);
  std::array<mmsghdr, batch> msgs{};
  std::array<iovec, batch> iov{};
  std::array<std::array<std::uint8_t, CMSG_SPACE(sizeof(std::uint16_t))>, batch> control{};
  std::uint64_t sent = 0;
  int send_error = 0;  // what stopped the sender early, if anything
  started = clock_type::now();
  while (sent < datagrams && clock_type::now() < deadline) {
    std::size_t n = 0;
    for (std::uint64_t queued = sent; n < batch && queued < datagrams; ++n) {
      const std::uint64_t in_message = std::min<std::uint64_t>(per_message, datagrams - queued);
      const std::uint64_t offset = queued * datagram;
      const std::uint64_t length = std::min<std::uint64_t>(in_message * datagram, settings.bytes - offset);
      iov[n] = {block.data() + n * per_message * datagram, static_cast<std::size_t>(length)};
      msgs[n].msg_hdr = msghdr{};
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
      msgs[n].msg_hdr.msg_name = &to;
      msgs[n].msg_hdr.msg_namelen = sizeof to;
      if (gso && in_message > 1) {
        msgs[n].msg_hdr.msg_control = control[n].data();
        msgs[n].msg_hdr.msg_controllen = control[n].size();
        cmsghdr* c = CMSG_FIRSTHDR(&msgs[n].msg_hdr);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
        const auto size = static_cast<std::uint16_t>(datagram);
        std::memcpy(CMSG_DATA(c), &size, sizeof size);
      }
      queued += in_message;
    }
    int k = ::sendmmsg(sender.get(), msgs.data(), static_cast<unsigned>(n), 0);
    if (k <= 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ENOBUFS) {
        send_error = errno;
        break;
      }
      continue;
    }
    for (int i = 0; i < k; ++i) sent += datagrams_in(iov[i].iov_len);
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
  if (!r.completed) {
    note << "sent only " << with_commas(sent) << " of " << with_commas(datagrams) << " datagrams";
    if (send_error) note << " (sendmmsg: " << std::strerror(send_error) << ")";
    note << "; ";
  }
  note << with_commas(received_datagrams) << " of " << with_commas(sent) << " datagrams arrived (" << std::fixed
       << std::setprecision(1) << 100.0 * static_cast<double>(received_datagrams) / static_cast<double>(std::max<std::uint64_t>(sent, 1))
       << " %); the sender alone ran at " << std::setprecision(0)
       << static_cast<double>(sent * datagram) / std::max(send_seconds, 1e-9) / 1e6 << " MB/s";
  r.note = note.str();
  return r;
}

}  // namespace kadnet::bench
