#pragma once
// The byte streams of one session (seed 004: any number of reliable, ordered streams to a peer
// over one socket), sans-I/O. Each stream is a reliable_channel of its own (sequence numbers,
// SACK, RTO, congestion and flow control) whose units are `flags | bytes`; the session seals the
// mux's frames as `stream` packets (type 11) and hands the opened ones back. On a stream session
// (TCP, WebSocket, a relay) the channels are lossless: the transport resends and paces, and a
// channel keeps only its numbering, acknowledgements and window (PROTOCOL.md 9.6).
//
//  stream frame:  stream id u32 | kind u8 | body
//    kind 0  data:   a reliable_data body (seq | ack block | unit)
//    kind 1  ack:    an ack block
//    kind 2  reset:  code u8 — the sender abandoned the stream in both directions
//  unit:          flags u8 (bit 0: FIN, no more bytes from the sender) | bytes
//
// The dialing side of the session opens odd ids, the accepting side even ones; a data frame for
// an unknown id of the peer's parity, above every id it used before, opens a stream (the opener
// sends an empty unit at once, so the peer learns of the stream before any bytes flow). A stream whose
// both directions ended (FIN sent and acknowledged, FIN received and read) lingers a moment to
// acknowledge late resends, then is freed.
//
// Memory is bounded per session, each way: every stream may hold window_units, and a busy one
// grows its window (receiving) or send queue (sending) by doubling up to max_window_units, the
// growth of all the session's streams together drawing on session_window_units. A stream's
// growth returns to that allowance when it is freed.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/crypto/session_cipher.hpp"
#include "kadnet/core/fifo.hpp"
#include "kadnet/core/reliable_channel.hpp"

namespace kadnet::core {

using stream_id = std::uint32_t;

struct stream_limits {
  std::size_t max_streams = 4096;              // open at once per session, both directions
  std::uint32_t window_units = 256;            // every stream's receive window and send queue (~280 KB)...
  // ...but a stream the peer opened receives this much (~17 KB) until the application accepts it:
  // a peer cannot park a full window in every stream of the accept backlog.
  std::uint32_t unaccepted_window_units = 16;
  std::uint32_t max_window_units = 1024;       // ...a busy stream's, at most (~1.1 MB)...
  std::uint32_t session_window_units = 4096;   // ...and all growth beyond window_units, per session
  std::chrono::milliseconds linger{2000};      // a finished stream answers late resends this long
  // A stream session's streams (lossless) have no congestion window: together they keep at most
  // this many units unacknowledged (~280 KB), so a TCP link's queue or a relay's holds no more.
  std::uint32_t lossless_flight_units = 256;
};

class stream_mux {
 public:
  // Bytes of a stream in one unit: a datagram less the seal, the frame's headers and the flags.
  static constexpr std::size_t max_unit_bytes =
      wire::max_datagram_size - crypto::packet_sealer::overhead - 5 - reliable_channel::max_header - 1;

  enum class event_kind {
    opened,    // the peer opened this stream
    readable,  // bytes (or the end of the stream) arrived
    writable,  // room again for write() after it accepted less than asked
    failed,    // reset by the peer (ec = errc::connection_closed, or errc::protocol_not_served for
               // reset_code::protocol_not_served); nothing more will happen
    closed,    // both directions ended and the stream was freed
  };
  struct event {
    stream_id stream;
    event_kind kind;
    boost::system::error_code ec;
  };

  // `lossless`: the session's transport loses and reorders nothing (a stream session).
  stream_mux(bool dialer, stream_limits limits, bool lossless = false);

