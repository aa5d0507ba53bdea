#pragma once
// The node's protocol engine: every session of one node, request/response correlation,
// deadlines, option negotiation, PING and plugin dispatch. Sans-I/O.
//
// Contract for drivers (transports/):
//  * Stream transports: tell the engine about transport connections: dial() before connecting
//    out (then on_bytes as data arrives), accept() for an accepted one, on_transport_closed()
//    when a transport connection ends for any reason.
//  * Datagram transports: dial_datagram() to start a session to an address; every datagram
//    received goes to on_datagram(), which finds its session (or accepts a new one for a hello).
//    A connection's transmit holds whole packets back to back, one datagram each; the
//    connection's address is transport_address(). When wants_close(), send what is left and
//    call on_transport_closed().
//  * After every call into the engine, drain it: for each id in take_dirty(), write
//    take_transmit(id) to that connection and, if wants_close(id), close it once written (then
//    call on_transport_closed); then handle poll_event() until empty; then arm a timer for
//    next_deadline() and call handle_timeout(now) when it fires.
//  * Every call happens on one thread or strand at a time.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "kadnet/core/crypto/cookie_jar.hpp"
#include "kadnet/core/crypto/handshake.hpp"
#include "kadnet/core/deadline_heap.hpp"
#include "kadnet/core/fifo.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/core/node_config.hpp"
#include "kadnet/core/peer_address.hpp"
#include "kadnet/core/plugin_registry.hpp"
#include "kadnet/core/rpc_tracker.hpp"
#include "kadnet/core/session.hpp"
#include "kadnet/core/wire/message.hpp"

namespace kadnet::core {

// What a request came back with. On a NACK, ec is errc::nack (or a more specific code:
// unsupported_opcode, handler_failed, option_refused) and code/text say what the peer said.
struct reply {
  boost::system::error_code ec;
  byte_vector data;
  wire::nack_code code = wire::nack_code::unspecified;
  std::string text;
};

struct engine_counters {
  std::uint64_t sessions_opened = 0, handshakes_failed = 0, version_refusals = 0;
  std::uint64_t peers_cut_off = 0;
  std::uint64_t requests_sent = 0, requests_received = 0, replies_unmatched = 0;
  std::uint64_t timeouts = 0, nacks_sent = 0, malformed_messages = 0;
  std::uint64_t datagrams_dropped = 0;  // no session took them: forged, stale or unparseable
  // INTRODUCE (PROTOCOL.md 5.14): peers introduced to each other, punches asked of the driver,
  // punch datagrams received (dropped: they only open NATs), introductions refused for the rate.
  std::uint64_t introductions = 0, punches_wanted = 0, punches_received = 0, introductions_refused = 0;
  // RELAY (PROTOCOL.md 5.15): circuits relayed for others, the bytes carried on them, and
  // relayed sessions this node was the far end of.
  std::uint64_t circuits_relayed = 0, relayed_bytes = 0, relayed_sessions_accepted = 0;
  // Summed over closed sessions; live sessions add theirs in stats().
  session_counters sessions;
};

class node_engine {
 public:
  struct connected { connection_id connection; node_id peer; bool inbound; bool peer_dynamic_ip; };
  // A session that ended: before its handshake completed (peer unset) or after.
  struct disconnected {
    connection_id connection;
    std::optional<node_id> peer;
    boost::system::error_code ec;
    std::string text;  // e.g. the refusal a peer sent, for the user to see
  };
  struct request_done { request_id request; reply result; };
  // A one-way message (SHOUT, SPEAK, WHISPER, ...) for upper layers.
  struct incoming { connection_id connection; node_id peer; wire::message message; };
  // A peer told us where it listens; `addresses` passed the source-address check (PROTOCOL.md 7).
  struct announced { connection_id connection; node_id peer; std::vector<std::string> addresses; };
  // Something happened on one of a session's byte streams (datagram sessions).
  struct stream_event { connection_id connection; node_id peer; stream_id stream; stream_mux::event_kind kind; boost::system::error_code ec; };
  // A plugin message that came unreliably (an unreliable_data packet): no reply is owed.
  struct datagram_in { connection_id connection; node_id peer; std::uint8_t opcode; byte_vector payload; };
  // An INTRODUCE told us that `peer` is about to dial us from `address` (18 bytes): the driver
  // sends one punch packet there from the node's datagram socket, so that our NAT lets it in.
  struct punch_wanted { node_id peer; byte_vector address; };
  using event = std::variant<connected, disconnected, request_done, incoming, announced, stream_event, datagram_in,
                             punch_wanted>;
  // The 4-byte punch packet (outer type 6, empty).
  static byte_vector punch_packet();

