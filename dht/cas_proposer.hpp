#pragma once
// The proposer side of compare-and-swap (docs/PROTOCOL.md 8.6): one cas() or update() over a
// fixed set of replicas (the key's k closest, found by the caller), as a sans-I/O state machine in
// the style of dht/lookup.hpp. It never sends, never reads a clock; it says whom to send what.
//
// One operation:
//   1. read     FIND_VALUE to every replica; with a majority of answers, the highest version among
//               them is the current value (a value is committed only once chosen, so it is one).
//               cas: a current version other than `expected` ends in conflict here.
//               update: fn(current) gives the new value, or nothing (then done, nothing written).
//   2. prepare  slot = current version + 1, a ballot above every ballot seen, the base (current
//               value) for replicas that lag. With a majority of promises the proposer must
//               propose the accepted value of the highest ballot among them, if any, else its own.
//   3. accept   with a majority of ACKs the value is chosen;
//   4. commit   sent to every replica (not waited for). If the chosen proposal was ours: success.
//               Otherwise the slot went to another writer: cas ends in conflict with it as the
//               current value; update applies fn to it and goes to 2 for the next slot.
//   A replica answering "that slot is decided" (conflict) ends the slot at once: success when it
//   says our proposal made it (our replies were lost), else as if another writer won. A prepare or
//   accept without a majority (outbid by a higher ballot, timeouts) is retried with a higher
//   ballot after a random backoff, doubling per failure from backoff_min up to backoff_max, so that
//   contending writers spread out instead of outbidding each other forever.
//
// Contract (what to call after what):
//   * Call next(now) until it returns `waiting` or `finished`. Each `send` is a request for the
//     replica of that index; report its outcome exactly once with on_reply(replica, tag, reply)
//     (ACK, NACK, or an error such as a timeout). Replies of earlier rounds and of commits are
//     ignored.
//   * waiting{until}: call next() again after any on_reply, or at `until` (a backoff) at the latest.
//   * finished: the outcome; next() keeps returning it.
// Every bad reply (does not decode, wrong kind) counts as that replica saying no.
// A prepare or accept that cannot reach a majority while some replica refused it with NACK
// `locked` and a lock_refusal (another node holds a live lease on the key, 8.8) is not retried: the
// operation ends with errc::locked, naming the holder.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <variant>
#include <vector>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/node_engine.hpp"
#include "kadnet/core/node_id.hpp"
#include "kadnet/core/rpc_tracker.hpp"
#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/cas_codec.hpp"
#include "kadnet/dht/lock_record.hpp"

namespace kadnet::dht {

struct cas_config {
  std::size_t max_attempts = 100;              // reads and prepare rounds one operation may start
  std::chrono::milliseconds backoff_min{10};   // the first retry waits a random time below this,
  std::chrono::milliseconds backoff_max{2000}; // doubling per failure in a row up to this
};

struct versioned_value {
  std::uint64_t version = 0;
  byte_vector value;
  friend bool operator==(const versioned_value&, const versioned_value&) = default;
};

// update()'s function: the new value from the current one (nullopt: the key holds nothing), or
// nullopt to leave the key as it is. Called once per attempt, on the node's thread; it must not
// throw (the exception would leave through whatever call fed the DHT).
using update_function = std::function<std::optional<byte_vector>(const std::optional<versioned_value>& current)>;

struct cas_outcome {
  // clear: done (written says whether our value was written); cas_conflict: the key was not at the
  // expected version; no_quorum: no majority answered in time, or the attempts ran out; owned_key;
  // too_large (the new value); not_connected.
  boost::system::error_code ec;
  std::uint64_t version = 0;        // written: the new version; otherwise the current one (0: none)
  std::optional<byte_vector> value; // the value of `version` (nullopt for version 0)
  bool written = false;
  bool maybe_written = false;       // no_quorum after our value was sent to be accepted: it may yet
                                    // be chosen; a retry could write it twice
  std::size_t attempts = 0;         // reads and prepare rounds
  std::size_t reads = 0;            // of those, reads
  std::size_t messages = 0;         // requests sent
  // When the proposer made the value it last proposed of its own (none was sent anywhere before):
  // a replica can hold it no earlier. Locks count a granted lease from here.
  core::time_point value_since{};
  // locked: the refusal of the replica that counts the lease longest.
  std::optional<lock_refusal> locked_by;
};

class cas_proposer {
 public:
  struct send {
    std::size_t replica;
    std::uint64_t tag;
    core::wire::message_body body;
  };
  struct waiting {
    std::optional<core::time_point> until;
  };
  struct finished {
    cas_outcome outcome;
  };
  using action = std::variant<send, waiting, finished>;

