#pragma once
// One node's Kademlia DHT, sans-I/O: the routing table, the value store, and the lookups that
// find nodes, get values and put them — fed with events from the node's sessions and the
// current time, producing the requests it wants sent and the results of its operations.
//
// Contract for drivers (transports/ over sockets, the simulator, unit tests):
//  * Network events in: on_peer_connected() when a session is up, on_peer_announced() when the
//    peer ANNOUNCEd checked addresses, on_peer_disconnected() when the session ended.
//  * Requests in: handle_request() for every FIND_NODE, FIND_VALUE or STORE a peer sends; send
//    the body it returns (an ACK or NACK) as the reply.
//  * Requests out: after every call into the DHT, drain poll_request(); send each one (over the
//    session to `to.id` if there is one, else by dialing `to.addresses`) and report its outcome,
//    exactly once, with on_reply(token, ...) — an ACK or NACK, or an error reply for a timeout or
//    a failed dial.
//  * Results out: drain poll_event() for finished operations.
//  * Time: call handle_timeout(now) at next_deadline() (lookup slots, bucket refresh,
//    republish, replication, expiry).
// Every call happens on one thread or strand at a time.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <variant>
#include <vector>

#include <boost/system/error_code.hpp>

#include "kadnet/core/identity.hpp"
#include "kadnet/core/node_engine.hpp"
#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/broadcast.hpp"
#include "kadnet/dht/cas_proposer.hpp"
#include "kadnet/dht/contact.hpp"
#include "kadnet/dht/key_watches.hpp"
#include "kadnet/dht/listener_registry.hpp"
#include "kadnet/dht/lock_ops.hpp"
#include "kadnet/dht/lookup.hpp"
#include "kadnet/dht/routing_table.hpp"
#include "kadnet/dht/store_rules.hpp"
#include "kadnet/dht/stored_value.hpp"
#include "kadnet/dht/value_patch.hpp"
#include "kadnet/dht/value_store.hpp"

