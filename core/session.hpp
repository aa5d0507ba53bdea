#pragma once
// One secure session over a stream transport (TCP, WebSocket) or a datagram path (UDP, the
// simulator), sans-I/O.
//
// Contract: the driver feeds every byte it reads to handle_bytes() (stream) or every datagram to
// handle_datagram(), then drains take_transmit() and poll_event() until empty. send() queues an
// opcode message, which leaves through take_transmit(): bytes to write in order on a stream;
// whole packets back to back on a datagram path, each of which is one datagram (the outer
// header's length tells where the next begins). A datagram session also wants time:
// handle_timeout(now) at next_deadline(). A session that reports `failed` is finished: the driver
// sends what take_transmit() still holds (a refusal, a farewell) and closes the transport.
//
// The session runs the hello handshake (PROTOCOL.md 3), then seals every packet, splits messages
// into fragments and unwraps envelopes. On a stream the fragments are stream_data packets; on a
// datagram path they are the units of a reliable_channel (PROTOCOL.md 9), which resends what
// is lost. It decodes no opcode messages: the engine does, so that it can NACK a message whose
// body is malformed.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/crypto/cookie_jar.hpp"
#include "kadnet/core/crypto/handshake.hpp"
#include "kadnet/core/crypto/session_cipher.hpp"
#include "kadnet/core/envelope.hpp"
#include "kadnet/core/fifo.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/core/reliable_channel.hpp"
#include "kadnet/core/stream_mux.hpp"
#include "kadnet/core/wire/packet.hpp"

namespace kadnet::core {

// What a responder session needs from its node for the handshake.
struct responder_context {
  crypto::responder* responder = nullptr;
  crypto::cookie_jar* cookies = nullptr;
  bool under_load = false;  // set by the engine from its handshake rate
};

struct session_limits {
  std::size_t max_message_size = (1u << 20) + 1024;
  std::size_t compression_threshold = default_compression_threshold;
  int max_auth_failures = 16;  // forged or altered packets tolerated before the peer is cut off
};

// How a session's packets travel.
enum class framing : std::uint8_t { stream, datagram };

// A node's session settings, shared by its sessions: the reliable channel's and the hello's
// resend schedule (datagram sessions), and the byte streams' limits (every session).
struct datagram_settings {
  reliable_config channel;
  stream_limits streams;
  std::chrono::milliseconds first_hello_resend{250};  // doubles on each resend
};

struct session_counters {
  std::uint64_t packets_in = 0, packets_out = 0, bytes_in = 0, bytes_out = 0;
  std::uint64_t auth_failures = 0, replays = 0, malformed = 0;
  std::uint64_t messages_in = 0, messages_out = 0;
  std::uint64_t cookie_challenges = 0;  // hellos answered with a cookie instead of a session

  session_counters& operator+=(const session_counters& o) {
    packets_in += o.packets_in, packets_out += o.packets_out;
    bytes_in += o.bytes_in, bytes_out += o.bytes_out;
    auth_failures += o.auth_failures, replays += o.replays, malformed += o.malformed;
    messages_in += o.messages_in, messages_out += o.messages_out;
    cookie_challenges += o.cookie_challenges;
    return *this;
  }
};

// Who the peer of an established session is (its keys live only in the sealer and opener).
struct session_peer {
  node_id peer;
  bool peer_dynamic_ip = false;
};

class session {
 public:
  struct established { session_peer peer; };
  struct message { byte_vector bytes; };  // one opcode message, decompressed
  struct failed {
    boost::system::error_code ec;
    std::string text;  // a refusal's text, or detail for the log
  };
  using stream_event = stream_mux::event;
  struct unreliable_message { byte_vector bytes; };  // an opcode message from an unreliable_data packet
  using event = std::variant<established, message, failed, stream_event, unreliable_message>;

