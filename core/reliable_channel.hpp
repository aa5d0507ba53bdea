#pragma once
// Reliable, ordered delivery of units (each at most one datagram's worth of bytes) over a lossy
// datagram path, sans-I/O: the part of the UDP transport that TCP's kernel stack does for a
// stream transport (docs/PROTOCOL.md 9).
//
// The channel numbers units with a 32-bit sequence; the peer acknowledges cumulatively, with up
// to eight selective-acknowledgement ranges and a receive window counted in packets (24 bits,
// seed 004). Loss is detected as RFC 9002 says (three later packets acknowledged, or 9/8 of an
// RTT passed since a later-sent one was) or by a retransmission timeout computed from measured
// RTT as RFC 6298 says; where that timeout sits on its floor (short paths), a loss probe resends
// one unit at the unfloored timeout first. NewReno congestion control with pacing decides how much may be in
// flight; a loss with no queue behind it (RTT near its minimum) does not shrink the window. Keepalives keep an idle path checked and
// a silent peer fails the channel after the idle timeout. On a lossless path (reliable_config::
// lossless: a stream session's byte streams) only the numbering, acknowledgements and receive
// window remain.
//
// It produces and consumes plaintext frames; the session seals each into one packet:
//  reliable_data (type 2):        seq u32 | ack block | unit
//  unreliable_data_ack (type 4):  ack block            (an acknowledgement or a keepalive)
//  ack block:                     ack u32 | window u24 | range count u8 | ranges (start u32, end u32)
//
// Contract: queue() units; after every call drain poll_transmit(now) until empty and
// poll_delivered() until empty; call handle_timeout(now) at next_deadline().
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/fifo.hpp"
#include "kadnet/core/rpc_tracker.hpp"
#include "kadnet/core/wire/packet.hpp"

namespace kadnet::core {

struct reliable_config {
  std::uint32_t receive_window = 4096;  // units buffered ahead of the reader, advertised
  std::size_t max_send_queue = 1u << 14;  // units queued and unacknowledged (~18 MB), at most
  std::chrono::milliseconds initial_rto{500};
  std::chrono::milliseconds min_rto{40};
  std::chrono::milliseconds max_rto{8000};
  std::chrono::milliseconds ack_delay{2};    // how long an acknowledgement may wait for data
  std::chrono::milliseconds keepalive{10000};
  std::chrono::milliseconds idle_timeout{30000};
  std::uint32_t initial_window = 32;  // congestion window at start, packets
  std::uint32_t min_window = 8;       // the congestion window never shrinks below this (see 9.5)
  // The path below loses and reorders nothing (a stream session: TCP, WebSocket, a relay): the
  // channel keeps sequence numbers, acknowledgements and the receive window (flow control) but
  // never resends and has no congestion window, as the transport does both (PROTOCOL.md 9.6).
  bool lossless = false;
  // Units the peer is assumed to accept until its first acknowledgement says (a guess past its
  // real window costs resends; on a lossless path the guess is always 1).
  std::uint32_t initial_peer_window = 32;
};

struct reliable_counters {
  std::uint64_t units_sent = 0, retransmits = 0, fast_retransmits = 0, timeouts = 0;
  std::uint64_t acks_sent = 0, duplicates_in = 0, out_of_window = 0, malformed = 0;
  std::uint64_t losses_tolerated = 0;  // losses taken for noise, not congestion (no reduction)
  std::uint64_t spurious_losses = 0;   // units declared lost whose first copy was acknowledged
  std::uint64_t reductions_undone = 0; // window cuts taken back: every loss behind them was spurious
  std::uint64_t loss_probes = 0;       // units resent by the loss probe (9.5), not as losses
};

class reliable_channel {
 public:
  // Largest frame header of a reliable_data packet; a unit fills the rest of a datagram.
  static constexpr std::size_t max_ranges = 8;
  static constexpr std::size_t max_header = 4 + 4 + 3 + 1 + 8 * max_ranges;

