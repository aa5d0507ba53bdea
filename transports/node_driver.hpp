#pragma once
// Pumps a node's sans-I/O engine with Asio: TCP listeners and links, the deadline timer, and the
// completion of user operations. Everything runs on the node's strand; the public `node` class
// (transports/node.hpp) posts onto it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "kadnet/core/identity.hpp"
#include "kadnet/core/node_engine.hpp"
#include "kadnet/dht/dht_node.hpp"
#include "kadnet/dht/seen_cache.hpp"
#include "kadnet/dht/sqlite_store.hpp"
#include "kadnet/dht/value_store.hpp"
#include "kadnet/transports/completion.hpp"
#include "kadnet/transports/link.hpp"
#include "kadnet/transports/stream_state.hpp"
#include "kadnet/transports/udp_port.hpp"
#include "kadnet/transports/uri.hpp"
#include "kadnet/transports/ws_link.hpp"

namespace kadnet::transports {

// Whom to talk to: a NodeId — the session we have with it, else one dialed where the DHT finds it
// (through an introduction when it only dials out, PROTOCOL.md 5.14) — or an address to dial
// (reused once dialed).
using peer_ref = std::variant<core::node_id, uri>;
// Parses "tcp://host:port", "udp://host:port", "ws://host:port" or 64 hex digits; nullopt with `problem` set otherwise.
std::optional<peer_ref> parse_peer_ref(std::string_view text, std::string* problem = nullptr);

using reply_handler = boost::asio::any_completion_handler<void(boost::system::error_code, core::reply)>;
using stream_handler =
    boost::asio::any_completion_handler<void(boost::system::error_code, std::shared_ptr<stream_state>)>;
using connect_handler = boost::asio::any_completion_handler<void(boost::system::error_code, core::node_id)>;

// The node's DHT: on by default, in memory unless a data directory keeps its values and a
// routing-table snapshot (for a fast rejoin) in SQLite.
struct dht_settings {
  bool enabled = true;
  dht::dht_config config;
  std::optional<std::filesystem::path> data_dir;
  // With a data directory: how often the routing table is saved while the node runs (at the
  // node's first activity after each interval; keepalives make that soon), and once more when
  // it stops, so that a node killed without a stop rejoins from a recent table. An empty table
  // is never saved.
  std::chrono::milliseconds snapshot_interval{std::chrono::seconds(60)};
};

// What became of the SPEAKs, WHISPERs and SHOUTs that reached the node (node_driver_broadcast.cpp).
struct message_counters {
  std::uint64_t speaks_received = 0;     // new speaks, handed to the application
  std::uint64_t speaks_duplicate = 0;    // speaks seen before (or our own, come back): dropped
  std::uint64_t speaks_forwarded = 0;    // speaks sent on to our other peers, as the application asked
  std::uint64_t whispers_received = 0;   // handed to the application
  std::uint64_t whispers_unopened = 0;   // sealed, but not to our key or altered: dropped
  std::uint64_t whispers_misattributed = 0;  // `sender` is not the session's peer: dropped
  std::uint64_t shouts_received = 0;     // delivered by the DHT's broadcast, each once
};

// FIND_NODE, FIND_VALUE and STORE: the requests the DHT answers.
bool is_dht_request(std::uint8_t opcode);

class node_driver : public std::enable_shared_from_this<node_driver> {
 public:
  using strand = boost::asio::strand<boost::asio::any_io_executor>;
  using dht_done = std::function<void(dht::dht_node::operation_done&)>;

  node_driver(boost::asio::any_io_executor ex, core::identity self, core::node_config config,
              dht_settings dht = {});
  ~node_driver();

  const strand& executor() const { return strand_; }
  boost::asio::any_io_executor any_executor() const { return strand_; }
  const core::identity& identity() const { return self_; }
  // Engine access for code already running on the strand.
  core::node_engine& engine() { return engine_; }

  // Binds a listener (synchronously, so bad addresses fail at start-up) and returns the bound URI.
  // udp:// binds the node's one UDP socket, which then carries every UDP session (a node that
  // dials udp:// before listening gets an ephemeral one; it cannot listen on udp:// after that).
  // ws:// listens for WebSocket upgrades (TCP sessions carried in binary messages).
  uri listen(const uri& where);
  std::vector<uri> listening() const;