  // A dialing session; its hello is queued at once.
  // `settings` are the node's (for its byte streams); null means the defaults.
  static session dial(const identity& self, const crypto::hello_options& options, std::optional<node_id> expected,
                      session_limits limits, crypto::random_source random = {},
                      std::shared_ptr<const datagram_settings> settings = nullptr);
  // An accepted session. `peer_address` is the transport's source address (for cookies).
  static session accept(responder_context& context, byte_vector peer_address,
                        session_limits limits, std::shared_ptr<const datagram_settings> settings = nullptr);
  // The same on a datagram path. `settings` are the node's, shared by its sessions rather than
  // copied into each; null means the defaults.
  static session dial_datagram(const identity& self, const crypto::hello_options& options, std::optional<node_id> expected,
                               session_limits limits, std::shared_ptr<const datagram_settings> settings,
                               time_point now, crypto::random_source random = {});
  static session accept_datagram(responder_context& context, byte_vector peer_address,
                                 session_limits limits, std::shared_ptr<const datagram_settings> settings,
                                 time_point now);

  void handle_bytes(byte_span bytes, std::uint64_t now_ms);
  // One datagram (one outer packet). False when the session did not take it: unparseable, or
  // sealed but not for this session (it fails authentication; the caller may try another
  // session from the same address, and counts it if none takes it). Bad datagrams never end a
  // session on their own.
  // With `hold_output`, what the datagram makes the session send (acknowledgements, data its
  // window now allows) waits for flush_output(): the caller feeds a batch of datagrams first, so
  // that one acknowledgement answers the batch rather than every second unit of it.
  bool handle_datagram(byte_span datagram, time_point now, bool hold_output = false);
  void flush_output();
  // Datagram sessions: resends, acknowledgements, keepalives and the idle timeout; stream
  // sessions with byte streams: the streams' acknowledgements.
  void handle_timeout(time_point now);
  std::optional<time_point> next_deadline() const;
  // Datagram sessions: tells the peer the session ends (a sealed farewell) so that it need not
  // wait for the idle timeout. Does nothing on a stream, where closing the transport says it.
  void say_farewell();
  // Whether `datagram` is the hello this (responder) session already answered: the initiator
  // did not get our answer and asked again. handle_datagram() answers it again, or drops it
  // once a sealed packet from the initiator showed that the answer arrived.
  bool is_repeated_hello(byte_span datagram) const;
  // Whether an initiator still waiting for its answer would take this hello as that answer
  // (checked without changing anything: a simultaneous dial from the same address is not).
  bool awaits_hello(byte_span datagram) const;
  // An initiator still waiting for the responder's hello keeps a few sealed datagrams that
  // overtook it and opens them once the keys exist (otherwise they wait for a resend).
  void keep_early(byte_span datagram);
  framing transport_framing() const { return framing_; }
  // Tells a session the time before send() or handle_bytes(): channels stamp units with it (a
  // stale clock would make the first unit after a pause look overdue at once).
  void advance_clock(time_point now) { now_ = std::max(now_, now); }
  // The session's byte streams, null until a stream is opened or a stream frame arrives (most
  // sessions never carry one, and the mux is not free). After calling into them, flush() seals
  // what they want to send.
  stream_mux* streams() { return streams_.get(); }
  std::size_t streams_opened_here() const { return streams_ ? streams_->opened_here_and_open() : 0; }
  // The same, building the mux if there is none yet: null only before the handshake completed
  // or after the session failed. For opening a stream.
  stream_mux* ensure_streams();
  void flush() {
    if (state_ == state::established) pump_channel();
  }
  const reliable_channel* channel() const { return channel_ ? &*channel_ : nullptr; }
  // Queues an opcode message; `compress_with` is the negotiated method, if any.
  // Returns errc::not_connected before the handshake completed, errc::too_large when over the
  // limit.
  boost::system::error_code send(byte_span opcode_message,
                                 std::optional<compression::codec_id> compress_with);

  // Datagram sessions: sends an opcode message once, unacknowledged and never resent, in one
  // unreliable_data packet (PROTOCOL.md 9.4). Errors: not_supported on a stream, not_connected
  // before the handshake, too_large beyond max_unreliable_message.
  static constexpr std::size_t max_unreliable_message = wire::max_datagram_size - 28 - 1;
  boost::system::error_code send_unreliable(byte_span opcode_message);

