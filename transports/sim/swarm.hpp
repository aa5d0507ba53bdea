#pragma once
// A swarm of full kadnet nodes on the simulated network: each node is a real protocol engine
// (handshakes, AEAD sessions, the reliable channel over datagrams), a dht::dht_node with an
// in-memory store and the engine_bridge between them — the same cores a node on UDP runs — with
// sim::network carrying its datagrams on virtual time. (benchmarks/sim/dht_swarm runs bare
// dht_nodes without sessions; this is the whole node.)
//
// Contract:
//  * Single-threaded, like sim::network: every call and every callback runs on the caller's
//    thread; callbacks may start operations, kill and restart nodes.
//  * Nodes: add_node() makes node i with endpoint i and an identity drawn from the seed; it
//    ANNOUNCEs node_uri(i) ("udp://10.a.b.c:4000", sim/node_address.hpp), which its peers hand
//    out as a contact and dial inside the simulator. A new node knows nobody until join().
//  * Operations (join, find_node, get, put) start at once; their callback runs from inside the
//    event loop (run_until / run_for) when they finish. On a dead node, or when the node dies
//    first, the callback gets errc::shutting_down.
//  * kill(i) is a crash: the node's state is gone and its endpoint is down, so peers learn of it
//    only by timeouts. restart(i) brings it back at the same address with the same key and empty
//    state (join it again).
//  * Determinism: one std::mt19937_64 from the seed makes the identities and feeds every engine
//    (ephemeral keys, cookie secrets) and DHT (refresh targets); with the network's own seeded
//    generator, a seed and a sequence of calls fix the run, and trace_hash() replays.
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <unordered_map>
#include <vector>

#include "kadnet/core/identity.hpp"
#include "kadnet/core/node_config.hpp"
#include "kadnet/core/node_engine.hpp"
#include "kadnet/dht/dht_node.hpp"
#include "kadnet/transports/sim/network.hpp"

namespace kadnet::sim {

struct swarm_settings {
  std::uint64_t seed = 1;
  link_config link;         // every link's impairments (sim::network's default link)
  core::node_config node;   // each engine; serve_dht and the announced URI are set per node
  dht::dht_config dht;
};

// Whom a joining node first connects to.
enum class join_via { node_zero, random_earlier };

struct join_summary {
  std::size_t ok = 0, failed = 0;
  duration took{0};  // virtual time
};

struct node_stats {
  bool alive = false;
  core::engine_counters engine;  // of the current run of the node (zero while dead)
  std::size_t sessions = 0;      // established sessions
  std::size_t contacts = 0;      // in the routing table
  std::size_t values = 0;        // held in the store
};

class swarm {
 public:
  using find_node_done = std::function<void(const dht::find_node_result&)>;
  using get_done = std::function<void(const dht::get_result&)>;
  using put_done = std::function<void(const dht::put_outcome&)>;
  using cas_done = std::function<void(const dht::cas_outcome&)>;
  using lock_done = std::function<void(const dht::lock_outcome&)>;

  explicit swarm(swarm_settings settings);
  ~swarm();
  swarm(const swarm&) = delete;
  swarm& operator=(const swarm&) = delete;

  // --- nodes ---
  std::size_t add_node();
  void add_nodes(std::size_t count);
  std::size_t size() const { return nodes_.size(); }
  const core::node_id& id(std::size_t i) const { return nodes_.at(i).identity.id(); }
  bool alive(std::size_t i) const { return nodes_.at(i).run != nullptr; }
  void kill(std::size_t i);
  void restart(std::size_t i);
  // Drops all traffic between the nodes of `a` and those of `b` until heal().
  void partition(const std::vector<std::size_t>& a, const std::vector<std::size_t>& b);
  void heal();

  // --- operations ---
  // A session with `via`, then a bootstrap lookup of i's own id.
  void join(std::size_t i, std::size_t via, find_node_done done);
  // Joins nodes first..size()-1 in order, `in_flight` at a time, each through node 0 or a random
  // node before it, and runs the network until all have finished or `limit` of virtual time
  // passed (the unfinished count as failed).
  join_summary join_all(join_via how, std::size_t first = 1, std::size_t in_flight = 64,
                        duration limit = std::chrono::hours(1));
  void find_node(std::size_t i, const core::node_id& target, find_node_done done);
  void get(std::size_t i, const core::node_id& key, get_done done);
  void put(std::size_t i, const core::node_id& key, byte_vector value, put_done done,
           dht::put_options options = {});
  // Compare-and-swap and read-modify-cas (dht_node::cas, dht_node::update).
  void cas(std::size_t i, const core::node_id& key, std::uint64_t expected_version, byte_vector value,
           cas_done done);
  void update(std::size_t i, const core::node_id& key, dht::update_function fn, cas_done done);
  // Locks (dht_node::lock, renew, unlock; PROTOCOL.md 8.9).
  void lock(std::size_t i, const core::node_id& key, std::chrono::milliseconds lease, lock_done done);
  void renew(std::size_t i, const core::node_id& key, std::uint64_t token, std::chrono::milliseconds lease,
             lock_done done);
  void unlock(std::size_t i, const core::node_id& key, std::uint64_t token, lock_done done);

  // --- the event loop (virtual time) ---
  // Runs until `done` holds (true) or `limit` of virtual time passed (false).
  bool run_until(const std::function<bool()>& done, duration limit);
  void run_for(duration d) { net_.run_for(d); }
  time_point now() const { return net_.now(); }

  // --- observation ---
  const std::array<std::uint8_t, 32>& trace_hash() const { return net_.trace_hash(); }
  node_stats stats(std::size_t i) const;
  // Node i's DHT (its table and store), null while the node is dead.
  const dht::dht_node* dht(std::size_t i) const;
  network& net() { return net_; }
  std::mt19937_64& rng() { return rng_; }

 private:
  struct instance;  // a running node: engine, store, DHT and the glue
  struct node {
    core::identity identity;
    endpoint_id endpoint;
    std::unique_ptr<instance> run;  // null while dead
  };

  std::unique_ptr<instance> start(std::size_t i);
  void receive(std::size_t i, endpoint_id from, byte_span bytes);
  // Drives node i after a call into it: datagrams out, events, DHT requests, its timer.
  void pump(std::size_t i);
  void transmit(std::size_t i, core::connection_id c);
  void on_event(std::size_t i, core::node_engine::event& ev);
  bool dial(std::size_t i, const dht::contact& to, std::function<void(boost::system::error_code,
                                                                      core::connection_id, time_point)> ready);
  void rearm(std::size_t i);
  void on_timer(std::size_t i);
  template <typename Result>
  void track(std::size_t i, dht::operation_id op, std::function<void(const Result&)> done);
  // Starts `begin` on node i and tracks it; on a dead node `done` gets errc::shutting_down.
  template <typename Result, typename Begin>
  void start_tracked(std::size_t i, Begin begin, std::function<void(const Result&)> done);

  swarm_settings settings_;
  std::mt19937_64 rng_;
  network net_;
  std::deque<node> nodes_;
  // Each node's transport address, indexed by endpoint (what its datagrams come from).
  std::vector<byte_vector> addresses_;
  // Guards against a node whose deadline never moves past now (it would spin the loop forever).
  time_point spin_time_{};
  std::uint64_t spins_ = 0;
};

}  // namespace kadnet::sim