  // The operations below must run on the strand; handlers are invoked on the strand.
  // `wait` (from cancellable; 0: not cancellable) names the wait for the session, for cancel_wait.
  void connect(uri where, std::optional<core::node_id> expected, std::uint64_t wait, connect_handler handler);
  // `call` (from cancellable; 0: not cancellable) names the request for cancel_request.
  void request(peer_ref target, std::uint8_t opcode, core::wire::message_body body, std::uint64_t call,
               reply_handler handler);
  // A request not yet answered completes with operation_aborted; a reply that comes later is
  // dropped (one not yet sent, waiting for its session, is never sent).
  void cancel_request(std::uint64_t call);
  // An operation still waiting for its session (connect, open_stream, send_datagram) completes
  // with operation_aborted and does nothing more. The dial or lookup under way goes on for
  // whoever else waits on it, and a session it makes stays; nothing was sent for this one, and
  // reaching its peer starts no further step (address, introduction, relay) for it.
  void cancel_wait(std::uint64_t wait);
  // Starts a DHT operation (`start` calls one of dht_node's operations) and calls `done` with its
  // result; fails with errc::dht_disabled when the node has no DHT, shutting_down once stopped.
  // `call` (from cancellable; 0: not cancellable) names the operation for cancel_dht.
  void run_dht(std::function<dht::operation_id(dht::dht_node&, core::time_point)> start, dht_done done,
               std::uint64_t call = 0);
  // A DHT operation not yet done completes with operation_aborted and stops (dht_node::abandon);
  // nothing when it is done already.
  void cancel_dht(std::uint64_t call);
  dht::dht_node* dht() { return dht_.get(); }
  // Listening (PROTOCOL.md 8.10): the handler that gets a subscription's versions, posted on the
  // strand; set it inside run_dht's `start`, before the first delivery can come.
  using listen_handler = std::function<void(const dht::listen_delivery&)>;
  void set_listen_handler(dht::operation_id subscription, listen_handler handler) {
    listen_handlers_[subscription] = std::move(handler);
  }
  // Ends a subscription (dht_node::cancel) and drops its handler; false when unknown.
  bool cancel_listen(dht::operation_id subscription);
  // Drops a handler whose subscription the DHT ended itself (its first registration failed).
  void drop_listen_handler(dht::operation_id subscription) { listen_handlers_.erase(subscription); }
  // Dials the contacts of the data directory's routing-table snapshot (at most k), then calls
  // `then` with how many answered.
  void rejoin_from_snapshot(std::function<void(std::size_t)> then);
  // Dials every URI at once; `then` gets how many answered and the last dial error.
  void dial_all(std::vector<uri> targets, std::function<void(std::size_t, boost::system::error_code)> then);

  // Unreliable plugin messages (PROTOCOL.md 9.4): a handler per opcode, on the strand.
  using datagram_handler = std::function<void(const core::node_id&, byte_span)>;
  void set_datagram_handler(std::uint8_t opcode, datagram_handler handler) { datagram_handlers_[opcode] = std::move(handler); }
  void send_datagram(peer_ref target, std::uint8_t opcode, byte_vector payload, std::uint64_t wait,
                     std::function<void(boost::system::error_code)> done);

  // SPEAK, WHISPER and SHOUT (node_driver_broadcast.cpp), on the strand. The application's
  // handlers run on the strand too, posted: never inside the engine's or the DHT's pump.
  using speak_handler = std::function<bool(const core::node_id& origin, const core::node_id& from_peer, byte_span payload)>;
  using whisper_handler = std::function<void(const core::node_id& sender, byte_span plaintext, bool was_sealed)>;
  using shout_handler = std::function<void(const dht::shout_delivery& shout)>;
  void set_speak_handler(speak_handler handler) { speak_handler_ = std::move(handler); }
  void set_whisper_handler(whisper_handler handler) { whisper_handler_ = std::move(handler); }
  void set_shout_handler(shout_handler handler) { shout_handler_ = std::move(handler); }
  // SPEAK to every direct peer; `done` gets how many ACKed (not_connected, or the last error,
  // when none did).
  void speak(byte_vector payload, std::function<void(boost::system::error_code, std::size_t)> done);
  // WHISPER to `target`, sealed to its key or not, over the session we have with it or one
  // dialed at the addresses a DHT lookup finds; `done` once the receipt was checked. `call`
  // (from cancellable; 0: not cancellable) names it for cancel_request, as a request.
  void whisper(core::node_id target, byte_vector payload, bool sealed, std::uint64_t call,
               std::function<void(boost::system::error_code)> done);
  const message_counters& message_stats() const { return message_counters_; }

