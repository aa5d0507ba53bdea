#pragma once
// An iterative Kademlia lookup (FIND_NODE or FIND_VALUE) as a sans-I/O state machine, after
// rust-libp2p's `query/peers/closest.rs`: the lookup never sends, never reads a clock and never
// sleeps; it only says whom to ask next.
//
// Contract (what to call after what):
//   1. Construct it with the target, the closest contacts of the routing table, and a config.
//   2. Call next(now) repeatedly until it returns `waiting` or `finished`. Each `send{c}` means
//      "send FIND_NODE(target) (or FIND_VALUE) to c now"; the lookup counts c as in flight with
//      the deadline now + slot_timeout (or a few of c's RTTs: lookup_config::slot_rtts).
//   3. Feed what comes back: on_reply (closer contacts), on_value (FIND_VALUE hit) or on_failure
//      (error, NACK, the driver's own timeout, connection lost). Then go to 2.
//   4. `waiting{until}`: call next again when something was fed in, or at `until` at the latest
//      (the earliest slot deadline). until is nullopt only when nothing is in flight with a
//      deadline, which a well-formed lookup never reports (it finishes instead).
//   5. After `finished`, read closest_answered(), value(), cache_target() and get_stats(); later
//      calls to on_* are ignored and next() keeps returning `finished`.
//
// Slots and timeouts: at most α requests per path hold a slot. A request whose deadline passes
// (seen by next(now)) loses its slot, so a dead contact costs one slot for one slot_timeout and
// never more; it then counts as failed for termination, but a late reply is still used. With
// config.asks_per_contact > 1 a silent contact is asked again at once, outside the slots: the
// path goes on, but does not finish while that contact might still be among the k closest to
// answer (a lost request on a transport that does not resend costs one more deadline, not the
// contact).
//
// Hedging: a FIND_VALUE path with config.hedge whose first request goes to a presumed replica
// (within config.replica_radius of the target) keeps that one request in flight until it widens
// (see lookup_config::hedge); waiting{until} then also names the hedge time.
//
// Order of asking: closest first, except that FIND_VALUE asks, among the k closest entries of a
// path that are presumed replicas, a contact with a session up (contact::connected) before the
// closer ones without: each of them should hold the value, and a new session costs a handshake.
//
// Termination (per path): finished when the k closest contacts known that did not fail have all
// answered and no closer request is still in flight, or when no candidate is left. With
// find_value the whole lookup finishes at the first value; with subtree_bits, at the first
// answer from inside that subtree.
//
// Disjoint paths (S/Kademlia): with disjoint_paths = d > 1, the seeds (sorted by distance) are
// dealt round-robin into d paths. Each path runs its own α-limited iteration; a contact belongs
// to the first path that learned it, so no contact is ever queried twice. The lookup finishes
// when every path finished; results are merged.
//
// Peer input never throws: replies from contacts that were not asked, contacts equal to self and
// duplicates are ignored; a reply's `closer` list is cut to k entries. Memory is bounded: each
// path keeps at most 4k not-yet-asked candidates (the farthest are dropped); asked contacts are
// kept, and there are at most `messages` of those.
#include <chrono>
#include <cstddef>
#include <optional>
#include <unordered_map>
#include <variant>
#include <vector>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/node_id.hpp"
#include "kadnet/core/rpc_tracker.hpp"
#include "kadnet/dht/constants.hpp"
#include "kadnet/dht/contact.hpp"