  byte_vector take_transmit();
  bool has_transmit() const { return !transmit_.empty(); }
  std::optional<event> poll_event();

  bool is_established() const { return state_ == state::established; }
  bool is_failed() const { return state_ == state::failed; }
  const std::optional<session_peer>& peer() const { return peer_; }
  const session_counters& counters() const { return counters_; }
  // Heap bytes the session holds between calls beyond its own size (a partial message, packets
  // not yet taken, the handshake's state and a hello it may have to send again), for tests and
  // memory accounting.
  std::size_t buffer_capacity() const;
  // Codecs this side ACKed and therefore accepts in incoming envelopes.
  codec_set& accepted_codecs() { return accepted_codecs_; }

 private:
  enum class state : std::uint8_t { handshaking, established, failed };
  // What only the handshake needs.
  struct handshake_state {
    std::unique_ptr<crypto::initiator_handshake> initiator;  // set when we dialed
    responder_context* responder = nullptr;
    byte_vector peer_address;  // for the responder's cookies
    int hellos_seen = 0;
    // Datagram handshakes: the last hello we sent (resent until answered), and as a responder
    // our answer (sent again if the initiator asks again).
    byte_vector last_hello_out;
    std::optional<time_point> hello_resend_at;
    std::chrono::milliseconds hello_resend_wait{0};
    std::vector<byte_vector> early;  // sealed datagrams that arrived before our keys
  };
  // A hello's fingerprint: a responder recognises a repeated hello by it for the whole session.
  using hello_digest = std::array<std::uint8_t, 16>;
  static hello_digest digest_of(byte_span hello);

  session(session_limits limits, std::shared_ptr<const datagram_settings> settings);
  crypto::initiator_handshake* initiator() const {
    return handshake_ ? handshake_->initiator.get() : nullptr;
  }

  void on_packet(const wire::packet_view& p, std::uint64_t now_ms);
  void on_handshake_packet(const wire::packet_view& p, std::uint64_t now_ms);
  void on_sealed_packet(const wire::packet_view& p);
  void on_fragment(byte_span plaintext);
  // A whole message's envelope: unwrapped into a `message` event.
  void on_envelope(byte_span envelope);
  void on_channel_packet(const wire::packet_view& p, byte_span plaintext);
  void complete_handshake(crypto::handshake_result result);
  void fail(boost::system::error_code ec, std::string text = {});
  void queue_handshake(byte_span packet);
  // Moves the channel's (datagram sessions) and the streams' frames into sealed packets, and
  // what they delivered into events and messages.
  void pump_channel();
  // A `stream` packet's plaintext: a frame for the session's byte streams.
  void on_stream_frame(byte_span plaintext);
  void seal_frames();      // the channels' and streams' frames into sealed packets
  void deliver_input();    // stream events, and the channel's units into messages

  session_limits limits_;
  framing framing_ = framing::stream;
  state state_ = state::handshaking;
  bool dialer_ = false;  // we dialed (the stream mux opens odd ids)
  std::optional<hello_digest> answered_hello_;  // datagram responders: the hello we answered
  time_point now_{};
  std::shared_ptr<const datagram_settings> settings_;  // the node's (never null)
  // Released once established; a datagram responder keeps it (its answer) until the first
  // sealed packet from the initiator opens.
  std::unique_ptr<handshake_state> handshake_;
  std::optional<reliable_channel> channel_;
  std::unique_ptr<stream_mux> streams_;  // built on first use (ensure_streams)
  std::optional<session_peer> peer_;
  std::optional<crypto::packet_sealer> sealer_;
  std::optional<crypto::packet_opener> opener_;
  // Stream sessions only, made on their first bytes: datagram sessions, most of a node's, need none.
  std::unique_ptr<wire::stream_packet_reader> reader_;
  byte_vector reassembly_;  // a message over one fragment, until its last fragment
  byte_vector transmit_;
  fifo<event> events_;
  codec_set accepted_codecs_;
  session_counters counters_;
};

}  // namespace kadnet::core
