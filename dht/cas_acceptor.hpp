#pragma once
// The acceptor side of compare-and-swap (docs/PROTOCOL.md 8.6): how a replica answers the three
// consensus phases of STORE. Each version of a key is one single-decree Paxos instance ("slot")
// among the key's k closest nodes; the slot being decided is always the held version + 1.
//
// State. The committed versions live in the value_store like any value (so FIND_VALUE, gets,
// replication and a persistent store see them). Beside it, per key and in memory only: the slot
// open for decision with the ballot promised and the proposal accepted there, and the proposals
// that made the last `history` versions (so that a proposer whose replies were lost can learn
// whether its own proposal won). A version that reaches the store by any other way (a commit, a
// plain STORE, replication) closes the slot below it.
//
// Rules, for a request about slot s (the STORE's version) with ballot b and proposal P:
//   prepare  held version >= s: conflict (the held version and value, and which proposal made s
//            if it remembers).
//            held version < s-1: the STORE's value is the base (version s-1, chosen, as the
//            sender read it from a majority): it is stored first, so a lagging replica catches up.
//            held version = s-1 with other bytes than the base: conflict (the held value).
//            b >= promised: promise b, answer with what was accepted for s. Else outbid.
//   accept   held version >= s: conflict. Held version < s-1: behind. b >= promised: accept
//            (b, P, value). Else outbid.
//   commit   stores version s (the chosen value) unless it holds s or newer, and remembers P.
// An owner-signed held value refuses every phase (compare-and-swap is for unowned keys).
//
// Locks (8.9): with a lease_guard set, every phase from a node other than the holder of a live
// lease on the key is refused with NACK `locked` before it writes anything: a prepare's catch-up
// and a commit store bytes the sender chose, and a replica cannot tell a chosen base from a forged
// one, so neither may end a lease early. A prepare is judged again after its catch-up, so a
// lagging replica also judges the record the proposer read. (A lagging replica may refuse an
// honest catch-up until its own count of the lease ends; the others make the majority.)
//
// Memory is bounded: at most max_keys keys have state; when full, a key whose slot holds no
// promise makes room, then, idle longest first, a bare promise (nothing accepted) idle for
// idle_lifetime or more, or an accepted value idle for longer than the TTL it was proposed with
// (at most max_ttl); when none can go a new key is refused with quota_full. An accepted value
// stays until then (it may be the chosen one, its commits lost; after its TTL it would have
// expired anyway), and so does a promise in use (a forgotten promise could let two values be
// chosen for one version): a proposer sends its accept as soon as a majority promised, within
// a request timeout, far inside idle_lifetime, so only a promise nobody went on with goes.
// (Refreshed in time, an attacker's prepares can still keep max_keys keys: about 34 a second per
// replica for bare promises at the default; accepted values with long TTLs hold longer.)
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <variant>

#include "kadnet/core/fifo.hpp"
#include "kadnet/core/node_id.hpp"
#include "kadnet/core/rpc_tracker.hpp"
#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/cas_codec.hpp"
#include "kadnet/dht/lease_guard.hpp"
#include "kadnet/dht/value_store.hpp"

namespace kadnet::dht {

struct cas_acceptor_limits {
  std::size_t max_keys = 4096;       // keys with consensus state at once
  std::size_t history = 64;          // versions per key whose writer is remembered
  std::size_t max_value_size = 64 * 1024;
  // How long a promise nobody went on with (no accept, no commit) keeps its key's place in a full
  // table: without it, prepares for max_keys keys never written would shut every other key out.
  std::chrono::milliseconds idle_lifetime{std::chrono::minutes(2)};
  // An accepted value idle for longer than its TTL (at most this) may go too: had it been
  // committed, it would have expired by then.
  std::chrono::seconds max_ttl{std::chrono::hours(24)};
};

class cas_acceptor {
 public:
  explicit cas_acceptor(value_store& store, cas_acceptor_limits limits = {});

  // The ACK or NACK answering a STORE whose consensus part is set (the caller checks). `from`,
  // the sending node, is what the lease guard judges; without it no lease is checked.
  core::wire::message_body handle(const core::wire::store& request, core::time_point now);
  core::wire::message_body handle(const core::wire::store& request, const core::node_id& from,
                                  core::time_point now);
  // Leases to respect (may be null); it must outlive the acceptor.
  void set_guard(lease_guard* guard) { guard_ = guard; }

  std::size_t keys() const { return slots_.size(); }

 private:
  struct slot_state {
    std::uint64_t slot = 0;  // the version being decided; stale once the store holds it
    std::optional<ballot> promised;
    std::optional<accepted_proposal> accepted;
    core::time_point used{};  // the last prepare or accept promised here
    std::chrono::seconds accepted_ttl{0};  // the TTL the accepted value was proposed with
    core::fifo<std::pair<std::uint64_t, proposal_id>> chosen;  // version -> proposal, oldest first
  };

  core::wire::message_body dispatch(const core::wire::store& s, const core::node_id* from, core::time_point now);
  core::wire::message_body prepare(const core::wire::store& s, std::optional<stored_value> held,
                                   const core::node_id* from, core::time_point now);
  core::wire::message_body accept(const core::wire::store& s, std::optional<stored_value> held,
                                  const core::node_id* from, core::time_point now);
  // NACK `locked` when a live lease of another node than `from` covers the key.
  std::optional<core::wire::nack> leased(const core::node_id& key, const core::node_id* from, core::time_point now);
  core::wire::message_body commit(const core::wire::store& s, std::uint64_t held_version, const core::node_id* from,
                                  core::time_point now);

  // The state of `key`, made on first use; null when the table is full and nothing can go.
  slot_state* find_or_make(const core::node_id& key, core::time_point now);
  // The same, with its open slot moved to `slot` (what was promised for another slot is over).
  slot_state* open_slot(const core::node_id& key, std::uint64_t slot, core::time_point now);
  // Promises ballot `s` for `slot` (opening it): the slot, or the refusal (a live lease of
  // another node, no room for the key's state, a higher ballot promised already).
  std::variant<slot_state*, core::wire::message_body> promise(const core::wire::store& s, std::uint64_t slot,
                                                              const core::node_id* from, core::time_point now);
  static void close_slot(slot_state& st);
  bool make_room(core::time_point now);
  void remember(slot_state& st, std::uint64_t version, const proposal_id& proposal);
  std::optional<proposal_id> writer_of(const core::node_id& key, std::uint64_t version) const;
  core::wire::nack conflict(const core::wire::store& s, std::uint64_t version, byte_vector value) const;
  core::wire::nack outbid(const ballot& promised) const;

  value_store& store_;
  cas_acceptor_limits limits_;
  lease_guard* guard_ = nullptr;
  std::unordered_map<core::node_id, slot_state> slots_;
};

}  // namespace kadnet::dht
