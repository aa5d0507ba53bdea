#pragma once
// The Kademlia routing table: the contacts a node keeps, grouped in k-buckets by id prefix.
//
// Sans-I/O. The table never sends anything and never reads a clock: `now` is a parameter and
// randomness is injected. When it needs the network — to ping a bucket's least-recently-seen
// contact before replacing it, or to refresh a quiet bucket — it says so in a return value, and
// the caller reports the outcome back.
//
// Structure. The id space (256 bits) is split into buckets, each covering the ids that start with
// a given prefix (`depth` bits long). The table starts with one bucket of depth 0 that covers
// everything. A full bucket splits in two when
//   * it covers the node's own id, or
//   * (relaxed rule, Kademlia paper §4.2) the new contact would be among the k contacts closest to
//     self, so that the node always knows its whole neighbourhood, even when ids arrive unevenly;
// and never beyond depth 256. Other full buckets do not grow: old contacts are preferred, since a
// node that has been up long is likely to stay up, and an attacker cannot flush them out by
// announcing new ids.
//
// Contract for the caller (the node engine or the simulator):
//   1. Call insert() for every node heard from (or learned about) that should be routable.
//      * added / updated: nothing more to do.
//      * pending_ping (the bucket is full and its least-recently-seen contact has been quiet for
//        ping_if_quiet_for): ping `to_ping`, then call on_ping_answered() or on_ping_failed()
//        for it — exactly one of them. While that ping is outstanding the bucket answers
//        `cached` to further newcomers (they wait in the replacement cache); any sign of life
//        from the pinged contact (on_seen, insert) also settles it.
//      * cached, rejected_*: nothing to do.
//   2. Call on_seen() after any successful exchange with a node, on_request_failed() when a
//      request to it times out. After `max_consecutive_failures` consecutive failures a contact is
//      dropped and the newest usable replacement takes its place.
//   3. Call touched() for the target of every lookup, then periodically (at next_refresh() at the
//      latest) call refresh_targets() and start a lookup for each id it returns.
//
// Eclipse resistance: at most `max_per_prefix` contacts of one bucket may share an IPv4 /24 or an
// IPv6 /64 (of their first address); the same limit holds in each bucket's replacement cache.
// Contacts without an IP address (outbound-only nodes) are not counted.
//
// Memory: contacts live by value in one std::vector per bucket (grown up to k, never beyond), so a
// contact costs sizeof(contact) plus its addresses; a bucket costs sizeof(bucket) plus its two
// vectors. No per-contact allocation other than the addresses vector.
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <vector>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/node_id.hpp"
#include "kadnet/dht/constants.hpp"
#include "kadnet/dht/contact.hpp"

namespace kadnet::dht {

// Consecutive unanswered requests after which a contact is dropped from the table.
inline constexpr int max_consecutive_failures = 3;

struct routing_table_config {
  std::size_t k = default_k;            // contacts per bucket (at least 1)
  std::size_t max_per_prefix = 2;       // contacts per /24 or /64 in one bucket; 0 = unlimited
  std::size_t replacement_cache = default_k;  // replacements kept per bucket
  std::chrono::milliseconds refresh_interval = default_refresh_interval;
  // A bucket that splits off empty is refreshed this soon if it is still empty then.
  std::chrono::milliseconds empty_bucket_refresh{std::chrono::seconds(3)};
  // A full bucket pings its least-recently-seen contact for a newcomer only when that contact
  // has been quiet this long; one heard from more recently is good (BEP 5's 15 minutes) and the
  // newcomer just waits in the replacement cache. Without it every contact a lookup reply names
  // lands in a full bucket and costs a PING, often over a new session (docs/PROTOCOL.md 8.3).
  // 0: ping for every newcomer.
  std::chrono::milliseconds ping_if_quiet_for{std::chrono::minutes(15)};
};

enum class insert_outcome {
  added,            // the contact is now in its bucket, most recently seen
  updated,          // it was already there: last_seen, rtt and addresses refreshed, moved to MRU
  pending_ping,     // bucket full: ping `to_ping` (its least-recently-seen contact) and report the
                    // result; the newcomer waits in the replacement cache meanwhile
  cached,           // bucket full and a ping is already outstanding, or its least-recently-seen
                    // contact was heard from within ping_if_quiet_for: the newcomer waits in the
                    // replacement cache
  rejected_prefix,  // the bucket already holds max_per_prefix contacts from its /24 or /64
  rejected_self,    // the contact is this node
};

struct insert_result {
  insert_outcome outcome;
  std::optional<contact> to_ping;  // set exactly when outcome == pending_ping
};

// Read-only view of one bucket, for the CLI `buckets` command and for tests.
struct bucket_view {
  int depth = 0;                     // prefix length in bits
  core::node_id prefix;              // lowest id in the bucket's range
  std::vector<contact> contacts;     // least recently seen first
  std::size_t replacements = 0;      // contacts waiting in the replacement cache
};

class routing_table {
 public:
  // Fills the span with random bytes (a seeded generator in tests and simulations).
  using random_source = std::function<void(mutable_byte_span)>;