  // `random` feeds ephemeral keys and cookie secrets; empty means libsodium's CSPRNG. A seeded
  // source is for tests and simulations that must replay a run exactly.
  node_engine(const identity& self, node_config config, crypto::random_source random = {});
  node_engine(const node_engine&) = delete;
  node_engine& operator=(const node_engine&) = delete;

  const node_id& id() const { return self_.id(); }
  const node_config& config() const { return config_; }
  plugin_registry& plugins() { return plugins_; }
  // Adds a URI to ANNOUNCE to peers from now on (the driver calls it once a listener is bound).
  void announce_on(std::string uri) { config_.announce_addresses.push_back(std::move(uri)); }

  // --- transport side ---
  // `peer_address` is the transport address (16-byte IPv6 or v4-mapped ‖ 2-byte port) of the
  // other end: it checks the peer's ANNOUNCE and tells the peer how it is seen.
  connection_id dial(time_point now, std::optional<node_id> expected, byte_vector peer_address = {});
  connection_id accept(time_point now, byte_vector peer_address);
  void on_bytes(connection_id c, time_point now, byte_span bytes);
  // `handshake_timeout` replaces the configured one for this dial (a punched dial gives up sooner).
  connection_id dial_datagram(time_point now, std::optional<node_id> expected, byte_vector peer_address,
                              std::optional<std::chrono::milliseconds> handshake_timeout = std::nullopt);
  void on_datagram(time_point now, const byte_vector& peer_address, byte_span datagram);
  // A driver that receives datagrams in batches (recvmmsg) brackets each batch: in between, the
  // sessions hold what the datagrams make them send (acknowledgements above all) until the
  // batch ends or max_held_datagrams have come in, so that one packet answers many.
  static constexpr std::size_t max_held_datagrams = 64;
  void begin_datagram_batch() { batching_ = true; }
  void end_datagram_batch(time_point now);
  // Empty for an unknown connection.
  byte_span transport_address(connection_id c) const;
  bool is_datagram(connection_id c) const;
  // Every datagram connection, open or closing (a driver that stops ends them all).
  std::vector<connection_id> datagram_connections() const;
  void on_transport_closed(connection_id c, boost::system::error_code ec);
  // Cuts a connection off (e.g. its peer does not read what we queue); on_transport_closed follows.
  void cut_off(connection_id c, boost::system::error_code ec, std::string why);
  void handle_timeout(time_point now);
  std::optional<time_point> next_deadline() const;

  std::vector<connection_id> take_dirty();
  byte_vector take_transmit(connection_id c);
  bool wants_close(connection_id c) const;
  std::optional<event> poll_event();