  // Opens a stream; nullopt when max_streams are open.
  std::optional<stream_id> open(time_point now);
  // The application took a stream the peer opened: its receive window opens to window_units
  // (the peer hears of it at once).
  void accept(stream_id id);
  // The session's estimate of the path's round trip, which streams opened from now on start
  // with (reliable_channel::assume_path_rtt).
  void set_path_rtt(const std::optional<reliable_channel::rtt_estimate>& rtt) { path_rtt_ = rtt; }
  // Queues bytes; returns how many were taken (fewer when the stream's send queue is full: a
  // `writable` event follows when there is room). 0 for an unknown, shut or reset stream.
  std::size_t write(stream_id id, byte_span data);
  // Copies bytes that arrived, in order; 0 when none are waiting (see at_end()).
  std::size_t read(stream_id id, mutable_byte_span out);
  // The peer ended its direction and every byte before the end was read.
  bool at_end(stream_id id) const;
  // Ends this side's direction once the queued bytes are sent (a FIN).
  void shutdown(stream_id id);
  // shutdown(), and bytes still arriving are discarded; the stream is freed once both ends are done.
  void close(stream_id id);
  // Why a stream was reset, in its reset frame (PROTOCOL.md 9.6).
  enum class reset_code : std::uint8_t {
    abandoned = 0,            // the sender gave up on the stream
    protocol_not_served = 1,  // the receiver serves no stream of the protocol its header named
  };
  // Abandons the stream in both directions at once and tells the peer why.
  void reset(stream_id id, reset_code code = reset_code::abandoned);
  bool contains(stream_id id) const { return streams_.count(id) != 0; }
  // Streams this side opened and has not closed: the application's own, which a peer cannot
  // keep alive on its own.
  std::size_t opened_here_and_open() const;
  std::size_t size() const { return streams_.size(); }
  // A stream's current flow-control limits, in units (for tests and diagnostics).
  struct windows { std::uint32_t receive; std::size_t send_queue; };
  std::optional<windows> windows_of(stream_id id) const;
  // A stream's channel counters (resends, units dropped past the window...), for tests and diagnostics.
  std::optional<reliable_counters> counters_of(stream_id id) const;

  // A stream frame from the peer (after opening). Malformed frames are counted and ignored.
  boost::system::error_code on_frame(byte_span plaintext, time_point now);
  // Plaintexts of stream frames to seal and send.
  std::optional<byte_vector> poll_transmit(time_point now);
  std::optional<event> poll_event();
  void handle_timeout(time_point now);
  std::optional<time_point> next_deadline() const;

  std::uint64_t malformed() const { return malformed_; }

 private:
  struct stream_state {
    stream_state(std::shared_ptr<const reliable_config> c, time_point now) : channel(std::move(c), now) {}
    reliable_channel channel;
    fifo<byte_vector> incoming;        // delivered units, flags byte stripped
    std::size_t read_offset = 0;       // into incoming.front()
    bool fin_received = false;         // the peer's FIN unit was delivered
    bool fin_wanted = false;           // shutdown() was called: write() takes nothing more
    bool fin_queued = false;           // ...and the FIN unit is in the channel
    bool discarding = false;           // closed by the application: incoming bytes are dropped
    bool write_blocked = false;        // write() took less than asked; owe a `writable`
    std::optional<time_point> linger_until;
    // Window growth drawn from the session's allowance, and units read since the last step.
    std::uint32_t receive_growth = 0, send_growth = 0, read_since_widening = 0;
  };
  using stream_map = std::map<stream_id, stream_state>;

  // `by_peer`: the peer opened it (its window stays small until accept()).
  stream_state& create(stream_id id, time_point now, bool by_peer);
  // Frees a stream and gives its window growth back to the session's allowance.
  stream_map::iterator erase(stream_map::iterator it);
  // A reader that consumed a whole window since the last step doubles it (allowance permitting).
  void widen_receive_window(stream_state& s);
  // A writer whose send queue is full while the peer's window would take more gets a longer
  // queue (allowance permitting). True if the queue grew.
  bool lengthen_send_queue(stream_state& s);
  void after_input(stream_id id, stream_state& s, time_point now);
  void check_done(stream_id id, stream_state& s, time_point now);
  void queue_reset(stream_id id, reset_code code = reset_code::abandoned);
  void queue_fin(stream_state& s);

  // Units sent and not yet acknowledged, all streams together.
  std::size_t units_in_flight() const;

  // Whether this side opened the stream (the dialer opens odd ids).
  bool opened_here(stream_id id) const { return (id % 2 == 1) == dialer_; }

  bool dialer_;
  stream_limits limits_;
  std::optional<reliable_channel::rtt_estimate> path_rtt_;
  std::shared_ptr<const reliable_config> channel_config_;  // shared by the streams' channels...
  std::shared_ptr<const reliable_config> unaccepted_config_;  // ...and those the peer opened
  std::uint32_t max_window_;  // max_window_units, never below window_units
  std::uint32_t receive_growth_ = 0, send_growth_ = 0;  // drawn from session_window_units
  stream_map streams_;
  stream_id next_local_;
  stream_id highest_peer_ = 0;
  fifo<byte_vector> resets_out_;
  fifo<event> events_;
  std::uint64_t malformed_ = 0;
  time_point now_{};
};

}  // namespace kadnet::core
