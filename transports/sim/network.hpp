#pragma once
// A deterministic, simulated datagram network on virtual time: the in-memory network that sim
// drivers and DHT benchmarks run nodes on, with no sockets, no threads and no clock.
//
// Endpoints are small integers (text form "sim://<id>", see sim/address.hpp). A datagram sent
// from one endpoint to another crosses a directed link with the impairments of its
// link_config — latency, jitter, loss, duplication, reordering, a bandwidth limit with a tail-drop
// queue — and is handed to the receiver's receive_fn at its arrival time. Timers run arbitrary
// callbacks at a virtual time.
//
// Contract:
//  * Single-threaded. Everything (send, schedule, the callbacks) runs on the caller's thread;
//    callbacks may call back into the network (send, schedule, cancel, add/remove endpoints).
//  * Time moves only inside step() / run_*(): each event (a delivery or a timer) is taken in
//    (time, insertion sequence) order, now() jumps to its time, and its callback runs.
//  * Determinism: the only randomness is a std::mt19937_64 seeded in the constructor, drawn in
//    event order, and only for impairments that are configured (probability or jitter > 0). Two
//    runs with the same seed and the same calls deliver the same datagrams at the same times,
//    and trace_hash() — BLAKE2b over every delivery — is equal.
//  * A datagram's path through a link, in order: dropped if either end is down or removed or
//    the ends are partitioned; tail-dropped when the link's queue is full; serialized after the
//    datagram before it (bandwidth); then lost with probability `loss`; otherwise it arrives
//    after latency ± jitter (+ reorder_delay when picked for reordering), and with probability
//    `duplicate` a second copy arrives with a delay of its own. At arrival the receiver must
//    still be up, present and not partitioned from the sender.
//
// Memory: an endpoint costs its receive_fn and two flags; a directed link costs state only while
// it has an override (set_link) or a bandwidth queue that has not drained. Events in flight cost
// their bytes plus ~64 bytes. 100,000 endpoints fit in a few megabytes.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/rpc_tracker.hpp"

namespace kadnet::sim {

using endpoint_id = std::uint32_t;
using time_point = core::time_point;
using duration = std::chrono::nanoseconds;
using timer_id = std::uint64_t;

// Virtual time starts here (far from the clock's zero, so that `now - interval` never wraps).
inline constexpr time_point epoch = time_point{} + std::chrono::hours(24 * 365);

// The impairments of one directed link. The defaults are a perfect link (no delay, no loss).
struct link_config {
  duration latency{0};
  duration jitter{0};             // each datagram's delay is latency + uniform[-jitter, +jitter], >= 0
  double loss = 0;                // probability a datagram is lost
  double duplicate = 0;           // probability a datagram arrives twice
  double reorder = 0;             // probability a datagram is held back by reorder_delay ...
  duration reorder_delay{std::chrono::milliseconds(10)};  // ... so later ones overtake it
  std::uint64_t bandwidth = 0;    // bytes per second; 0 = unlimited (no queue)
  std::size_t max_queue_bytes = 0;  // with bandwidth: bytes waiting before tail drop; 0 = unbounded
};

// What happened to the datagrams so far.
struct network_counters {
  std::uint64_t sent = 0;          // send() calls
  std::uint64_t delivered = 0;     // receive_fn calls (duplicates included)
  std::uint64_t lost = 0;          // dropped by link loss
  std::uint64_t duplicated = 0;    // extra copies made
  std::uint64_t reordered = 0;     // datagrams held back by reorder_delay
  std::uint64_t queue_drops = 0;   // tail-dropped by a full link queue
  std::uint64_t unreachable = 0;   // dropped because an end was down, removed or partitioned
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_delivered = 0;
};

class network {
 public:
  using receive_fn = std::function<void(endpoint_id from, byte_span bytes, time_point now)>;

  explicit network(std::uint64_t seed, link_config default_link = {});
  network(const network&) = delete;
  network& operator=(const network&) = delete;

  // --- endpoints ---
  endpoint_id add_endpoint(receive_fn receive);
  // The endpoint receives nothing more; its id is never reused. Unknown ids are ignored.
  void remove_endpoint(endpoint_id id);
  // A down endpoint is a dead node: datagrams to it and from it are dropped.
  void set_down(endpoint_id id, bool down);
  bool is_down(endpoint_id id) const;
  std::size_t endpoint_count() const { return endpoints_.size(); }

