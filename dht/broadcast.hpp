#pragma once
// SHOUT, sans-I/O: a broadcast that reaches every node once, along a tree cut from the routing
// tables (PROTOCOL.md 5.5 and 8.4).
//
// The tree. A SHOUT tells its receiver which part of the id space it covers, relative to the
// receiver's own id: the ids sharing its first `scope` bits, plus the subtrees next to its path
// listed in `also_levels` (the ids sharing exactly ℓ leading bits with it). The origin sends with
// scope 0 (everyone). A node splits its part among the contacts it knows inside it: it walks the
// id bits, and wherever its known contacts (and itself) fall on both sides of a bit it cuts
// there; a contact alone in its piece becomes that piece's delegate. Where the contacts of a
// piece all fall on one side of a bit, the other side may hold nodes this node does not know:
// along this node's own path it is empty (Kademlia's tables know at least one node in every
// non-empty subtree next to their own id); elsewhere one contact of the piece is asked to cover
// it too, as an "also" level — for that contact it is the subtree next to its own path at that
// level, which its own table knows from the inside. So every contact this node knows in its part
// gets the shout straight from it, and parts never overlap: in a healthy network every node gets
// exactly one copy, and each hop narrows the part by about log2(k) bits. The origin does not
// trust an empty subtree along its path well above the deepest one it knows someone in (a node
// that has just joined has such gaps until its refreshes fill them): it looks into each.
//
// Repair. Every SHOUT is a request: the delegate ACKs on receipt. A delegate that does not answer
// within a few round trips (`timeout_rtts`) gets the same SHOUT again (`attempts_per_delegate`
// sends in all); after that each subtree of its part is split again among the other contacts
// this node knows in it or, when it knows none there, among the live nodes a lookup into that
// subtree finds. A NACK (rate limit, bad signature) is not repaired.
//
// Defences. The origin signs (origin, sequence, payload); a SHOUT that fails the check is NACKed
// and not forwarded. The sequence is dated (the wall-clock millisecond the shout was made, in its
// top 48 bits), and a shout older than max_age or dated ahead of max_ahead is refused: a replay
// is dropped by the seen-cache while it remembers the name, and by its date after. A bounded,
// time-limited seen-cache drops duplicates without checking them again; when it forgets a name
// to make room, that origin's shouts dated no later are refused from then on. A token bucket per
// origin (bounded set of origins) limits the rate; payloads are capped.
// The part (and `hops`) cannot be signed, as it changes at every hop, so whichever copy comes
// first cannot decide it: a node covers the union of the parts its copies ask for. A later copy
// asking for levels not covered yet is checked like a first one and forwarded over those levels
// only (not delivered again). So a copy cut down by whoever sent it first (an empty part, say)
// delays the genuine part by no more than the genuine copy takes to arrive; a copy with too wide
// a part costs at most one table's worth of sends per node, as every level is covered once.
// `hops` only counts (saturating at 255): the parts and the seen-cache bound the copies (a
// flooding node, which has no parts, stops at 255).
//
// `flood` turns the tree off (every node forwards to every contact, once): the baseline the
// broadcast benchmark compares against.
#include <bitset>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/fifo.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/core/node_engine.hpp"
#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/contact.hpp"
#include "kadnet/dht/seen_cache.hpp"