  struct settings {
    core::node_id key;
    core::node_id self;                 // the proposer's id, half of its ballots
    std::size_t replicas = 0;           // indices 0..replicas-1, the caller's to map to nodes
    std::chrono::seconds ttl{86400};    // what replicas keep a committed version for
    std::size_t max_value_size = 64 * 1024;
    cas_config config;
    std::function<void(mutable_byte_span)> random;  // proposal ids and backoff
    // A round above `above` that no other proposer with this `self` uses: ballots must be unique,
    // and one node may run several operations at once; 0 when none is left (rounds never wrap).
    // Empty: this proposer is alone on its node.
    std::function<std::uint64_t(std::uint64_t above)> take_round;
  };

  // cas: write `value` as version expected_version + 1 if the key is at expected_version (0: the
  // key holds nothing).
  cas_proposer(settings s, std::uint64_t expected_version, byte_vector value);
  // update: read-modify-cas until fn's value is written or fn declines.
  cas_proposer(settings s, update_function fn);

  action next(core::time_point now);
  void on_reply(std::size_t replica, std::uint64_t tag, const core::reply& r, core::time_point now);

 private:
  enum class stage { start, read, prepare, accept, backoff, done };
  enum class resume { read, prepare, next_slot };

  std::size_t majority() const { return settings_.replicas / 2 + 1; }
  std::uint64_t slot() const { return base_.version + 1; }

  // A read or prepare round: false (and finished) when the attempts are used up.
  bool begin_attempt(stage s);
  void open_exchange(stage s);
  void send_all(const core::wire::message_body& body, std::uint64_t tag);
  core::wire::store consensus_store(core::wire::consensus_phase phase, const byte_vector& value,
                                    const proposal_id& proposal) const;
  void start_read();
  void start_prepare();
  void start_accept(byte_vector value, const proposal_id& proposal);
  void chosen();
  // The current value is known (read, or another writer's chosen value): decide what comes next.
  void on_current(versioned_value current);
  void on_read_reply(const core::reply& r);
  void on_prepare_reply(const core::reply& r);
  void on_accept_reply(const core::reply& r);
  // A replica said the slot is decided (or holds its base with other bytes).
  void on_decided(const cas_conflict& c);
  // The slot went to another writer; `current` is the key's value now.
  void lost_slot(versioned_value current);
  void on_outbid(const core::reply& r);
  // After a reply: when a majority can no longer say yes, back off and retry the exchange.
  void check_failed();
  void back_off(resume then);
  void finish(boost::system::error_code ec, versioned_value current, bool written = false,
              bool maybe_written = false);

  settings settings_;
  std::optional<std::uint64_t> expected_;  // cas; else update
  byte_vector cas_value_;
  update_function update_;

  stage stage_ = stage::start;
  std::deque<send> to_send_;
  std::uint64_t tag_ = 0;                   // the current exchange; commits use 0
  std::vector<bool> answered_;
  std::size_t yes_ = 0, no_ = 0;
  std::optional<lock_refusal> locked_by_;   // in the current exchange
  std::size_t attempts_ = 0, reads_ = 0, failures_in_a_row_ = 0, messages_ = 0;
  core::time_point now_{};                  // of the latest call in
  core::time_point wake_{};
  resume after_backoff_ = resume::read;

  std::optional<versioned_value> best_read_;
  versioned_value base_;                    // the committed version the slot builds on
  byte_vector mine_;                        // our value for the slot
  core::time_point value_since_{};          // when mine_ was made
  proposal_id my_proposal_{};
  bool my_accept_sent_ = false;             // our value may be accepted somewhere for this slot
  std::uint64_t round_ = 0, highest_round_seen_ = 0;
  std::optional<accepted_proposal> highest_accepted_;
  byte_vector proposing_value_;
  proposal_id proposing_{};
  std::optional<versioned_value> undecided_;  // decided by someone, unknown whom, ours maybe
  std::optional<cas_outcome> result_;
};

}  // namespace kadnet::dht