namespace kadnet::dht {

using operation_id = std::uint64_t;
using request_token = std::uint64_t;

// Listening (docs/PROTOCOL.md 8.10): how a subscription keeps replicas listening for it, and what
// this node keeps for other nodes' subscriptions.
struct listen_config {
  std::size_t replicas = 4;            // closest nodes a subscription registers at (OpenDHT's LISTEN_NODES)
  std::chrono::seconds lease{180};     // asked of each; cut to the replica's limits.max_lease
  std::chrono::seconds refresh{60};    // lookup and registration again: follows a changing replica set
  listen_limits limits;                // this node as a replica: listeners kept
};

struct dht_config {
  routing_table_config routing;
  lookup_config lookup;                 // k, alpha, slot timeout, disjoint paths
  store_limits limits;                  // value size, quota, max TTL
  std::chrono::seconds default_ttl{std::chrono::duration_cast<std::chrono::seconds>(default_value_ttl)};
  // Original publishers store their values again this often.
  std::chrono::milliseconds republish_interval{default_republish_interval};
  // Holders hand their values to the current k closest this often (and when a closer node joins).
  std::chrono::milliseconds replicate_interval{default_republish_interval};
  broadcast_config broadcast;           // SHOUT (dht/broadcast.hpp)
  cas_config cas;                       // compare-and-swap attempts and backoff (dht/cas_proposer.hpp)
  listen_config listen;                 // subscriptions to keys (PROTOCOL.md 8.10)
  // Requests that a join's lookup, and SHOUT's repair lookups inside their subtree, send a contact
  // that stays silent (lookup_config::asks_per_contact): a node they miss is left out of its
  // neighbours' tables, or of the shout. 1 over sessions, which resend what the network loses; a
  // network that does not (the benchmarks' and tests' datagram simulators) wants 2.
  int asks_per_silent_contact = 1;
};

// How a put wants its value stored.
struct put_options {
  std::optional<std::uint64_t> version;     // default: one above the highest version found
  std::optional<std::chrono::seconds> ttl;  // default: dht_config::default_ttl
  bool signed_by_self = false;              // owner-signed (BEP 44 mutable item) by this node's key
};

// How a patch wants its result stored (the version is always base_version + 1).
struct patch_options {
  std::optional<std::chrono::seconds> ttl;  // default: dht_config::default_ttl
  bool signed_by_self = false;              // owner-signed by this node's key, over the whole result
};

struct lookup_stats {
  int rounds = 0;
  std::size_t messages = 0;
};

struct find_node_result {
  boost::system::error_code ec;
  std::vector<contact> closest;  // up to k, closest first
  lookup_stats stats;
};
struct get_result {
  boost::system::error_code ec;  // core::errc::not_found when no node has it
  std::optional<stored_value> value;
  lookup_stats stats;
};
struct put_outcome {
  boost::system::error_code ec;  // clear when at least one replica stored it, else
                                 // store_refused (or the NACK code's error) or not_connected;
                                 // too_large, before anything is sent, for a value over this
                                 // node's limits.max_value_size;
                                 // locked when any replica refused it for another node's lease
                                 // (PROTOCOL.md 8.9), whatever the others did; bad_field when
                                 // the highest version found is 2^64 - 1 (none follows it)
  std::size_t replicas = 0;      // nodes that ACKed the STORE
  std::uint64_t version = 0;     // the version stored
  lookup_stats stats;
  std::size_t bytes_sent = 0;    // STORE messages sent, as encoded (lookups not counted)
};

struct patch_outcome {
  boost::system::error_code ec;  // as put_outcome's; before anything is sent: bad_field when the
                                 // diff does not fit the base, too_large when the result is over
                                 // the value limit
  std::size_t replicas = 0;      // nodes that took the new version: by_diff + by_whole, plus this
                                 // node when it is one of the k closest
  std::size_t by_diff = 0;       // remote replicas that ACKed the diff
  std::size_t by_whole = 0;      // remote replicas that lacked the base and took the whole value
  std::uint64_t version = 0;     // the version stored: base_version + 1
  lookup_stats stats;
  std::size_t bytes_sent = 0;    // STORE messages sent, diffs and whole values (lookups not counted)
};

struct listen_outcome {
  operation_id subscription = 0;  // what cancel takes
  boost::system::error_code ec;  // clear when at least one replica took the subscription (it then
                                 // lives until cancel); else not_connected or the refusal's error,
                                 // and the subscription is over
  std::size_t replicas = 0;      // nodes that ACKed the registration
  lookup_stats stats;
};

struct shout_outcome {
  boost::system::error_code ec;  // clear when at least one node took the shout, else not_connected
  std::uint64_t sequence = 0;    // the shout's (origin, sequence) name
  std::size_t delegates = 0;     // nodes this node handed it to (each covers a part of the network)
};

class dht_node {
 public:
  struct outgoing {
    request_token token;
    contact to;
    std::uint8_t opcode;  // FIND_NODE, FIND_VALUE, STORE or SHOUT (or PING for a bucket's eviction check)
    core::wire::message_body body;
    // Report a timeout after this long instead of the transport's request timeout (SHOUT forwards
    // to a delegate with a known RTT: broadcast_config::timeout_rtts).
    std::optional<std::chrono::milliseconds> timeout{};
  };
  struct operation_done {
    operation_id id;
    std::variant<find_node_result, get_result, put_outcome, shout_outcome, cas_outcome, patch_outcome, lock_outcome,
                 listen_outcome>
        result;
  };

  // `self` and `store` must outlive the DHT. `random` seeds refresh targets (tests pass a seeded
  // source; empty: libsodium's randombytes).
  dht_node(const core::identity& self, dht_config config, value_store& store,
           std::function<void(mutable_byte_span)> random = {});
  ~dht_node();
  dht_node(const dht_node&) = delete;
  dht_node& operator=(const dht_node&) = delete;

  // --- network events ---
  void on_peer_connected(const core::node_id& peer, core::time_point now);
  void on_peer_announced(const core::node_id& peer, std::vector<std::string> addresses, core::time_point now);
  void on_peer_disconnected(const core::node_id& peer);
  // The ACK or NACK body answering a FIND_NODE, FIND_VALUE, STORE or SHOUT from `from`.
  core::wire::message_body handle_request(const core::node_id& from, const core::wire::message& m,
                                          core::time_point now);

  // --- requests out ---
  std::optional<outgoing> poll_request();
  void on_reply(request_token token, const core::reply& r, core::time_point now);