  struct frame {
    wire::packet_type type;  // reliable_data or unreliable_data_ack
    byte_vector plaintext;
  };

  reliable_channel(reliable_config config, time_point now);
  // The same with settings shared by many channels (a node's sessions, a session's streams).
  reliable_channel(std::shared_ptr<const reliable_config> config, time_point now);

  // Queues one unit for reliable, in-order delivery. False (and nothing queued) when the send
  // queue is full: the caller must wait for room (writable()) or fail.
  bool queue(byte_vector unit);
  bool writable() const { return queued() < max_send_queue_; }
  std::size_t queued() const { return view().send_queue.size() + view().in_flight.size(); }

  // A frame from the peer (after opening). Errors are malformed frames (counted; ignored).
  boost::system::error_code on_frame(wire::packet_type type, byte_span plaintext, time_point now);

  // With `new_data` false only acknowledgements (and resends) go: the caller holds new units
  // back (a stream session's streams share one limit on what is unacknowledged).
  std::optional<frame> poll_transmit(time_point now, bool new_data = true);
  std::optional<byte_vector> poll_delivered();

  void handle_timeout(time_point now);
  std::optional<time_point> next_deadline() const;

  // Set when the peer stayed silent past the idle timeout (errc::timeout).
  boost::system::error_code failure() const;

  // Lets the reader hold back units (flow control): delivered units count against the receive
  // window until release() says the reader consumed them. The session releases at once.
  void release(std::size_t units);

  // Flow-control limits the stream mux tunes per stream (9.6). The receive window only widens
  // (a window the peer was told of is never taken back), and the peer hears of it at once.
  void widen_receive_window(std::uint32_t units);
  void set_max_send_queue(std::size_t units) { max_send_queue_ = units; }
  std::uint32_t receive_window() const { return receive_window_; }
  std::size_t max_send_queue() const { return max_send_queue_; }
  // Units the peer last said it accepts beyond the lowest unacknowledged one (0 until it said).
  std::uint32_t peer_window() const { return peer_window_known_ ? peer_window_ : 0; }

  // What the channel measured of its path's round trip; nullopt before its first sample.
  struct rtt_estimate {
    std::chrono::microseconds smoothed, variation, minimum;
  };
  std::optional<rtt_estimate> path_rtt() const;
  // Starts from another channel's estimate of the same path (a stream's channel from its
  // session's) until a sample of its own arrives: a lone first unit or acknowledgement lost then
  // costs a timeout near the path's round trip instead of the 500 ms initial RTO.
  void assume_path_rtt(const rtt_estimate& path);

  const reliable_counters& counters() const { return counters_; }
  std::chrono::microseconds smoothed_rtt() const { return srtt_; }
  std::uint32_t congestion_window() const { return cwnd_; }
  std::size_t in_flight() const { return view().in_flight.size(); }

 private:
  struct sent_unit {
    byte_vector data;
    time_point sent_at{};  // the last send
    bool acked = false;
    bool retransmitted = false;
    bool lost = false;  // detected lost, waiting for its retransmission
    bool cut_window = false;  // its loss made the current window reduction
    bool loss_probed = false;  // resent by the loss probe: an earlier copy's ack proves nothing
    std::uint32_t resend_mark = 0;  // the next new seq when it was resent
  };

  // The units on their way, in and out: a box of their own, held only while one is not empty
  // (most of a node's channels are idle most of the time).
  struct buffers {
    fifo<byte_vector> send_queue;  // not yet sent
    fifo<sent_unit> in_flight;     // seq snd_una_ + i
    std::map<std::uint32_t, byte_vector> out_of_order;
    fifo<byte_vector> delivered;
  };
  buffers& buf();  // made on first use
  const buffers& view() const;  // an empty one when there is none
  // Called as each public call that may empty the buffers returns.
  void free_buffers_if_idle();
  struct idle_check {
    reliable_channel& c;
    ~idle_check() { c.free_buffers_if_idle(); }
  };