namespace kadnet::dht {

class routing_table;

struct broadcast_config {
  std::size_t max_payload = 16 * 1024;
  // Shouts remembered to drop duplicates, and for how long: longer than a shout is taken for
  // (max_age + max_ahead), so that a replay is refused by its date once it is forgotten here.
  std::size_t seen_capacity = 1u << 16;
  std::chrono::milliseconds seen_lifetime{std::chrono::minutes(15)};
  // A shout's sequence carries the wall-clock millisecond it was made (its top 48 bits: PROTOCOL.md
  // 5.5): one made more than max_age ago, or more than max_ahead in the future, is refused. The
  // wall clock is `now` plus wall_offset (the node's driver sets it: wall time minus the steady
  // time it passes as `now`; on one simulated clock, 0 does).
  std::chrono::milliseconds max_age{std::chrono::minutes(10)};
  std::chrono::milliseconds max_ahead{std::chrono::minutes(2)};
  std::chrono::milliseconds wall_offset{0};
  // Per origin: a token bucket of `origin_burst` shouts refilled at `origin_rate` per second.
  double origin_rate = 20.0;
  double origin_burst = 50.0;
  std::size_t max_origins_tracked = 4096;
  // Sends of one SHOUT to one delegate before its part goes to others.
  int attempts_per_delegate = 2;
  // How long a delegate has to ACK one send (counted once its session is up): `timeout_rtts` of
  // its smoothed RTT — of the slowest among the contacts its part was cut from, if it has none
  // yet — within [min_send_timeout, max_send_timeout], plus the time the SHOUTs handed out
  // together for one part take to leave at `uplink_bytes_per_second` (each waits behind the
  // others; 0: no allowance). A lost SHOUT or ACK, or a delegate that died, is so repaired a few
  // round trips later instead of after the request timeout (1 s or more) twice. `timeout_rtts`
  // 0 turns it off.
  int timeout_rtts = 4;
  std::chrono::milliseconds min_send_timeout{200};
  std::chrono::milliseconds max_send_timeout{1000};
  double uplink_bytes_per_second = 1.25e6;  // 10 Mbit/s: a modest uplink
  // Benchmark baseline: forward to every contact instead of along the tree.
  bool flood = false;
};

// A shout from another node, delivered once.
struct shout_delivery {
  core::node_id origin;
  std::uint64_t sequence = 0;
  std::uint8_t hops = 0;  // forwards between the origin and this node
  byte_vector payload;
};

struct broadcast_counters {
  std::uint64_t delivered = 0;      // shouts handed to the application
  std::uint64_t duplicates = 0;     // copies of shouts already seen
  std::uint64_t forged = 0;         // bad signature: dropped
  std::uint64_t rate_limited = 0;   // over the origin's rate: dropped
  std::uint64_t too_large = 0;      // payload over max_payload: dropped
  std::uint64_t stale = 0;          // dated too long ago (a replay), or in the future: dropped
  std::uint64_t widened = 0;        // copies of a seen shout asking for levels not covered yet
  std::uint64_t forwarded = 0;      // SHOUT requests sent (first sends and resends)
  std::uint64_t resent = 0;         // resends to a silent delegate
  std::uint64_t reassigned = 0;     // parts given to other delegates after one stayed silent
  std::uint64_t repair_lookups = 0; // subtrees looked into: of a silent delegate's part where this
                                    // node knew nobody else, or (the origin) next to its path
};

class broadcaster {
 public:
  // A SHOUT this node wants sent to `to`; report its reply with on_reply(handle, ...).
  struct send_request {
    std::uint64_t handle;
    contact to;
    core::wire::shout message;
    std::optional<std::chrono::milliseconds> timeout;  // nullopt: the transport's request timeout
  };
  // A lookup (FIND_NODE) the repair needs: report the live nodes it found with on_lookup_done.
  struct lookup_request {
    std::uint64_t handle;
    core::node_id target;
    int subtree_bits;  // the subtree looked into: the ids sharing this many leading bits with target
    // Nodes inside that had their second chance: an answer from them does not end the lookup.
    std::vector<core::node_id> spent;
  };

  // `self` and `table` must outlive the broadcaster. `first_count` starts the count below the
  // date of our sequences (a random one: a node restarted on a clock set back does not reuse
  // names its peers still hold as seen).
  broadcaster(const core::identity& self, const routing_table& table, broadcast_config config,
              std::uint16_t first_count = 0);
  // The wall clock's offset from the `now` we are given (broadcast_config::wall_offset), read
  // again by the driver: a clock step or a suspend moves it.
  void set_wall_offset(std::chrono::milliseconds offset) { config_.wall_offset = offset; }

  // Starts a shout of ours; nullopt when the payload is too large. The sends come from
  // poll_send(); `owner` is reported back by poll_finished() once every part was taken or given
  // up (0: nobody waits).
  std::optional<std::uint64_t> originate(byte_vector payload, std::uint64_t owner, core::time_point now);
  // A SHOUT from a peer: the reply to send (ACK, or NACK with the reason).
  core::wire::message_body receive(const core::node_id& from, const core::wire::message& m, core::time_point now);
  // What became of a send: ACK, NACK or a transport error (timeout, no session).
  void on_reply(std::uint64_t handle, const core::reply& r, core::time_point now);

  void on_lookup_done(std::uint64_t handle, const std::vector<contact>& found);

  std::optional<send_request> poll_send();
  std::optional<lookup_request> poll_lookup();
  std::optional<shout_delivery> poll_delivery();
  // An originated shout all of whose parts were taken (or given up): its owner and how many
  // delegates took it.
  struct finished { std::uint64_t owner; std::uint64_t sequence; std::size_t delegates; };
  std::optional<finished> poll_finished();

  const broadcast_counters& counters() const { return counters_; }