  // --- links ---
  void set_default_link(const link_config& c) { default_link_ = c; }
  const link_config& default_link() const { return default_link_; }
  // Overrides the link from -> to (one direction only).
  void set_link(endpoint_id from, endpoint_id to, const link_config& c);
  const link_config& link(endpoint_id from, endpoint_id to) const;
  // Drops all traffic between a member of `a` and a member of `b`, both ways, from now on and
  // for datagrams already in flight. Partitions add up until heal().
  void partition(const std::vector<endpoint_id>& a, const std::vector<endpoint_id>& b);
  void heal();

  // --- datagrams ---
  // Sends one datagram; the bytes are copied. Throws std::out_of_range for an unknown `from`
  // (local misuse); an unknown or removed `to` is a drop, as on a real network.
  void send(endpoint_id from, endpoint_id to, byte_span bytes);

  // --- timers ---
  // Runs fn at `at` (at once, at the next step, when `at` <= now()).
  timer_id schedule(time_point at, std::function<void()> fn);
  timer_id schedule_after(duration d, std::function<void()> fn) { return schedule(now_ + d, std::move(fn)); }
  // Whether the timer was still pending (and now never fires).
  bool cancel(timer_id id);

  // --- the event loop ---
  // Runs the next event; false when there is none.
  bool step();
  // Runs events until `done` holds (checked before each event) or the next event lies beyond
  // `limit`; then now() is `limit` unless `done` stopped it. Returns whether `done` held.
  bool run_until(const std::function<bool()>& done, time_point limit);
  // Runs every event up to now() + d, then sets now() to it.
  void run_for(duration d);
  time_point now() const { return now_; }
  std::size_t pending_events() const { return queue_.size(); }

  // --- observation ---
  // A BLAKE2b-256 chain over every delivery so far: after each one,
  //   trace = BLAKE2b-256(trace ‖ virtual ns since epoch (8) ‖ from (4) ‖ to (4) ‖ size (4) ‖ bytes)
  // with integers big-endian; all zero before the first delivery.
  const std::array<std::uint8_t, 32>& trace_hash() const { return trace_; }
  const network_counters& counters() const { return counters_; }

 private:
  struct endpoint {
    receive_fn receive;
    bool down = false;
    bool removed = false;
  };
  enum class event_kind : std::uint8_t { datagram, timer };
  struct event {
    time_point at;
    std::uint64_t sequence;
    event_kind kind;
    endpoint_id from = 0, to = 0;
    byte_vector bytes;  // datagram only
    // Heap order: the earliest (time, sequence) on top.
    bool operator>(const event& o) const { return at != o.at ? at > o.at : sequence > o.sequence; }
  };
  struct partition_sets {
    std::unordered_set<endpoint_id> a, b;
  };

  static std::uint64_t link_key(endpoint_id from, endpoint_id to) {
    return (static_cast<std::uint64_t>(from) << 32) | to;
  }
  endpoint* live(endpoint_id id);
  bool partitioned(endpoint_id x, endpoint_id y) const;
  // Random helpers: used only when an impairment is configured, so runs without it draw nothing.
  bool chance(double p);
  duration delay_for(const link_config& c);
  void push(event e);
  // Pops cancelled timers off the top; whether an event is left.
  bool discard_cancelled();
  void deliver(event& e);

  // A deque, so that a receive_fn that adds endpoints does not move itself.
  std::deque<endpoint> endpoints_;
  std::optional<endpoint_id> dispatching_;  // whose receive_fn is running
  link_config default_link_;
  std::unordered_map<std::uint64_t, link_config> links_;
  // When each bandwidth-limited link finishes transmitting what it holds; entries whose time
  // has passed are pruned, so this holds only links that are busy.
  std::unordered_map<std::uint64_t, time_point> busy_until_;
  std::size_t busy_prune_at_ = 1024;
  std::vector<partition_sets> partitions_;

  std::vector<event> queue_;  // a min-heap by (at, sequence)
  std::unordered_map<timer_id, std::function<void()>> timers_;  // pending timers by sequence
  std::uint64_t next_sequence_ = 1;
  time_point now_ = epoch;
  std::mt19937_64 rng_;
  std::array<std::uint8_t, 32> trace_{};
  network_counters counters_;
};

}  // namespace kadnet::sim