  // Throws std::invalid_argument when config.k is 0.
  routing_table(const core::node_id& self, routing_table_config config = {});

  const core::node_id& self() const { return self_; }
  const routing_table_config& config() const { return config_; }

  // Adds or refreshes a contact (see insert_outcome). A newly added contact gets last_seen = now;
  // failures start at 0. On update, an empty address list keeps the known addresses (the node
  // reached us over its own session), and new addresses that would break the prefix limit are
  // ignored while the rest is still refreshed. Any insert not rejected marks the bucket touched.
  insert_result insert(const contact& c, core::time_point now);
  // A contact another node told us of (in a FIND_NODE or FIND_VALUE reply): an unknown one is
  // inserted as above. A known one (in a bucket or the replacement cache) is left as it is,
  // except that one known without addresses gets these: hearsay is no sign of life (a dead
  // node others still list must keep failing), and a node's addresses are what it announced
  // itself, not what a third node claims (or any node could point us elsewhere for a victim's
  // id). Returns `updated` for a known contact.
  insert_result learn(const contact& c, core::time_point now);

  // The pinged contact answered: it stays, most recently seen, with its rtt sample folded in.
  // The newcomer stays in the replacement cache. Unknown ids are ignored.
  void on_ping_answered(const core::node_id& id, core::time_point now, std::chrono::microseconds rtt);
  // The pinged contact did not answer: it is evicted and the newest usable replacement promoted.
  void on_ping_failed(const core::node_id& id);
  // A request to the node went unanswered. After max_consecutive_failures in a row the contact
  // is removed (from the bucket or from the replacement cache) and replaced from the cache.
  void on_request_failed(const core::node_id& id);
  // A session with the node came up or ended (contact::connected); unknown ids are ignored.
  void set_connected(const core::node_id& id, bool connected);
  // Whether the table knows the node (in its bucket or as a replacement) with a session up.
  bool is_connected(const core::node_id& id) const;
  // Any successful interaction: refreshes last_seen, resets failures, folds in rtt when nonzero,
  // moves the contact to most recently seen. Does not add unknown nodes (use insert for that).
  void on_seen(const core::node_id& id, core::time_point now, std::chrono::microseconds rtt);

  // Up to n contacts closest to target by XOR distance, closest first; exact over the whole
  // table. With dialable_only, contacts without addresses are skipped (never handed out).
  std::vector<contact> closest(const core::node_id& target, std::size_t n,
                               bool dialable_only = false) const;

  std::optional<contact> find(const core::node_id& id) const;
  // Removes a contact (or a waiting replacement); a bucket that loses a contact promotes a
  // replacement. Returns whether anything was removed.
  bool remove(const core::node_id& id);
  // Contacts in buckets (replacements not counted).
  std::size_t size() const { return size_; }

  // Marks the bucket covering id_in_range as refreshed at now (call it for every lookup target).
  void touched(const core::node_id& id_in_range, core::time_point now);
  // For each bucket not touched within refresh_interval, a random id inside its range. Those
  // buckets are marked touched at now, so the next call returns them only after another interval;
  // start a lookup for each target. Buckets never touched (a new table) count as stale.
  std::vector<core::node_id> refresh_targets(core::time_point now, const random_source& random);
  // When refresh_targets() will next have something to return.
  core::time_point next_refresh() const;

  std::vector<bucket_view> buckets() const;
  // Whether the bucket covering id_in_range holds no contact.
  bool bucket_empty(const core::node_id& id_in_range) const;
  // Every contact in the table (for a snapshot), bucket by bucket.
  std::vector<contact> all() const;
  // The contacts waiting in the replacement caches, bucket by bucket.
  std::vector<contact> replacements() const;

 private:
  struct bucket {
    core::node_id prefix;                       // low bound; bits at and after depth are zero
    std::vector<contact> contacts;              // least recently seen first
    std::vector<contact> replacements;          // oldest first
    core::time_point last_touched{};
    std::optional<core::node_id> pending_ping;  // contact pinged before a replacement
    int depth = 0;

    bool covers(const core::node_id& id) const;
  };

  std::size_t bucket_for(const core::node_id& id) const;
  void split(std::size_t index, core::time_point now);
  bool should_split(const bucket& b, const core::node_id& newcomer) const;
  bool prefix_allows(const std::vector<contact>& in, const contact& c) const;
  void add_replacement(bucket& b, contact c);
  bool promote_replacement(bucket& b);  // false when none fits
  void erase_contact(bucket& b, std::size_t pos);
  void collect_closest(std::size_t lo, std::size_t hi, int depth, const core::node_id& target,
                       std::size_t n, bool dialable_only,
                       std::vector<const contact*>& out) const;

  core::node_id self_;
  routing_table_config config_;
  std::vector<bucket> buckets_;  // sorted by prefix; their ranges partition the id space
  std::size_t size_ = 0;
};

}  // namespace kadnet::dht