  // --- application side ---
  // Sends a request on an established connection and reports its reply as request_done with
  // the returned id (immediately, with an error, if the connection is not established).
  request_id request(time_point now, connection_id c, std::uint8_t opcode, wire::message_body body,
                     std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // Answers a request that surfaced as an `incoming` event (the DHT's FIND_NODE, FIND_VALUE,
  // STORE, SHOUT); `body` is the ACK or NACK.
  void respond(connection_id c, std::uint32_t message_id, wire::message_body body);
  // Sends a plugin message (opcode 64..255) once over a datagram session, unacknowledged and never
  // resent: it may be lost, duplicated or overtaken. Errors: not_connected, not_supported (a
  // stream session), too_large (beyond one datagram), bad_field (not a plugin opcode).
  boost::system::error_code send_unreliable(connection_id c, std::uint8_t opcode, byte_span payload);

  // Relayed sessions (PROTOCOL.md 5.15): dials `peer` through the node at the other end of
  // `via`, which must have a session with it. The new connection is an ordinary stream session
  // (reported as connected or disconnected like any dial) whose bytes travel in RELAY messages
  // over `via`: the engine carries them itself, so a driver never sees it in take_dirty().
  connection_id dial_relayed(time_point now, connection_id via, const node_id& peer);
  bool is_relayed(connection_id c) const { return relayed_.contains(c); }
  // Circuit ends one session may carry (our own relayed sessions through it, and those it
  // brought us); beyond it an open is NACKed rate_limited.
  static constexpr std::size_t max_circuits_per_session = 16;
  // A relayed session sends its bytes in RELAY data messages of at most relay_chunk bytes, at
  // most relay_window of them unanswered: so a relay holds at most that much per circuit.
  static constexpr std::size_t relay_chunk = 16 * 1024, relay_window = 4;

  // Byte streams over an established session of any transport (PROTOCOL.md 9.6); see
  // stream_mux for what each does. open_stream fails with not_connected (no such session) or
  // too_many (the session's limit).
  std::optional<stream_id> open_stream(connection_id c, boost::system::error_code& ec);
  // The application took stream s, which the peer opened: its window opens (stream_mux::accept).
  void accept_stream(connection_id c, stream_id s);
  std::size_t write_stream(connection_id c, stream_id s, byte_span bytes);
  std::size_t read_stream(connection_id c, stream_id s, mutable_byte_span out);
  bool stream_at_end(connection_id c, stream_id s);
  void shutdown_stream(connection_id c, stream_id s);
  void close_stream(connection_id c, stream_id s);
  void reset_stream(connection_id c, stream_id s,
                    stream_mux::reset_code code = stream_mux::reset_code::abandoned);

  // The established connection to a peer, if any.
  std::optional<connection_id> connection_to(const node_id& peer) const;
  // The peer at the other end of an established connection.
  std::optional<node_id> peer_of(connection_id c) const;
  struct peer_info {
    connection_id connection;
    node_id peer;
    bool inbound;
    std::optional<compression::codec_id> sending_with;
    std::vector<std::string> addresses;  // what it ANNOUNCEd, checked
    session_counters counters;
    std::string seen_at;  // its transport address as we see it ("203.0.113.7:4000"), "" if unknown
    bool relayed = false;  // the session runs through a relay (PROTOCOL.md 5.15)
  };
  std::vector<peer_info> peers() const;
  engine_counters stats() const;
  // How the latest peer to answer our ANNOUNCE sees us ("203.0.113.7:51234"), if any.
  const std::optional<std::string>& observed_address() const { return observed_self_; }

 private:
  struct connection_state {
    connection_state(session s, bool in) : sess(std::move(s)), inbound(in) {}
    session sess;
    time_point handshake_deadline;
    codec_set peer_acked;  // methods the peer accepts from us (it ACKed option 0)
    std::size_t inbound_pending = 0;
    time_point last_active{};  // last message in or out, for ℓ's least-recently-used choice
    std::optional<time_point> timer;     // when the session wants time (datagram sessions, byte streams)
    std::vector<std::string> announced;  // the peer's checked ANNOUNCE
    // Made for the first plugin request and dropped when the connection goes away, so that late
    // plugin replies are dropped (most sessions never see a plugin request: no allocation).
    std::shared_ptr<bool> alive;
    // The small fields last, together: one of these states per session, thousands per process.
    fixed_address address;  // the peer's transport address (empty: unknown)
    bool inbound;
    bool closing = false;
    bool established_reported = false;
    std::optional<compression::codec_id> peer_prefers;
  };

  connection_id add_connection(session s, bool inbound, time_point now, fixed_address peer_address,
                               std::optional<std::chrono::milliseconds> handshake_timeout = std::nullopt);
  // Datagram sessions: feeds one datagram to a connection; false if the session did not take it.
  bool feed_datagram(connection_id c, time_point now, byte_span datagram);
  void flush_held(time_point now);
  // Files the session's next deadline (datagram sessions, byte streams) in timers_.
  void reschedule(connection_id c, connection_state& st);
  // Whether timers_'s entry (c, at) is c's current deadline.
  bool timer_is_current(connection_id c, time_point at) const;
  // NACKs the plugin requests whose handlers let handler_timeout pass, freeing their places.
  void expire_handler_waits(time_point now);
  void on_announce(connection_id c, connection_state& st, const wire::message& m);
  // INTRODUCE (node_engine_introductions.cpp): as the node both peers know (no address), or as
  // the one introduced to (address).
  void on_introduce(connection_id c, connection_state& st, const wire::message& m);
  bool take_introduction_budget(time_point now);
  // RELAY (node_engine_relay.cpp).
  struct circuit_key {
    connection_id connection;  // the session this leg of the circuit runs on
    std::uint32_t id;          // numbered by the leg's opener
    bool opened_by_us;
    friend bool operator==(const circuit_key&, const circuit_key&) = default;
    struct hash {
      std::size_t operator()(const circuit_key& k) const noexcept {
        return std::hash<std::uint64_t>()(k.connection * 0x9e3779b97f4a7c15ull ^ (std::uint64_t{k.id} << 1 | k.opened_by_us));
      }
    };
  };
  // One leg as this node sees it: we are an end (`inner` is our session through it), or we
  // relay it to the `other` leg.
  struct circuit {
    connection_id inner = 0;
    std::optional<circuit_key> other;
    std::size_t unanswered = 0;  // relayed legs: data from this leg's peer we passed on, unanswered
  };
  // Our end of a circuit: what the inner session sent that is not out yet, and how many data
  // messages are unanswered.
  struct relayed_connection {
    circuit_key key;
    bool open = false;  // the far end accepted (our dial) or we accepted (theirs)
    byte_vector pending{};
    std::size_t pending_from = 0;
    std::size_t in_flight = 0;
  };
  struct relay_request {
    enum kind_t : std::uint8_t { open_out, data_out, close_out, forward_open, forward } kind;
    circuit_key key;                 // the leg the request went out on
    connection_id asker = 0;         // forward: the node whose request we passed on
    std::uint32_t asker_message = 0;
  };
  void on_relay(connection_id c, connection_state& st, const wire::message& m);
  void send_relay(const circuit_key& leg, wire::relay body, relay_request pending);
  void finish_relay_request(request_id r, const reply& result);
  // Moves what an inner session sent into RELAY data messages; ends the circuit once it closed.
  void flush_relayed(connection_id inner);
  // Ends one leg: our end closes its inner session; a relayed leg tells the other leg.
  void end_leg(const circuit_key& key, boost::system::error_code ec, const std::string& why);
  void send_relay_close(const circuit_key& leg);
  // A session went away: every circuit leg on it ends.
  void drop_circuits_of(connection_id c);
  std::size_t circuits_on(connection_id c) const;
  struct passed_on_count { std::size_t opens = 0, data = 0; };
  passed_on_count passed_on_for(connection_id asker) const;
  // Whether `c` carries a relayed session this node opened (closing `c` would end it).
  bool carries_own_circuit(connection_id c) const;
  // A circuit id for a leg this node opens on `via`: the counter wraps after 2^32 opens, so an
  // id still open there (at most max_circuits_per_session are) is skipped, and so is 0.
  std::uint32_t fresh_circuit_id(connection_id via);
  // The answer of the peer we asked to punch (or the failure of that request) goes back to the
  // node that asked us for the introduction.
  void finish_introduction(request_id r, const reply& result);
  // Requests the engine sent on behalf of another node (INTRODUCE, RELAY): their answer or
  // failure goes to finish_introduction / finish_relay_request. False for any other request.
  bool finish_passed_on(const rpc_tracker::entry& e, const reply& result);
  // Answers `asker`'s request with the failure of the one we passed on for it.
  void nack_passed_on(connection_id asker, std::uint8_t opcode, std::uint32_t message_id, const reply& result);
  void pump_session(connection_id c, connection_state& st, time_point now);
  request_id start_request(time_point now, connection_id c, std::uint8_t opcode,
                           wire::message_body body, std::optional<std::chrono::milliseconds> timeout,
                           bool internal);
  void on_established(connection_id c, connection_state& st, time_point now);
  void on_message(connection_id c, connection_state& st, byte_vector bytes);
  void on_reply(connection_id c, const wire::message& m);
  void on_unreliable(connection_id c, connection_state& st, const byte_vector& bytes);
  void on_request(connection_id c, connection_state& st, wire::message m);
  void dispatch_plugin(connection_id c, connection_state& st, const wire::message& m);
  void send_reply(connection_id c, std::uint32_t id, wire::message_body body);
  void send_nack(connection_id c, std::uint8_t opcode, std::uint32_t id, wire::nack_code code,
                 std::string text, byte_vector data = {});
  boost::system::error_code send_message(connection_id c, connection_state& st, const wire::message& m);
  void fail_requests(connection_id c, boost::system::error_code ec);
  std::optional<compression::codec_id> send_method(const connection_state& st) const;
  void mark_dirty(connection_id c) { dirty_.insert(c); }
  // Points by_peer_ for `peer` at an established, open session other than `gone`, or drops it.
  void rebind_peer(const node_id& peer, connection_id gone);
  void update_load(time_point now);
  // The stream mux of an open session, or null when it has none (then it has no streams either).
  stream_mux* streams_of(connection_id c);
  // Seals what a session's streams queued and files its next deadline.
  void flush_streams(connection_id c);
  // Keeps at most config_.max_outbound_sessions dialed sessions (ℓ), closing idle ones.
  void enforce_outbound_limit(connection_id keep);

  const identity self_;  // a copy: callers may pass a temporary
  node_config config_;
  std::shared_ptr<const datagram_settings> datagram_;  // config_.datagram, shared by the sessions
  crypto::random_source random_;
  crypto::responder responder_;
  crypto::cookie_jar cookies_;
  responder_context responder_context_;
  plugin_registry plugins_;
  rpc_tracker rpcs_;
  std::unordered_map<connection_id, connection_state> connections_;
  std::unordered_map<node_id, connection_id> by_peer_;
  // Datagram sessions by transport address (at most max_sessions_per_address each), and their
  // deadlines. One small node per session: no key or list on the heap of its own.
  std::unordered_multimap<fixed_address, connection_id, fixed_address::hash> by_address_;
  deadline_heap<connection_id> timers_;  // an entry is current while it equals the session's `timer`
  // Deadlines of the handshakes under way.
  std::set<std::pair<time_point, connection_id>> handshake_deadlines_;
  // Deadlines of the plugin requests handed to handlers (node_config::handler_timeout), with the
  // flag their reply function shares: set once the request is answered either way. A reply
  // erases its entry; an entry nobody answers is erased when it expires.
  struct handler_wait {
    connection_id connection;
    node_id peer;
    std::uint8_t opcode;
    std::uint32_t message_id;
    std::shared_ptr<bool> answered;
  };
  std::multimap<time_point, handler_wait> handler_deadlines_;
  // Plugin requests each peer has waiting on our handlers, across its sessions: an entry lives
  // until its handler answers or handler_timeout passes, even when the session ends meanwhile,
  // so a peer cannot reconnect its way past max_inbound_requests_per_peer.
  std::unordered_map<node_id, std::size_t> handlers_waiting_;
  void handler_wait_over(const handler_wait& w);
  std::unordered_set<connection_id> dirty_;
  fifo<event> events_;
  connection_id next_connection_ = 1;
  request_id next_request_ = 1;
  time_point load_window_start_{};
  std::size_t handshakes_in_window_ = 0;
  engine_counters counters_;
  // Datagram batches: whether one is open, the sessions holding output, datagrams fed.
  bool batching_ = false;
  std::vector<connection_id> holding_;
  std::size_t held_datagrams_ = 0;
  std::optional<std::string> observed_self_;
  // Introductions we forwarded, by our request to the peer introduced: who asked, and its message.
  struct pending_introduction { connection_id asker; std::uint32_t message_id; connection_id target; };
  std::unordered_map<request_id, pending_introduction> introductions_;
  std::unordered_map<circuit_key, circuit, circuit_key::hash> circuits_;
  std::unordered_map<connection_id, relayed_connection> relayed_;
  std::unordered_map<request_id, relay_request> relay_requests_;
  // What we passed on for each asker and the next hop has not answered yet: kept per asker, not
  // per circuit, as a circuit closed early leaves its passed-on requests waiting (opening and
  // closing again must not let a peer pile up requests on us and sessions at the far end).
  std::unordered_map<connection_id, passed_on_count> relayed_for_;  // no entry: nothing waiting
  std::size_t opens_passed_on_ = 0;  // summed over every asker: within max_relayed_circuits
  std::uint32_t next_circuit_ = 1;
  std::size_t circuits_relayed_now_ = 0;
  time_point introduction_window_start_{};
  std::size_t introductions_in_window_ = 0;
  time_point last_now_{};  // the latest time a driver gave us, for calls that bring none
  byte_vector scratch_;
};

}  // namespace kadnet::core
