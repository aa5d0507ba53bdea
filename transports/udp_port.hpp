#pragma once
// A node's UDP socket: one serves all its peers (seed 004). It receives datagrams in batches
// (recvmmsg) and hands each, with its source address, to the node; it sends a session's packets
// in one batch (sendmmsg), one datagram each, runs of equal-sized ones as one UDP GSO message
// where the kernel can segment them. Every handler runs on the node's strand; the port
// holds no protocol state. A datagram the kernel cannot take now is dropped and counted: the
// reliable channel above resends what matters.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "kadnet/core/bytes.hpp"

namespace kadnet::transports {

struct udp_counters {
  std::uint64_t datagrams_in = 0, datagrams_out = 0, send_drops = 0, oversized_in = 0;
  std::uint64_t impaired_lost = 0, impaired_duplicated = 0, impaired_reordered = 0;
  std::uint64_t send_calls = 0;  // sendmmsg system calls
  std::uint64_t coalesced_in = 0;  // datagrams that arrived in a run the kernel coalesced (UDP GRO)
  std::uint64_t unreachable_in = 0;  // ICMP port unreachable for something we sent
};

// Seeded impairment of the datagrams a port sends, for tests and benchmarks on real sockets (the
// kernel's netem is not available here). Each datagram is lost with probability `loss`, else
// delayed by `delay` plus a uniform 0..`jitter`, held back a further `reorder_delay` with
// probability `reorder` (later ones overtake it), and sent twice with probability `duplicate`.
// What is not lost or held leaves in the same batches as unimpaired sends. A held datagram that
// is due leaves at the front of the next batch to its address, or, when none comes, by a timer
// at most `held_release_slack` after it was due: the impairment should cost the sender a
// system call and a wake-up per batch, as netem would cost it nothing, not one per held datagram.
struct udp_impairment {
  static constexpr std::chrono::microseconds held_release_slack{250};

  double loss = 0, duplicate = 0, reorder = 0;
  std::chrono::microseconds delay{0}, jitter{0}, reorder_delay{2000};
  std::uint64_t seed = 1;
  bool active() const {
    return loss > 0 || duplicate > 0 || reorder > 0 || delay.count() > 0 || jitter.count() > 0;
  }
};

class udp_port : public std::enable_shared_from_this<udp_port> {
 public:
  using executor = boost::asio::strand<boost::asio::any_io_executor>;
  using datagram_handler = std::function<void(const byte_vector& source, byte_span datagram)>;

  // Binds at once, so that a bad address fails at start-up (std::runtime_error naming it).
  udp_port(const executor& ex, const boost::asio::ip::udp::endpoint& bind_to);

  // Where an ICMP error said nobody listens (port unreachable), in address_bytes form. Only a
  // hint: anyone on the path can forge one, so it may end a handshake, never a session.
  using unreachable_handler = std::function<void(const byte_vector& destination)>;

  // Begins receiving; `handler` runs for every datagram until close(), `batch_done` after each
  // batch of them (the node does its work once per batch), `unreachable` for each port
  // unreachable error.
  void start(datagram_handler handler, std::function<void()> batch_done, unreachable_handler unreachable = {});
  // Sends `packets` (whole outer packets back to back, each one datagram) to `to`.
  void send_packets(const boost::asio::ip::udp::endpoint& to, byte_span packets);
  void close();
  // Impairs what this port sends from now on (udp_impairment{} turns it off).
  void set_impairment(const udp_impairment& impairment);

  boost::asio::ip::udp::endpoint local_endpoint() const;
  const udp_counters& counters() const { return counters_; }
  bool receives_coalesced() const { return gro_; }  // the kernel took UDP_GRO

  // Transport addresses as the engine knows them: 16-byte IPv6 (IPv4-mapped) ‖ 2-byte port.
  static byte_vector address_bytes(const boost::asio::ip::udp::endpoint& ep);
  // The endpoint to send to through this port (IPv4-mapped addresses become IPv4 on an IPv4
  // socket).
  boost::asio::ip::udp::endpoint endpoint_of(const byte_vector& address) const;

 private:
  void wait_readable();
  void drain_errors();
  // Reads what has arrived (a few batches at most); false when there was nothing.
  bool drain();
  template <std::size_t messages_per_call, std::size_t buffer_size>
  bool drain_batches();
  void send_now(const boost::asio::ip::udp::endpoint& to, byte_span packets);
  // Impairment: decides each packet's fate and holds delayed ones until their time.
  void send_impaired(const boost::asio::ip::udp::endpoint& to, byte_span packets);
  // Appends the held datagrams to `to` that are due by `now` to survivors_, in the order due.
  void take_due(const boost::asio::ip::udp::endpoint& to, std::chrono::steady_clock::time_point now);
  // Sends every held datagram that is due, and arms the timer for the next one.
  void release_held();

  boost::asio::ip::udp::socket socket_;
  // The impairment and its draws, only while one is set: the generator's state is 2.5 KiB, and
  // a process may hold thousands of ports.
  struct impaired {
    udp_impairment rule;
    std::mt19937_64 rng;
  };
  std::unique_ptr<impaired> impairment_;
  std::multimap<std::chrono::steady_clock::time_point,
                std::pair<boost::asio::ip::udp::endpoint, byte_vector>> held_;
  byte_vector survivors_;  // impaired datagrams that leave now, back to back
  boost::asio::steady_timer held_timer_;
  std::optional<std::chrono::steady_clock::time_point> held_timer_at_;
  datagram_handler handler_;
  std::function<void()> batch_done_;
  unreachable_handler unreachable_;
  udp_counters counters_;
  bool closed_ = false;
  bool gso_ = true;  // until the kernel refuses UDP_SEGMENT
  bool gro_ = false;  // the kernel accepted UDP_GRO: it may coalesce what we receive
};

}  // namespace kadnet::transports