namespace kadnet::dht {

struct lookup_config {
  std::size_t k = default_k;          // results wanted; also the cap on a reply's contacts
  std::size_t alpha = default_alpha;  // requests in flight per path
  std::chrono::milliseconds slot_timeout{1000};
  // > 0: a request holds its slot for this many of the contact's RTTs only (twice as many without
  // a session: a dial comes first; at least slot_floor, at most slot_timeout) — for a contact
  // never measured, of the slowest seed or answer this lookup has had, if any — so a dead contact
  // costs a few round trips rather than slot_timeout. 0: every request holds its slot for
  // slot_timeout. A contact that answers without an RTT of its own is reported by
  // closest_answered() with the one this lookup measured. (SHOUT's repair lookups use it; a late
  // reply is used either way.)
  int slot_rtts = 0;
  std::chrono::milliseconds slot_floor{100};
  // Requests a contact that stays silent past its deadline gets in all; the ones after the first
  // go out at once, without a slot, with a deadline of their own. 1: asked once (the transport
  // resends what it loses). dht_config::asks_per_silent_contact sets it for joins and SHOUT
  // repairs, on networks that do not resend.
  int asks_per_contact = 1;
  // >= 0: the lookup looks for a live node in the subtree of the ids sharing this many leading
  // bits with the target (a SHOUT repair). It finishes at the first answer from inside, since that
  // node covers the rest of the subtree from its own table (the k closest would cost rounds and
  // the subtree's dead contacts' slots), and only contacts inside are asked again (a dead one
  // outside is not worth another deadline).
  int subtree_bits = -1;
  // Answers from these do not end a subtree_bits lookup (a SHOUT repair's delegates that stayed
  // silent after a second chance).
  std::vector<core::node_id> finish_ignoring{};
  std::size_t disjoint_paths = 1;     // d; 1 = classic Kademlia
  bool find_value = false;
  // FIND_VALUE only, a hedged request: each path asks one contact and widens to alpha when that
  // one answers without the value, fails, or is still silent after twice its smoothed RTT
  // (hedge_unmeasured when it has none yet; at least hedge_floor, at most slot_timeout). Most
  // values are found at the first hop, where the other alpha - 1 requests would be answered and
  // thrown away. false: alpha at once.
  bool hedge = true;
  std::chrono::microseconds hedge_unmeasured{100'000};
  std::chrono::microseconds hedge_floor{1'000};
  // FIND_VALUE: how far from the target a contact may be and still be presumed to hold the
  // value (one of its k closest). Hedging and asking connected contacts first apply only to
  // such contacts; farther ones are asked closest first, alpha wide, as a path that must still
  // make progress should be. nullopt: every contact is presumed to (a network of at most k).
  std::optional<core::node_id> replica_radius{};
};

class lookup {
 public:
  struct send {
    contact to;
  };
  struct waiting {
    std::optional<core::time_point> until;  // call next() again by then
  };
  struct finished {};
  using action = std::variant<send, waiting, finished>;

  struct stats {
    std::size_t messages = 0;  // requests sent
    std::size_t replies = 0;   // answers used (on_reply / on_value), late ones included
    std::size_t failures = 0;  // requests that timed out or failed, each counted once
    int rounds = 0;            // max hop among closest_answered(); seeds are hop 1
  };

  // Throws std::invalid_argument when k, alpha or disjoint_paths is 0 (local misuse).
  lookup(const core::node_id& target, std::vector<contact> seeds, lookup_config config,
         core::node_id self);

  // The next step; see the contract above.
  action next(core::time_point now);

  // `from` answered with contacts closer to the target (FIND_NODE reply, or FIND_VALUE without
  // the value). Ignored unless `from` was asked and has not answered yet.
  void on_reply(const core::node_id& from, std::vector<contact> closer, core::time_point now);
  // `from` answered FIND_VALUE with the value: the lookup is finished. Ignored unless
  // config.find_value and `from` was asked. The caller checks the value's validity (signature,
  // key) first and reports a bad one with on_failure.
  void on_value(const core::node_id& from, byte_vector value_bytes, core::time_point now);
  // `from` failed (error, NACK, timeout seen by the driver): its slot is freed at once. With
  // `timed_out` (the driver's own timeout) it is asked again if config.asks_per_contact allows,
  // as after its deadline.
  void on_failure(const core::node_id& from, bool timed_out = false);

  bool is_finished() const { return finished_; }
  const core::node_id& target() const { return target_; }

  // Up to k contacts that answered (without or with the value), closest first, over all paths.
  std::vector<contact> closest_answered() const;
  // Up to k contacts that were asked, closest first, whether they answered, failed or are still
  // silent: the nodes the network names closest. A compare-and-swap's replica set is this, so that
  // a lost reply does not swap a replica for the next node out (majorities of two sets that
  // differ in more than one node need not overlap).
  std::vector<contact> closest_asked() const;
  const std::optional<byte_vector>& value() const { return value_; }
  // FIND_VALUE with a value found: the closest contact that answered without the value, where
  // the caller should store a copy (Kademlia's caching along the path). nullopt otherwise.
  std::optional<contact> cache_target() const;
  stats get_stats() const;

 private:
  // waiting: asked, holding a slot. resend_due: silent past its deadline with asks left, to be
  // asked again (no slot). asked_again: asked again, no slot, until its new deadline.
  enum class peer_state { not_contacted, waiting, resend_due, asked_again, unresponsive, succeeded, failed };
  struct peer {
    contact info;
    core::node_id distance;
    int hop = 1;
    peer_state state = peer_state::not_contacted;
    core::time_point deadline{};
    core::time_point asked{};  // the first ask
    std::uint8_t asks = 0;         // requests sent to it
    std::uint8_t unanswered = 0;   // of those, not yet failed by the driver
    bool had_value = false;
  };
  struct path {
    std::vector<peer> peers;  // sorted by distance to the target, closest first
    std::size_t in_flight = 0;
    std::size_t not_contacted = 0;
    bool finished = false;
    // Hedged FIND_VALUE: alpha requests allowed once widened; until then one, and hedge_at is
    // when the first one's silence widens the path.
    bool widened = true;
    std::optional<core::time_point> hedge_at;
  };

  action next_on_path(std::size_t path_index, core::time_point now);
  // Marks q asked (in flight until now + slot_timeout) and says to send to it.
  action ask(path& p, peer& q, core::time_point now);
  // Asks a silent q once more, outside the slots.
  action ask_again(peer& q, core::time_point now);
  // Whether a silent q has asks left (config.asks_per_contact; inside config.subtree_bits).
  bool may_ask_again(const peer& q) const;
  // How long a hedged path waits for its first contact before widening.
  std::chrono::microseconds hedge_delay(const contact& first) const;
  std::chrono::microseconds slot_for(const contact& c) const;
  // Whether a contact at this distance from the target is presumed to hold the value.
  bool presumed_replica(const core::node_id& distance) const;
  // For FIND_VALUE: among the path's k closest entries that are presumed replicas, the closest
  // not-yet-asked one with a session up, else the one at first_unasked (the closest not asked).
  peer& connected_candidate(path& p, std::size_t first_unasked);
  // Adds a contact to a path unless it is self or already known; hop is its hop count.
  void add_candidate(std::size_t path_index, contact c, int hop);
  void drop_farthest_candidate(path& p);
  peer* find_peer(const core::node_id& id, std::size_t* path_index = nullptr);
  // The asked peer `from`, if a reply from it is acceptable now; nullptr otherwise.
  peer* answerable_peer(const core::node_id& from, std::size_t& path_index,
                        bool finished_path_ok);
  void release_slot(path& p, peer& q);
  std::vector<const peer*> closest_in(bool answered_only) const;

  core::node_id target_;
  core::node_id self_;
  lookup_config config_;
  std::vector<path> paths_;
  // Which path owns each known contact; a contact is queried by its owner only.
  std::unordered_map<core::node_id, std::size_t> owner_;
  // With slot_rtts: the RTT assumed for a contact never measured — the slowest of the seeds'
  // and of the answers so far.
  std::chrono::microseconds slowest_answer_{0};
  std::optional<byte_vector> value_;
  stats stats_{};
  bool finished_ = false;
  bool answered_within_ = false;  // config.subtree_bits: a contact inside has answered
};

}  // namespace kadnet::dht