  // --- operations (results come as operation_done events) ---
  // Joins through `seeds` (contacts known to be reachable, e.g. bootstrap sessions): a lookup of
  // our own id, which fills the routing table.
  operation_id bootstrap(core::time_point now);
  operation_id find_node(const core::node_id& target, core::time_point now);
  operation_id get(const core::node_id& key, core::time_point now);
  operation_id put(const core::node_id& key, byte_vector value, put_options options, core::time_point now);
  // Diff-based write (docs/PROTOCOL.md 8.8): stores the value that `base_value` (version
  // base_version, as the caller read it) becomes, as version base_version + 1, sending each of
  // the key's k closest nodes only the diff; a replica that does not hold base_version answers
  // with a NACK and gets the whole value (same version, same signature). The diff is
  // make_patch(base_value, next_value), or the caller's own (applied here first: one that does
  // not fit base_value fails with bad_field, nothing sent). When the diff would not be smaller
  // than the value, every replica gets the whole value. Like put, not a compare-and-swap: a
  // replica that moved past base_version keeps its newer version. A patch_outcome.
  operation_id patch(const core::node_id& key, std::uint64_t base_version, byte_span base_value,
                     byte_vector next_value, patch_options options, core::time_point now);
  operation_id patch(const core::node_id& key, std::uint64_t base_version, byte_span base_value,
                     const value_patch& diff, patch_options options, core::time_point now);
  // Compare-and-swap (docs/PROTOCOL.md 8.6): writes `value` as version expected_version + 1 if
  // the key is at expected_version (0: it holds nothing), decided by a majority of its k closest
  // nodes, so that of two writers of the same version at most one succeeds. A cas_outcome: clear
  // ec and the new version, or cas_conflict with the current version and value, or an error
  // (no_quorum, owned_key for an owner-signed key, too_large, not_connected, locked when another
  // node holds a live lock lease on the key, 8.9).
  operation_id cas(const core::node_id& key, std::uint64_t expected_version, byte_vector value,
                   core::time_point now);
  // Read-modify-cas until it sticks: `fn` maps the current value to the next (or declines), and
  // is applied again to the winner's value whenever another writer got in first, at most
  // dht_config::cas.max_attempts times. A cas_outcome: written with the new version, or (fn
  // declined) not written with the current one, or an error as for cas.
  operation_id update(const core::node_id& key, update_function fn, core::time_point now);
  // Locks (docs/PROTOCOL.md 8.9): a lock record under `key`, written by compare-and-swap. lock
  // grants this node a lease of `lease` with a fencing token above every earlier grant's, unless
  // another node's lease is live at the replicas (then locked, naming the holder); while it runs,
  // the replicas refuse other nodes' writes to the key with NACK `locked`. renew starts the lease
  // of grant `token` again; unlock frees the key (the token stays, so the next grant is larger).
  // A lock_outcome each. The lease must be 1 ms .. 24 h (std::invalid_argument otherwise).
  operation_id lock(const core::node_id& key, std::chrono::milliseconds lease, core::time_point now);
  operation_id renew(const core::node_id& key, std::uint64_t token, std::chrono::milliseconds lease,
                     core::time_point now);
  operation_id unlock(const core::node_id& key, std::uint64_t token, core::time_point now);
  // Listening (docs/PROTOCOL.md 8.10): subscribes to new versions of `key`. The returned id names
  // the subscription: poll_listen() hands it every version newer than the last one it handed
  // over, in increasing order, whole and with its diff when the change travelled as one —
  // starting with the version the replicas hold now, if any. The nodes closest to the key
  // notify it; the subscription registers again every listen_config::refresh (a lookup each
  // time), so it follows the replica set as nodes join and leave. Its first registration ends as
  // a listen_outcome under the same id; when no replica took it, the subscription is over.
  operation_id listen(const core::node_id& key, core::time_point now);
  // Ends a subscription (the replicas are told when it was the key's last); false when unknown.
  bool cancel(operation_id subscription, core::time_point now);
  std::optional<listen_delivery> poll_listen();
  // Gives up operation `id` (any this API started but a listen, which cancel ends): its lookup
  // or consensus round stops, replies still on the way are dropped, and no operation_done comes
  // for it. What it already sent may have had its effect (a STORE taken, a lease granted that
  // then lapses). False when it is not running (done already, or a shout, which its delegates
  // carry on with whatever this node does).
  bool abandon(operation_id id);
  // Broadcasts `payload` (at most broadcast_config::max_payload bytes) to every node, signed by
  // this node; done when the nodes it handed the shout to have taken it.
  operation_id shout(byte_vector payload, core::time_point now);
  // The wall clock's offset from the `now` this node is given (broadcast_config::wall_offset:
  // shouts are dated by it); a driver reads it again now and then, as clocks step and suspends
  // stop steady time.
  void set_wall_offset(std::chrono::milliseconds offset);
  std::optional<operation_done> poll_event();
  // Shouts from other nodes, each once, in the order they arrived.
  std::optional<shout_delivery> poll_shout();

  // --- time ---
  void handle_timeout(core::time_point now);
  std::optional<core::time_point> next_deadline() const;

  const routing_table& table() const;
  const value_store& store() const;
  const broadcast_counters& broadcast_stats() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace kadnet::dht