 private:
  using shout_key = message_name;
  // Levels of the id space, by how many leading bits an id shares with this node (0..255; 256:
  // this node itself): what a part takes in, or what a node has covered of a shout.
  using levels = std::bitset<core::id_bits + 1>;
  static levels levels_of(std::uint8_t scope, const std::vector<std::uint8_t>& also_levels);
  // The part of the id space a SHOUT asks its receiver to cover, relative to the receiver's id
  // (the wire's scope and also_levels).
  struct part {
    std::uint8_t scope = 0;
    std::vector<std::uint8_t> also_levels;  // ascending, each below scope
  };
  // One subtree: the ids sharing their first `length` bits with `around`.
  struct subtree {
    core::node_id around;
    int length = 0;
  };
  // A shout this node is forwarding: the message, and the work still out for it.
  struct active_shout {
    core::wire::shout message;
    std::size_t sends_out = 0;    // SHOUTs and repair lookups not yet answered
    std::uint64_t owner = 0;      // originated here: who waits for it
    bool originated = false;
    std::size_t delegates = 0;    // parts taken
    // Never sent to (again): the node it came from, and delegates that stayed silent.
    std::vector<core::node_id> excluded;
    // Silent delegates a repair lookup found alive and handed their subtree once more: a second
    // silence leaves them out for good (and their answers no longer end a repair lookup).
    std::vector<core::node_id> second_chance;
  };
  struct pending_send {
    shout_key key;
    contact to;
    part covers;
    int attempts_left;  // further sends if this one goes unanswered
    std::optional<std::chrono::milliseconds> timeout;
  };
  struct pending_lookup {
    shout_key key;
    subtree where;  // the subtree of a silent delegate's part that nobody else we know is in
  };
  struct origin_bucket {
    double tokens;
    core::time_point refilled;
    // The newest date of this origin's names the seen-cache forgot to make room: its shouts
    // dated no later are refused (they would no longer be recognised as seen).
    std::optional<std::uint64_t> forgotten_until_ms;
  };

  // Hands the shout on over these levels of our part of the id space.
  void forward(const shout_key& key, active_shout& s, const levels& ours);
  void reassign(const pending_send& failed, active_shout& s);
  // The origin: looks into subtrees next to its path that `known` (its contacts) leaves empty.
  void look_into_gaps(const shout_key& key, active_shout& s, const std::vector<contact>& known);
  // Splits `piece` among the live nodes a lookup into it finds (on_lookup_done).
  void look_into(const shout_key& key, active_shout& s, const subtree& piece);
  // The contacts of the table for which `inside` holds, that this shout may still go to.
  std::vector<contact> candidates(const shout_key& key, const active_shout& s,
                                  const std::function<bool(const core::node_id&)>& inside) const;
  // Cuts the ids below the first `depth` bits that candidates (and this node, with include_self)
  // share into parts and sends each its part.
  void split_among(const shout_key& key, active_shout& s, int depth, const std::vector<contact>& candidates,
                   bool include_self);
  void send(const shout_key& key, active_shout& s, const contact& to, part covers, int attempts,
            std::optional<std::chrono::milliseconds> timeout);
  // How long `to` has to ACK one send (see broadcast_config::timeout_rtts); `unmeasured` stands
  // in for its RTT if it has none; `burst_bytes` are the SHOUTs sent at once with it. nullopt:
  // the transport's request timeout.
  std::optional<std::chrono::milliseconds> send_timeout(const contact& to, std::chrono::microseconds unmeasured,
                                                        std::size_t burst_bytes) const;
  std::chrono::microseconds rtt_for_unmeasured(const std::vector<contact>& candidates) const;
  void settle(const shout_key& key);
  bool take_token(const core::node_id& origin, core::time_point now);
  // The wall-clock millisecond of `now` (see broadcast_config::wall_offset).
  std::uint64_t wall_ms(core::time_point now) const;
  // Whether a shout of `origin` with this sequence is dated within [now - max_age, now +
  // max_ahead] and after every name of that origin the seen-cache forgot to make room.
  bool fresh(const core::node_id& origin, std::uint64_t sequence, core::time_point now) const;
  // Records a shout as seen, with the levels covered of it.
  void remember(const shout_key& key, const levels& covered, core::time_point now);

  const core::identity& self_;
  const routing_table& table_;
  broadcast_config config_;
  std::uint64_t count_start_;  // where the count below the date starts each millisecond
  std::uint64_t next_sequence_ = 0;
  static constexpr int sequence_counter_bits = 16;  // below the date: shouts in one millisecond
  std::uint64_t next_handle_ = 1;

  std::unordered_map<shout_key, active_shout, message_name_hash> active_;
  std::unordered_map<std::uint64_t, pending_send> sends_;
  std::unordered_map<std::uint64_t, pending_lookup> lookups_;  // repairs waiting for a lookup
  core::fifo<send_request> out_;
  core::fifo<lookup_request> lookups_out_;
  core::fifo<shout_delivery> deliveries_;
  core::fifo<finished> finished_;

  seen_map<levels> seen_;  // each shout seen, and the levels covered of it
  std::unordered_map<core::node_id, origin_bucket> origins_;

  broadcast_counters counters_;
};

}  // namespace kadnet::dht
