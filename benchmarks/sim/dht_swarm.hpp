#pragma once
// A swarm of dht::dht_node instances on the simulated network (transports/sim): every request
// and reply is a real wire message (core/wire/message.hpp) in a datagram, so link latency and
// loss apply to the DHT as they would to UDP. Built for 100,000 nodes in one process.
//
// Driving (the dht_node contract, as tests/support/dht_network.hpp does it, but on sim::network):
//  * After every call into a node the swarm drains it: each poll_request() is encoded and sent to
//    the endpoint of the contact's announced "sim://<id>" address; each poll_event() completes the
//    callback of the operation; the node's one timer is re-armed to next_deadline().
//  * A request datagram is answered by the receiver with its handle_request() body (an ACK for a
//    PING, as the node engine does). A request with no reply within its own timeout (a SHOUT to a
//    delegate with a known RTT), else the lookup slot timeout, gets an errc::timeout reply (a sim
//    timer); a late reply is then ignored.
//  * Sessions: the first datagram that arrives between two nodes counts as a finished handshake
//    and ANNOUNCE: both ends get on_peer_connected and on_peer_announced("sim://<id>").
//  * A join is a session with an existing node and a bootstrap (a lookup of the node's own id).
//
// Determinism: one std::mt19937_64 (seeded) makes the identities and feeds every node's random
// source; with the network's own seeded generator, a seed fixes the whole run.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <random>
#include <unordered_map>
#include <vector>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/dht/dht_node.hpp"
#include "kadnet/dht/memory_store.hpp"
#include "kadnet/transports/sim/network.hpp"

namespace kadnet::bench {

class dht_swarm {
 public:
  struct settings {
    std::uint64_t seed = 1;
    // This network does not resend a lost request or reply: joins and repairs ask twice.
    dht::dht_config dht = [] {
      dht::dht_config c;
      c.asks_per_silent_contact = 2;
      return c;
    }();
    sim::link_config link;
  };
  struct counters {
    std::uint64_t requests = 0;   // request datagrams sent
    std::uint64_t timeouts = 0;   // requests answered by the timeout timer
    std::uint64_t stray_replies = 0;  // replies nobody waited for (late, duplicated)
    std::uint64_t malformed = 0;  // datagrams that did not decode
    std::uint64_t undialable = 0;  // contacts without a usable sim:// address
    std::uint64_t sessions = 0;
    // SHOUT traffic: requests (the payload's copies) and their ACKs/NACKs, counted as sent.
    std::uint64_t shouts_sent = 0, shout_bytes = 0;
    std::uint64_t shout_replies = 0, shout_reply_bytes = 0;
    std::uint64_t shouts_received = 0;  // SHOUT requests that reached a live node
  };
  using find_node_done = std::function<void(const dht::find_node_result&)>;
  using get_done = std::function<void(const dht::get_result&)>;
  using put_done = std::function<void(const dht::put_outcome&)>;
  using shout_done = std::function<void(const dht::shout_outcome&)>;
  using cas_done = std::function<void(const dht::cas_outcome&)>;
  using patch_done = std::function<void(const dht::patch_outcome&)>;
  using lock_done = std::function<void(const dht::lock_outcome&)>;
  // Called for every shout a node delivers, when it delivers it.
  using delivery_fn = std::function<void(std::uint32_t node, const dht::shout_delivery&)>;

  explicit dht_swarm(const settings& s);
  dht_swarm(const dht_swarm&) = delete;
  dht_swarm& operator=(const dht_swarm&) = delete;

  // A node with a fresh identity and an empty table; its index is its endpoint id.
  std::uint32_t add_node();
  std::size_t size() const { return nodes_.size(); }
  const core::node_id& id(std::uint32_t i) const { return nodes_[i].identity.id(); }

  // Operations start now; `done` runs inside the event loop when they finish.
  void join(std::uint32_t i, std::uint32_t via, find_node_done done);
  void find_node(std::uint32_t i, const core::node_id& target, find_node_done done);
  void get(std::uint32_t i, const core::node_id& key, get_done done);
  void put(std::uint32_t i, const core::node_id& key, byte_vector value, put_done done);
  void shout(std::uint32_t i, byte_vector payload, shout_done done);
  void update(std::uint32_t i, const core::node_id& key, dht::update_function fn, cas_done done);
  void patch(std::uint32_t i, const core::node_id& key, std::uint64_t base_version, byte_span base_value,
             byte_vector next_value, patch_done done);
  // Locks (dht_node::lock, unlock; PROTOCOL.md 8.9).
  void lock(std::uint32_t i, const core::node_id& key, std::chrono::milliseconds lease, lock_done done);
  void unlock(std::uint32_t i, const core::node_id& key, std::uint64_t token, lock_done done);
  void on_delivery(delivery_fn f) { on_delivery_ = std::move(f); }
  // The node dies silently: its endpoint goes down; others learn it only by its silence.
  void kill(std::uint32_t i);
  bool alive(std::uint32_t i) const { return !net_.is_down(i); }

  sim::network& network() { return net_; }
  std::mt19937_64& rng() { return rng_; }
  const counters& stats() const { return counters_; }
  const dht::dht_node& dht(std::uint32_t i) const { return nodes_[i].dht; }

 private:
  struct node {
    node(core::identity id, const dht::dht_config& config, std::function<void(mutable_byte_span)> random)
        : identity(std::move(id)), store(config.limits), dht(identity, config, store, std::move(random)) {}
    core::identity identity;
    dht::memory_store store;
    dht::dht_node dht;
    std::vector<std::uint32_t> peers;  // sorted: the nodes it has a session with
    sim::timer_id timer = 0;           // 0: none armed
    sim::time_point armed{};
  };
  struct pending {
    std::uint32_t from, to;
    dht::request_token token;
    sim::timer_id timeout;
  };
  using completion = std::function<void(dht::dht_node::operation_done&)>;

  void receive(std::uint32_t self, std::uint32_t from, byte_span bytes);
  void answer_reply(std::uint32_t self, std::uint32_t from, const core::wire::message& m);
  void send_request(std::uint32_t self, dht::dht_node::outgoing o);
  void fail_later(std::uint32_t self, dht::request_token token, core::errc why);
  void connect(std::uint32_t a, std::uint32_t b);
  // Drains a node after a call into it: requests out, finished operations, its timer.
  void drain(std::uint32_t i);
  void rearm(std::uint32_t i);
  void on_timer(std::uint32_t i);
  void expect(std::uint32_t i, dht::operation_id op, completion done);

  settings settings_;
  std::mt19937_64 rng_;
  sim::network net_;
  std::deque<node> nodes_;  // stable addresses: each dht_node refers to its identity and store
  std::unordered_map<std::uint32_t, pending> pending_;  // requests in flight by message id
  std::unordered_map<std::uint64_t, completion> completions_;  // by (node, operation id)
  std::uint32_t next_message_id_ = 1;
  byte_vector scratch_;
  counters counters_;
  delivery_fn on_delivery_;
  // Guards against a node whose deadline never moves past now (it would spin the loop forever).
  sim::time_point spin_time_{};
  std::uint64_t spins_ = 0;
};

}  // namespace kadnet::bench
