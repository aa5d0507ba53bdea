// (b) The payload through UDT4 (Debian's libudt, the UDT4 API) between two sockets of this
// process on 127.0.0.1. UDT has no loss injection of its own, so an impaired path runs through
// an impair_relay. UDT's MSS is set to 1,228 bytes so that its datagrams are 1,200 bytes as
// kadnet's are (MSS counts the 28 bytes of IP and UDP headers; UDT's own header is 16 bytes,
// leaving 1,184 bytes of payload per datagram against kadnet's 1,090). Its UDP socket buffers
// are 4 MiB, as kadnet's udp_port asks; everything else is UDT's default (its native
// congestion control).
#include <arpa/inet.h>
#include <udt/udt.h>

#include <atomic>
#include <iomanip>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "benchmarks/stream/impair_relay.hpp"
#include "benchmarks/stream/memory.hpp"
#include "benchmarks/stream/payload.hpp"
#include "benchmarks/stream/socket_util.hpp"
#include "benchmarks/stream/text.hpp"
#include "benchmarks/stream/transfer.hpp"

namespace kadnet::bench {
namespace {
using clock_type = std::chrono::steady_clock;
constexpr int udt_mss = 1228;            // 1,200-byte UDP datagrams
constexpr int udp_buffer = 4 << 20;      // as transports::udp_port asks
constexpr int io_timeout_ms = 1000;      // each blocking send/recv returns at least this often
constexpr std::size_t chunk = 1 << 20;

std::string last_error() { return UDT::getlasterror().getErrorMessage(); }

UDTSOCKET make_socket() {
  UDTSOCKET s = UDT::socket(AF_INET, SOCK_STREAM, 0);
  if (s == UDT::INVALID_SOCK) return s;
  UDT::setsockopt(s, 0, UDT_MSS, &udt_mss, sizeof udt_mss);
  UDT::setsockopt(s, 0, UDP_SNDBUF, &udp_buffer, sizeof udp_buffer);
  UDT::setsockopt(s, 0, UDP_RCVBUF, &udp_buffer, sizeof udp_buffer);
  linger no_linger{0, 0};  // close() at once, whatever is unsent (a timed-out run)
  UDT::setsockopt(s, 0, UDT_LINGER, &no_linger, sizeof no_linger);
  return s;
}

bool timed_out() { return UDT::getlasterror().getErrorCode() == CUDTException::ETIMEOUT; }
}  // namespace

transfer_result run_udt(const transfer_settings& settings) {
  transfer_result r;
  r.rss_before_kib = current_rss_kib();
  UDT::startup();
  struct cleanup_at_exit {
    ~cleanup_at_exit() { UDT::cleanup(); }
  } cleanup;

  UDTSOCKET listener = make_socket();
  sockaddr_in any = loopback_address(0);
  if (listener == UDT::INVALID_SOCK || UDT::bind(listener, reinterpret_cast<sockaddr*>(&any), sizeof any) == UDT::ERROR ||
      UDT::listen(listener, 1) == UDT::ERROR) {
    r.note = "UDT listen failed: " + last_error();
    return r;
  }
  sockaddr_in bound{};
  int len = sizeof bound;
  UDT::getsockname(listener, reinterpret_cast<sockaddr*>(&bound), &len);
  std::uint16_t target_port = ntohs(bound.sin_port);

  std::unique_ptr<impair_relay> relay;
  if (settings.path.active()) {
    relay = std::make_unique<impair_relay>(bound, settings.path);
    relay->start();
    target_port = relay->client_port();
  }

  std::atomic<UDTSOCKET> accepted{UDT::INVALID_SOCK};
  std::thread acceptor([&] {
    sockaddr_in peer{};
    int plen = sizeof peer;
    accepted = UDT::accept(listener, reinterpret_cast<sockaddr*>(&peer), &plen);
  });

  UDTSOCKET client = make_socket();
  sockaddr_in to = loopback_address(target_port);
  if (client == UDT::INVALID_SOCK || UDT::connect(client, reinterpret_cast<sockaddr*>(&to), sizeof to) == UDT::ERROR) {
    r.note = "UDT connect failed: " + last_error();
    UDT::close(listener);  // wakes the acceptor
    acceptor.join();
    if (accepted != UDT::INVALID_SOCK) UDT::close(accepted);
    return r;
  }
  acceptor.join();
  UDTSOCKET server = accepted;
  if (server == UDT::INVALID_SOCK) {
    r.note = "UDT accept failed: " + last_error();
    UDT::close(client);
    UDT::close(listener);
    return r;
  }
  UDT::setsockopt(client, 0, UDT_SNDTIMEO, &io_timeout_ms, sizeof io_timeout_ms);
  UDT::setsockopt(server, 0, UDT_RCVTIMEO, &io_timeout_ms, sizeof io_timeout_ms);

  const auto started = clock_type::now();
  const auto deadline = started + settings.time_limit;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> received{0};
  clock_type::time_point all_arrived{};
  std::array<std::uint8_t, 32> digest{};
  std::string receive_error;

  std::thread receiver([&] {
    std::vector<char> buffer(256 * 1024);
    payload_hash hash;
    std::uint64_t total = 0;
    while (total < settings.bytes && !stop && clock_type::now() < deadline) {
      int want = static_cast<int>(std::min<std::uint64_t>(buffer.size(), settings.bytes - total));
      int n = UDT::recv(server, buffer.data(), want, 0);
      if (n == UDT::ERROR) {
        if (timed_out()) continue;
        receive_error = last_error();
        break;
      }
      hash.update(std::span(reinterpret_cast<const std::uint8_t*>(buffer.data()), static_cast<std::size_t>(n)));
      total += static_cast<std::uint64_t>(n);
      received = total;
    }
    if (total == settings.bytes) all_arrived = clock_type::now();
    digest = hash.final();
  });

  long rss_high = r.rss_before_kib;
  std::string send_error;
  std::vector<std::uint8_t> block(chunk);
  for (std::uint64_t sent = 0; sent < settings.bytes && clock_type::now() < deadline && send_error.empty();) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, settings.bytes - sent));
    fill_payload(settings.content_seed, sent, std::span(block.data(), n));
    for (std::size_t off = 0; off < n && clock_type::now() < deadline;) {
      int k = UDT::send(client, reinterpret_cast<const char*>(block.data() + off), static_cast<int>(n - off), 0);
      if (k == UDT::ERROR) {
        if (timed_out()) continue;
        send_error = last_error();
        break;
      }
      off += static_cast<std::size_t>(k);
      sent += static_cast<std::uint64_t>(k);
    }
    rss_high = std::max(rss_high, current_rss_kib());
  }
  if (!send_error.empty()) stop = true;
  receiver.join();
  r.rss_high_kib = std::max(rss_high, current_rss_kib());
  r.rss_after_kib = current_rss_kib();
  r.peak_rss_after_kib = peak_rss_kib();

  r.delivered = received;
  if (all_arrived != clock_type::time_point{}) {
    r.completed = true;
    r.seconds = std::chrono::duration<double>(all_arrived - started).count();
    r.intact = digest == settings.expected_hash;
  } else {
    r.seconds = std::chrono::duration<double>(clock_type::now() - started).count();
  }

  std::ostringstream note;
  if (!r.completed) {
    if (!send_error.empty()) note << "send failed: " << send_error << "; ";
    if (!receive_error.empty()) note << "recv failed: " << receive_error << "; ";
    if (send_error.empty() && receive_error.empty())
      note << "did not finish within " << settings.time_limit.count() << " s: " << with_commas(r.delivered) << " of "
           << with_commas(settings.bytes) << " bytes arrived; ";
  }
  UDT::TRACEINFO sender{}, receiver_perf{};
  UDT::perfmon(client, &sender, false);
  UDT::perfmon(server, &receiver_perf, false);
  note << "sender: " << with_commas(static_cast<std::uint64_t>(sender.pktSentTotal)) << " data packets, "
       << with_commas(static_cast<std::uint64_t>(sender.pktRetransTotal)) << " retransmitted, "
       << with_commas(static_cast<std::uint64_t>(sender.pktRecvNAKTotal)) << " NAKs in; receiver: "
       << with_commas(static_cast<std::uint64_t>(receiver_perf.pktRcvLossTotal)) << " losses seen";
  UDT::close(client);
  UDT::close(server);
  UDT::close(listener);
  if (relay) {
    relay->stop();
    const auto& s = relay->to_server();
    const auto& c = relay->to_client();
    note << "; relay ->server: " << with_commas(s.in) << " in, " << with_commas(s.lost) << " dropped, "
         << with_commas(s.reordered) << " held, " << with_commas(s.send_drops) << " unsendable; ->client: " << with_commas(c.in) << " in, " << with_commas(c.lost)
         << " dropped, " << with_commas(c.reordered) << " held, " << with_commas(c.send_drops) << " unsendable";
  }
  r.note = note.str();
  return r;
}

}  // namespace kadnet::bench