  // Byte streams (node_driver_streams.cpp); on the strand, handlers invoked through the strand.
  // Opens a stream whose header names `protocol` (valid: core::wire::valid_stream_protocol).
  void open_stream(peer_ref target, std::string protocol, std::uint64_t wait, stream_handler handler);
  // Completes with the next stream a peer opens for `protocol` (those not yet accepted wait, up
  // to a backlog of 256 per protocol). From the first call on, the node serves the protocol: a
  // stream of a protocol nobody asked for is refused (reset protocol_not_served), except one of
  // the default "".
  // `waiter` (from cancellable; 0: not cancellable) names the wait for cancel_accept.
  void accept_stream(std::string protocol, std::uint64_t waiter, stream_handler handler);
  // `read` (from cancellable; 0: not cancellable) names the read for cancel_read.
  void stream_read(const std::shared_ptr<stream_state>& s, std::vector<boost::asio::mutable_buffer> buffers,
                   std::uint64_t read, stream_io_handler handler);
  // `write` (from cancellable; 0: not cancellable) names the write for cancel_write.
  void stream_write(const std::shared_ptr<stream_state>& s, byte_vector bytes, std::uint64_t write,
                    stream_io_handler handler);
  // Per-operation cancellation (Asio's cancellation slots): an accept still waiting, or a read
  // or write still pending, completes with operation_aborted; one that already completed is left
  // alone. A pending write has taken no byte yet, so none is lost or sent.
  void cancel_accept(std::uint64_t waiter);
  void cancel_read(const std::shared_ptr<stream_state>& s, std::uint64_t read);
  void cancel_write(const std::shared_ptr<stream_state>& s, std::uint64_t write);
  // Per-operation cancellation, for the public operations' initiating functions (any thread,
  // before the handler is moved): when `handler` has a cancellation slot, a fresh id for the
  // operation, hooked to it so that a cancellation of a type in `honoured` runs cancel(driver,
  // id) on the strand while the driver lives; 0, and nothing hooked, when it has none.
  template <typename Handler, typename Cancel>
  std::uint64_t cancellable(const Handler& handler, Cancel cancel,
                            boost::asio::cancellation_type honoured = boost::asio::cancellation_type::all) {
    if (!boost::asio::get_associated_cancellation_slot(handler).is_connected()) return 0;
    const std::uint64_t id = next_operation_id_.fetch_add(1, std::memory_order_relaxed);
    detail::on_cancellation(
        handler, any_executor(),
        [w = weak_from_this(), id, cancel = std::move(cancel)] {
          if (auto live = w.lock()) cancel(*live, id);
        },
        honoured);
    return id;
  }
  void stream_shutdown(const std::shared_ptr<stream_state>& s);
  void stream_close(const std::shared_ptr<stream_state>& s);
  void stream_reset(const std::shared_ptr<stream_state>& s);
  void stop();

  // A partition, for tests (socket_swarm::partition): sessions with these peers are cut off now
  // and whenever one is established again, over any transport; an empty list ends it.
  void set_unreachable(std::vector<core::node_id> peers);

  // Impairs the datagrams this node's UDP socket sends (now and once it exists); on the strand.
  void set_udp_impairment(const udp_impairment& impairment);
  const udp_counters* udp_stats() const { return udp_ ? &udp_->counters() : nullptr; }

  // Called with a line for people when something notable happens (refusals, cut-offs).
  void set_log(std::function<void(const std::string&)> log) { log_ = std::move(log); }

  // Runs after every engine call: transmissions, closes, events, the timer.
  void pump();

 private:
  using ready_handler = std::function<void(boost::system::error_code, core::connection_id)>;