  // A reliable_data frame carrying unit `seq` and our latest ack block.
  frame copy_of(std::uint32_t seq, const sent_unit& u);
  void write_ack_block(byte_vector& out, std::size_t max_ranges_here);
  void on_ack_block(byte_reader& r, time_point now, boost::system::error_code& ec);
  void on_unit_acked(sent_unit& u, time_point now, bool& rtt_sampled);
  void detect_losses(time_point now);
  // Loss detection by time, the retransmission timeout and the loss probe (not on a lossless path).
  void on_loss_timers(time_point now);
  void on_congestion_event(time_point now, std::uint32_t lost);
  void on_spurious_loss(const sent_unit& u, std::uint32_t overtaken_by);
  void sample_rtt(std::chrono::microseconds rtt);
  std::chrono::microseconds rto_base() const;
  std::chrono::microseconds rto() const;
  std::optional<time_point> loss_probe_at() const;
  bool may_send_new() const;
  std::uint32_t advertised_window() const;

  std::shared_ptr<const reliable_config> config_;
  std::uint32_t receive_window_;  // config_'s, clamped; a stream's widens (widen_receive_window)
  std::size_t max_send_queue_;    // config_'s; a stream's lengthens (set_max_send_queue)
  std::unique_ptr<buffers> buffers_;
  reliable_counters counters_;

  // Sending side.
  std::uint32_t snd_una_ = 0;           // lowest unacknowledged
  std::uint32_t peer_window_;           // units the peer accepts beyond snd_una_ (first a guess)
  std::size_t outstanding_ = 0;         // sent, not acknowledged, not marked lost
  std::size_t lost_pending_ = 0;        // units marked lost, not yet resent
  std::uint32_t highest_acked_ = 0;     // one past the highest seq acknowledged in any way
  // RTT (RFC 6298) and congestion control (NewReno, RFC 6582), in packets.
  std::chrono::microseconds srtt_{0}, rttvar_{0}, latest_rtt_{0}, min_rtt_{0};
  time_point largest_acked_sent_at_{};  // when the most recently sent acknowledged unit left
  std::optional<time_point> loss_time_;  // when an outstanding unit reaches the time threshold
  std::uint32_t loss_window_start_ = 0, loss_window_end_ = 0, losses_in_window_ = 0;
  bool have_rtt_ = false;
  int rto_backoff_ = 0;
  int loss_probes_ = 0;             // loss probes since the last acknowledgement that made progress
  time_point rto_started_{};        // the retransmission timer runs from here
  std::uint32_t cwnd_;
  std::uint32_t ssthresh_ = 1u << 24;
  std::uint32_t cwnd_credit_ = 0;   // acked packets toward the next +1 in avoidance
  std::uint32_t recovery_end_ = 0;  // no new reduction until this seq is acknowledged
  bool in_recovery_ = false;
  // Reordering tolerance: later units acknowledged before a unit is declared lost; grows when a
  // declared loss proves spurious.
  std::uint32_t reorder_packets_;
  // The window before the last reduction, and how many of the losses that made it are not yet
  // proven spurious: at zero the reduction is undone (Eifel, RFC 3522).
  std::uint32_t cwnd_before_cut_ = 0, ssthresh_before_cut_ = 0, cut_losses_unproven_ = 0;
  time_point next_send_{};          // pacing
  time_point last_sent_any_;        // for keepalives
  bool probe_due_ = false;          // zero window: one unit may go past it
  bool peer_window_known_ = false;  // peer_window_ came from the peer, not our first guess
  bool timed_out_ = false;          // the peer stayed silent past the idle timeout: failed
  std::optional<std::uint32_t> second_copy_;  // a small unit just resent, to send once more

  // Receiving side.
  std::uint32_t rcv_nxt_ = 0;
  std::size_t unreleased_ = 0;
  std::uint32_t unacked_in_ = 0;             // units received since our last ack
  std::optional<time_point> ack_due_;        // delayed ack deadline
  bool ack_now_ = false;
  time_point last_heard_;
};

}  // namespace kadnet::core