  void accept_loop(std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor, bool websocket);
  // An accepted socket of a ws:// listener: its upgrade first, then adopt().
  void open_websocket(boost::asio::ip::tcp::socket socket);
  uri listen_udp(const uri& where, const boost::asio::ip::address& address);
  void start_udp(const boost::asio::ip::udp::endpoint& bind_to);
  // An ICMP port unreachable for `destination` (udp_port::address_bytes): our dials to it that
  // are still in their handshake fail with connection_refused.
  void on_udp_unreachable(const byte_vector& destination);
  void dial_udp(const uri& where, std::optional<core::node_id> expected, const std::string& key);
  // A dial of `key` has its connection (or failed): its waiters move on.
  void dial_finished(const std::string& key, boost::system::error_code ec, core::connection_id c);
  // Sends what a datagram connection's session queued; ends it once the engine closed it.
  void transmit_datagrams(core::connection_id c);
  // Hands a connected link to the engine as a new session.
  core::connection_id adopt(std::shared_ptr<link> l, bool inbound, std::optional<core::node_id> expected);
  // Whether the caller of a wait for a session is still there: each step of reaching a peer
  // (another address, an introduction, a relay) asks first, so a cancelled wait starts nothing
  // more. Empty: always.
  using wanted_fn = std::function<bool()>;
  static bool gone(const wanted_fn& wanted) { return wanted && !wanted(); }
  void with_connection(const peer_ref& target, ready_handler then, wanted_fn wanted = {});
  // Whether the wait named `wait` (abortable) is still waiting: neither cancelled nor done.
  wanted_fn still_waiting(std::uint64_t wait);
  // `then`, made cancellable by cancel_wait(wait) (itself when wait is 0).
  ready_handler abortable(std::uint64_t wait, ready_handler then);
  void dial(const uri& where, std::optional<core::node_id> expected, ready_handler then);
  // Dials the addresses in turn until one answers with the `expected` key.
  void dial_any(std::vector<uri> addresses, core::node_id expected, ready_handler then, wanted_fn wanted = {});
  void on_event(core::node_engine::event& ev);
  // The DHT's side of pump(): its requests out and its finished operations.
  bool pump_dht();
  void send_dht_request(dht::dht_node::outgoing out);
  void on_dht_event(core::node_engine::event& ev);
  // The streams' side of on_event: wakes pending reads and writes, hands out opened streams.
  void on_stream_event(core::node_engine::event& ev);
  void try_read(stream_state& s);
  void try_write(stream_state& s);
  void fail_stream(stream_state& s, boost::system::error_code ec);
  // A stream a peer opened: reads its header as it arrives, then hands it on (route_stream).
  void read_stream_header(const std::shared_ptr<stream_state>& s);
  // To an acceptor of its protocol, into the wait for one, or refused when nobody serves it.
  void route_stream(const std::shared_ptr<stream_state>& s);
  void hand_over(const std::shared_ptr<stream_state>& s, stream_handler acceptor);
  void refuse_stream(const std::shared_ptr<stream_state>& s, core::stream_mux::reset_code code);
  // A stream no longer waits to be accepted (taken, refused, or gone).
  void stop_awaiting_accept(stream_state& s);
  // The broadcast side of on_event: SPEAK and WHISPER that the engine ACKed and passed up.
  void on_message_event(core::node_engine::event& ev);
  void on_speak(const core::node_id& from, core::wire::speak s);
  void on_whisper(const core::node_id& from, core::wire::whisper w);
  // Sends a SPEAK to every direct peer but `except` (and its origin); `done` may be empty.
  void send_speak(const core::wire::speak& s, std::optional<core::node_id> except,
                  std::function<void(boost::system::error_code, std::size_t)> done);
  // The session with `peer`: the one we have, else one dialed where the DHT finds it.
  void reach(const core::node_id& peer, ready_handler then, wanted_fn wanted = {});
  // A peer we cannot dial: through an introduction (UDP), else through a relay.
  void reach_through_others(core::node_id peer, std::vector<core::node_id> helpers, boost::system::error_code failed,
                            ready_handler then, wanted_fn wanted);
  // Asks the helpers that have a datagram session with us, one at a time (at most max_helpers
  // of them), to introduce us to `peer`, and dials the address the first one gives; `then` gets
  // `failed` if none can, or the dial's error.
  static constexpr std::size_t max_helpers = 3;
  void reach_by_introduction(core::node_id peer, std::vector<core::node_id> helpers,
                             boost::system::error_code failed, ready_handler then, wanted_fn wanted,
                             std::size_t asked = 0);
  // Opens a relayed session with `peer` through the helpers we have a session with, one at a
  // time (at most max_helpers); `then` gets `failed` if none can.
  void reach_by_relay(core::node_id peer, std::vector<core::node_id> helpers, boost::system::error_code failed,
                      ready_handler then, wanted_fn wanted, std::size_t asked = 0);
  // The introductions' side of on_event: a punch the engine asked for goes out of the UDP socket.
  void on_introduction_event(core::node_engine::event& ev);
  // Hands the DHT's shout deliveries to the application; whether there were any.
  bool deliver_shouts();
  // Hands the DHT's listen deliveries to their subscriptions' handlers; whether there were any.
  bool deliver_listens();
  static std::uint64_t random_sequence_start();
  void save_dht_snapshot();
  // Saves it again once dht_settings::snapshot_interval has passed since the last save (called
  // by pump()).
  void save_dht_snapshot_if_due();
  void arm_timer();
  void run_timeouts();  // the engine's and the DHT's due deadlines, then pump()
  void log(const std::string& line) { if (log_) log_(line); }

  strand strand_;
  core::identity self_;
  core::node_engine engine_;
  boost::asio::steady_timer timer_;
  std::optional<core::time_point> timer_expiry_;
  bool timeout_posted_ = false;  // a run_timeouts() for a deadline already due is posted
  // listen() and listening() run on the caller's thread, stop() on the strand.
  mutable std::mutex acceptors_mutex_;
  std::vector<std::shared_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  std::vector<uri> bound_;
  bool stopped_listening_ = false;
  std::unordered_map<core::connection_id, std::shared_ptr<link>> links_;
  std::vector<core::node_id> unreachable_;  // set_unreachable
  bool unreachable(const core::node_id& peer) const {
    return std::find(unreachable_.begin(), unreachable_.end(), peer) != unreachable_.end();
  }
  // WebSocket links still in their opening handshake (stop() closes them), at most
  // max_opening_websockets accepted ones at a time.
  std::unordered_set<std::shared_ptr<link>> opening_;
  std::size_t opening_inbound_ = 0;
  // The node's UDP socket (at most one) and where each of its sessions' datagrams go.
  std::shared_ptr<udp_port> udp_;
  udp_impairment udp_impairment_;
  std::unordered_map<core::connection_id, boost::asio::ip::udp::endpoint> datagram_peers_;
  std::unordered_map<std::string, core::connection_id> dialed_;      // uri text → connection
  std::unordered_map<core::connection_id, std::vector<ready_handler>> waiting_;  // not yet up
  // Our plain UDP dials still in their handshake: an ICMP port unreachable may end these.
  std::unordered_set<core::connection_id> refusable_dials_;
  std::unordered_map<std::string, std::vector<ready_handler>> resolving_;  // dial in progress
  // Sockets still connecting, so that stop() can abort them instead of waiting for the OS.
  std::unordered_set<std::shared_ptr<boost::asio::ip::tcp::socket>> connecting_;
  std::unordered_map<core::request_id, reply_handler> requests_;
  // The application's requests by call id, for cancel_request; a cancelled one's handler is
  // taken out, which its request's completion then finds empty.
  std::unordered_map<std::uint64_t, std::shared_ptr<reply_handler>> calls_;
  // The same for operations waiting for a session (abortable).
  std::unordered_map<std::uint64_t, std::shared_ptr<ready_handler>> waits_;
  std::function<void(const std::string&)> log_;
  bool stopped_ = false;
  // The DHT (null when disabled) and its store; the SQLite one when a data directory is set.
  std::unique_ptr<dht::value_store> store_;
  dht::sqlite_store* sqlite_ = nullptr;
  std::chrono::milliseconds snapshot_interval_{0};
  std::chrono::steady_clock::time_point next_snapshot_{};
  std::unique_ptr<dht::dht_node> dht_;
  struct dht_waiter {
    dht_done done;
    std::uint64_t call = 0;  // its entry in dht_calls_, if cancellable
  };
  std::unordered_map<dht::operation_id, dht_waiter> dht_ops_;
  std::unordered_map<std::uint64_t, dht::operation_id> dht_calls_;  // cancellable ones by call id
  std::unordered_map<dht::operation_id, listen_handler> listen_handlers_;
  // Streams by (connection, stream id); streams peers opened whose header is still arriving,
  // oldest first; by protocol, streams peers opened that wait for an acceptor, and acceptors
  // that wait for a stream; the protocols served (an acceptor asked for them).
  std::map<std::pair<core::connection_id, core::stream_id>, std::shared_ptr<stream_state>> streams_;
  std::deque<std::shared_ptr<stream_state>> headers_pending_;
  std::map<std::string, std::deque<std::shared_ptr<stream_state>>, std::less<>> unaccepted_;
  struct waiting_acceptor {
    std::uint64_t waiter;
    stream_handler handler;
  };
  std::map<std::string, std::deque<waiting_acceptor>, std::less<>> acceptors_waiting_;
  std::atomic<std::uint64_t> next_operation_id_{1};
  std::set<std::string, std::less<>> served_protocols_;
  std::unordered_map<std::uint8_t, datagram_handler> datagram_handlers_;
  // Broadcast: the application's handlers, the speaks seen, our next speak's sequence.
  speak_handler speak_handler_;
  whisper_handler whisper_handler_;
  shout_handler shout_handler_;
  dht::seen_cache speaks_seen_{1u << 14, std::chrono::minutes(10)};
  std::uint64_t next_speak_sequence_ = random_sequence_start();
  message_counters message_counters_;
};

}  // namespace kadnet::transports
