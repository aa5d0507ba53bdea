#include "kadnet/dht/broadcast.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kadnet/core/errors.hpp"
#include "kadnet/dht/routing_table.hpp"

namespace kadnet::dht {

namespace {

namespace wire = core::wire;

// The oldest entry of a queue, taken out of it.
template <typename T>
std::optional<T> take_front(core::fifo<T>& queue) {
  if (queue.empty()) return std::nullopt;
  T front = std::move(queue.front());
  queue.pop_front();
  return front;
}

wire::nack refuse(wire::nack_code code, std::string text) {
  return wire::nack{static_cast<std::uint8_t>(wire::opcode::shout), code, std::move(text), {}};
}

// One contact (or this node, when `to` is null) and the part of the id space it covers.
struct share {
  const core::node_id* id;
  const contact* to;  // null: this node
  int scope = -1;     // -1: no part of its own
  std::vector<std::uint8_t> also_levels;
};

// The delegate among candidates: the one with the fewest requests unanswered in a row (one that
// failed its last requests is likely dead), then the fastest measured, then the most recently seen.
share& fastest(std::vector<share>& shares, std::size_t lo, std::size_t hi) {
  auto better = [](const share& a, const share& b) {
    if (a.to->failures != b.to->failures) return a.to->failures < b.to->failures;
    auto ra = a.to->rtt.count(), rb = b.to->rtt.count();
    if ((ra > 0) != (rb > 0)) return ra > 0;
    if (ra != rb) return ra < rb;
    return a.to->last_seen > b.to->last_seen;
  };
  return *std::min_element(shares.begin() + static_cast<std::ptrdiff_t>(lo),
                           shares.begin() + static_cast<std::ptrdiff_t>(hi), better);
}

// Cuts the ids in shares[lo, hi) — sorted, all sharing their first `depth` bits, covering the
// subtree of those bits; `ours` when that subtree holds this node — into parts. A bit where the
// ids fall on both sides cuts the range in two. Where they all fall on one side, the other side
// is empty along our own path (Kademlia's tables know every non-empty subtree next to their own
// id); elsewhere one contact here covers it as an "also" level, from the inside.
void cut(std::vector<share>& shares, std::size_t lo, std::size_t hi, int depth, bool ours) {
  auto holds_self = [&](std::size_t from, std::size_t to) {
    return std::any_of(shares.begin() + static_cast<std::ptrdiff_t>(from),
                       shares.begin() + static_cast<std::ptrdiff_t>(to), [](const share& s) { return s.to == nullptr; });
  };
  int scope = depth;
  while (hi - lo > 1 && depth < core::id_bits) {
    auto first_one = std::partition_point(shares.begin() + static_cast<std::ptrdiff_t>(lo),
                                          shares.begin() + static_cast<std::ptrdiff_t>(hi),
                                          [depth](const share& s) { return !s.id->bit(depth); });
    auto m = static_cast<std::size_t>(first_one - shares.begin());
    if (m == lo || m == hi) {
      if (!ours) fastest(shares, lo, hi).also_levels.push_back(static_cast<std::uint8_t>(depth));
    } else {
      bool left_ours = ours && holds_self(lo, m);
      cut(shares, lo, m, depth + 1, left_ours);
      lo = m;
      ours = ours && !left_ours;
    }
    scope = ++depth;
  }
  if (ours) return;  // our own part: we hold the shout already
  fastest(shares, lo, hi).scope = scope;
}

// A SHOUT's bytes besides its payload, roughly: header, origin, sequence, signature, part.
constexpr std::size_t wire_overhead = 128;

// How many levels above the deepest known one a subtree must be for the origin to look into it
// when its table knows nobody there (look_into_gaps).
constexpr int gap_margin = 4;

bool contains(const std::vector<core::node_id>& ids, const core::node_id& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// The id `around` with bit `level` flipped: inside the subtree next to its path at that level.
core::node_id across(const core::node_id& around, int level) {
  auto bytes = around.bytes();
  bytes[static_cast<std::size_t>(level / 8)] ^= static_cast<std::uint8_t>(0x80u >> (level % 8));
  return core::node_id(bytes);
}

}  // namespace

broadcaster::broadcaster(const core::identity& self, const routing_table& table, broadcast_config config,
                         std::uint16_t first_count)
    : self_(self),
      table_(table),
      config_(config),
      count_start_(first_count & 0x7fffu),  // room below the date for 32,768 shouts in one millisecond
      seen_(config.seen_capacity, config.seen_lifetime) {}

std::uint64_t broadcaster::wall_ms(core::time_point now) const {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) + config_.wall_offset;
  return static_cast<std::uint64_t>(std::max<std::int64_t>(ms.count(), 0));
}

bool broadcaster::fresh(const core::node_id& origin, std::uint64_t sequence, core::time_point now) const {
  const std::uint64_t made = sequence >> sequence_counter_bits;
  const std::uint64_t wall = wall_ms(now);
  const auto age = static_cast<std::uint64_t>(std::max<std::int64_t>(config_.max_age.count(), 0));
  const auto ahead = static_cast<std::uint64_t>(std::max<std::int64_t>(config_.max_ahead.count(), 0));
  if (made + age < wall || made > wall + ahead) return false;
  auto bucket = origins_.find(origin);
  return bucket == origins_.end() || !bucket->second.forgotten_until_ms || made > *bucket->second.forgotten_until_ms;
}

void broadcaster::remember(const shout_key& key, const levels& covered, core::time_point now) {
  // A full seen-cache forgets its oldest name for this one: from now on, refuse what its origin
  // sent dated no later than that name, which would no longer be recognised as seen.
  if (seen_.size() >= seen_.capacity())
    if (const message_name* going = seen_.oldest())
      if (auto bucket = origins_.find(going->origin); bucket != origins_.end()) {
        auto& until = bucket->second.forgotten_until_ms;
        until = std::max(until.value_or(0), going->sequence >> sequence_counter_bits);
      }
  seen_.insert(key, covered, now);
}

std::optional<std::uint64_t> broadcaster::originate(byte_vector payload, std::uint64_t owner, core::time_point now) {
  if (payload.size() > config_.max_payload) return std::nullopt;
  // Dated: the wall-clock millisecond in the top bits, a count below for shouts in one millisecond.
  next_sequence_ = std::max(next_sequence_, (wall_ms(now) << sequence_counter_bits) | count_start_);
  shout_key key{self_.id(), next_sequence_++};
  remember(key, levels().set(), now);
  active_shout& s = active_[key];
  s.message.origin = key.origin;
  s.message.sequence = key.sequence;
  s.message.payload = std::move(payload);
  s.message.sig = self_.sign(wire::shout_signed_bytes(s.message));
  s.owner = owner;
  s.originated = true;
  forward(key, s, levels().set());
  if (s.sends_out == 0) settle(key);
  return key.sequence;
}

broadcaster::levels broadcaster::levels_of(std::uint8_t scope, const std::vector<std::uint8_t>& also_levels) {
  levels l = levels().set() << scope;  // every level from scope on
  for (std::uint8_t level : also_levels) l.set(level);
  return l;
}

wire::message_body broadcaster::receive(const core::node_id& from, const wire::message& m, core::time_point now) {
  const auto* in = std::get_if<wire::shout>(&m.body);
  if (!in) return refuse(wire::nack_code::bad_request, "not a SHOUT");
  shout_key key{in->origin, in->sequence};
  const wire::ack taken{m.opcode, {}};
  // What this copy asks us to cover that no copy did before (all of it, for the first). A
  // flooding node covers everything at once. Nobody hands on a part holding itself (a cut puts
  // the cutter on its own side), so no part from `from` reaches down to the ids that share no
  // more bits with us than `from` does: whatever a copy says, a sender cannot widen us past that.
  const levels asked = config_.flood ? levels().set()
                                     : levels_of(in->scope, in->also_levels) &
                                           (levels().set() << static_cast<std::size_t>(from.common_prefix_length(self_.id()) + 1));
  levels* covered = seen_.find(key, now);
  const levels more = covered ? asked & ~*covered : asked;
  if (more.none()) {
    ++counters_.duplicates;
    return taken;
  }
  if (!covered && !fresh(in->origin, in->sequence, now)) {
    ++counters_.stale;
    return refuse(wire::nack_code::stale, "shout dated too long ago or in the future (a replay, or clocks apart)");
  }
  if (in->payload.size() > config_.max_payload) {
    ++counters_.too_large;
    return refuse(wire::nack_code::too_large, "shout payload over " + std::to_string(config_.max_payload) + " bytes");
  }
  if (!core::identity::verify(in->origin, wire::shout_signed_bytes(*in), in->sig)) {
    ++counters_.forged;
    return refuse(wire::nack_code::bad_request, "shout signature does not verify");
  }
  if (covered) {
    // Seen, but the copies before asked for less: the part is not signed, and the first copy may
    // have been cut down by whoever sent it. Covered now too; delivered once already.
    *covered |= more;
    ++counters_.widened;
  } else {
    if (!take_token(in->origin, now)) {
      ++counters_.rate_limited;
      return refuse(wire::nack_code::rate_limited, "too many shouts from this origin");
    }
    remember(key, asked, now);
    ++counters_.delivered;
    deliveries_.push_back(shout_delivery{in->origin, in->sequence, in->hops, in->payload});
  }
  // Flooding has no parts to narrow: the hop count is what ends a copy still going round after
  // its name left the seen-cache. (Along the tree, every hop shares more leading bits with the
  // receiver than the sender did, so no path is longer than 256.)
  if (config_.flood && in->hops == 255) return taken;
  auto [it, first] = active_.try_emplace(key);
  active_shout& s = it->second;
  const auto hops = static_cast<std::uint8_t>(std::min(in->hops + 1, 255));
  if (first) s.message = *in;
  // A count only (any sender can write it): the lowest of the copies.
  if (first || hops < s.message.hops) s.message.hops = hops;
  if (!contains(s.excluded, from)) s.excluded.push_back(from);  // never back to the sender: it has the shout
  forward(key, s, more);
  if (s.sends_out == 0) active_.erase(key);
  return taken;
}

std::vector<contact> broadcaster::candidates(const shout_key& key, const active_shout& s,
                                             const std::function<bool(const core::node_id&)>& inside) const {
  // The table's contacts, and the replacements we have a session with: more contacts, smaller
  // parts, fewer hops; a replacement without a session would cost a dial on the shout's path.
  std::vector<contact> known = table_.all();
  for (contact& c : table_.replacements())
    if (c.dialable() && c.connected) known.push_back(std::move(c));
  std::erase_if(known, [&](const contact& c) {
    return c.id == key.origin || !inside(c.id) || contains(s.excluded, c.id);
  });
  return known;
}

void broadcaster::forward(const shout_key& key, active_shout& s, const levels& ours) {
  if (config_.flood) {
    for (const contact& c : candidates(key, s, [](const core::node_id&) { return true; }))
      send(key, s, c, part{}, 1, std::nullopt);
    return;
  }
  auto inside = [&](const core::node_id& id) {
    return ours.test(static_cast<std::size_t>(id.common_prefix_length(self_.id())));
  };
  int widest = 0;
  while (widest < core::id_bits && !ours.test(static_cast<std::size_t>(widest))) ++widest;
  std::vector<contact> known = candidates(key, s, inside);
  split_among(key, s, widest, known, true);
  if (s.originated) look_into_gaps(key, s, known);
}

// The tree takes a subtree next to our path where we know nobody for empty, as Kademlia's tables
// promise. A node that has just joined does not keep that promise yet (its far buckets fill with
// the refreshes that follow the join): shouting then, it would leave out whole quarters of the
// network. So the origin looks into each such subtree well above the deepest one it knows anyone
// in, where a table that keeps the promise has none.
void broadcaster::look_into_gaps(const shout_key& key, active_shout& s, const std::vector<contact>& known) {
  int deepest = -1;
  std::vector<bool> known_at(core::id_bits, false);
  for (const contact& c : known) {
    int shared = c.id.common_prefix_length(self_.id());
    if (shared >= core::id_bits) continue;
    known_at[static_cast<std::size_t>(shared)] = true;
    deepest = std::max(deepest, shared);
  }
  // A subtree `gap_margin` levels above the deepest we know anyone in holds about 2^gap_margin
  // times as many nodes: empty only by a fluke (the closer ones often are empty for real).
  for (int level = 0; level <= deepest - gap_margin; ++level)
    if (!known_at[static_cast<std::size_t>(level)]) look_into(key, s, subtree{across(self_.id(), level), level + 1});
}

void broadcaster::look_into(const shout_key& key, active_shout& s, const subtree& piece) {
  ++counters_.repair_lookups;
  std::uint64_t handle = next_handle_++;
  lookups_.emplace(handle, pending_lookup{key, piece});
  lookups_out_.push_back(lookup_request{handle, piece.around, piece.length, s.second_chance});
  ++s.sends_out;
}

void broadcaster::split_among(const shout_key& key, active_shout& s, int depth, const std::vector<contact>& candidates,
                              bool include_self) {
  std::vector<share> shares;
  shares.reserve(candidates.size() + 1);
  for (const contact& c : candidates) shares.push_back(share{&c.id, &c, -1, {}});
  if (include_self) shares.push_back(share{&self_.id(), nullptr, -1, {}});
  if (shares.empty()) return;
  std::sort(shares.begin(), shares.end(), [](const share& a, const share& b) { return *a.id < *b.id; });
  cut(shares, 0, shares.size(), depth, include_self);
  const std::chrono::microseconds unmeasured = rtt_for_unmeasured(candidates);
  std::size_t sends = 0;
  for (const share& piece : shares) sends += piece.to && piece.scope >= 0;
  const std::size_t burst_bytes = sends * (s.message.payload.size() + wire_overhead);
  for (share& piece : shares)
    if (piece.to && piece.scope >= 0)
      send(key, s, *piece.to, part{static_cast<std::uint8_t>(std::min(piece.scope, 255)), std::move(piece.also_levels)},
           config_.attempts_per_delegate, send_timeout(*piece.to, unmeasured, burst_bytes));
}

void broadcaster::send(const shout_key& key, active_shout& s, const contact& to, part covers, int attempts,
                       std::optional<std::chrono::milliseconds> timeout) {
  std::uint64_t handle = next_handle_++;
  wire::shout m = s.message;
  m.scope = covers.scope;
  m.also_levels = covers.also_levels;
  sends_.emplace(handle, pending_send{key, to, std::move(covers), attempts - 1, timeout});
  ++s.sends_out;
  ++counters_.forwarded;
  out_.push_back(send_request{handle, to, std::move(m), timeout});
}

// A delegate we have no RTT for yet is given the slowest RTT among the candidates (or, none of
// them measured, in the whole table).
std::chrono::microseconds broadcaster::rtt_for_unmeasured(const std::vector<contact>& candidates) const {
  std::chrono::microseconds slowest{0};
  for (const contact& c : candidates) slowest = std::max(slowest, c.rtt);
  if (slowest.count() <= 0)
    for (const contact& c : table_.all()) slowest = std::max(slowest, c.rtt);
  return slowest;
}

std::optional<std::chrono::milliseconds> broadcaster::send_timeout(const contact& to, std::chrono::microseconds unmeasured,
                                                                  std::size_t burst_bytes) const {
  std::chrono::microseconds rtt = to.rtt.count() > 0 ? to.rtt : unmeasured;
  if (rtt.count() <= 0 || config_.timeout_rtts <= 0) return std::nullopt;
  auto rtts = std::clamp(std::chrono::ceil<std::chrono::milliseconds>(rtt * config_.timeout_rtts),
                         config_.min_send_timeout, std::max(config_.min_send_timeout, config_.max_send_timeout));
  if (config_.uplink_bytes_per_second <= 0) return rtts;
  auto sending = std::chrono::milliseconds(static_cast<std::int64_t>(
      std::ceil(1000.0 * static_cast<double>(burst_bytes) / config_.uplink_bytes_per_second)));
  return rtts + sending;
}

void broadcaster::on_reply(std::uint64_t handle, const core::reply& r, core::time_point) {
  auto it = sends_.find(handle);
  if (it == sends_.end()) return;
  pending_send p = std::move(it->second);
  sends_.erase(it);
  auto a = active_.find(p.key);
  if (a == active_.end()) return;
  active_shout& s = a->second;
  --s.sends_out;
  if (!r.ec) {
    ++s.delegates;
  } else if (r.code == wire::nack_code::stale && !config_.flood) {
    // It judged the date by its own clock (set apart from ours, or a cutoff of its cache), and
    // will again: its part goes to others at once, as a silent delegate's does.
    ++counters_.reassigned;
    s.excluded.push_back(p.to.id);
    reassign(p, s);
  } else if (unreachable(r)) {
    if (p.attempts_left > 0) {
      ++counters_.resent;
      send(p.key, s, p.to, p.covers, p.attempts_left, p.timeout);
    } else if (!config_.flood) {
      ++counters_.reassigned;
      s.excluded.push_back(p.to.id);
      reassign(p, s);
    }
  }
  if (s.sends_out == 0) settle(p.key);
}

// The delegate of a part is gone: each subtree of its part (the one its scope names, and one per
// also level) is split among the other contacts we know in it; knowing none there (the dead one
// was our only contact in that subtree), among the live nodes a lookup into it finds.
void broadcaster::reassign(const pending_send& failed, active_shout& s) {
  std::vector<subtree> pieces{{failed.to.id, failed.covers.scope}};
  for (std::uint8_t level : failed.covers.also_levels) pieces.push_back({across(failed.to.id, level), level + 1});
  for (const subtree& piece : pieces) {
    auto in_piece = [&](const core::node_id& id) { return id.common_prefix_length(piece.around) >= piece.length; };
    auto inside = candidates(failed.key, s, in_piece);
    if (!inside.empty()) {
      split_among(failed.key, s, piece.length, inside, false);
      continue;
    }
    look_into(failed.key, s, piece);
  }
}

void broadcaster::on_lookup_done(std::uint64_t handle, const std::vector<contact>& found) {
  auto it = lookups_.find(handle);
  if (it == lookups_.end()) return;
  pending_lookup repair = std::move(it->second);
  lookups_.erase(it);
  auto a = active_.find(repair.key);
  if (a == active_.end()) return;
  active_shout& s = a->second;
  --s.sends_out;
  // Every node found answered just now: even the silent delegate, if it did (its SHOUTs or their
  // ACKs were lost, or we had a stale address for it), is worth another try — one.
  std::vector<contact> inside;
  for (const contact& c : found) {
    if (c.id.common_prefix_length(repair.where.around) < repair.where.length || c.id == repair.key.origin) continue;
    if (contains(s.second_chance, c.id)) continue;
    if (contains(s.excluded, c.id)) s.second_chance.push_back(c.id);
    inside.push_back(c);
  }
  split_among(repair.key, s, repair.where.length, inside, false);  // nobody found: the subtree is empty
  if (s.sends_out == 0) settle(repair.key);
}

// Every part of the shout was taken or given up.
void broadcaster::settle(const shout_key& key) {
  auto a = active_.find(key);
  if (a == active_.end()) return;
  if (a->second.originated) finished_.push_back(finished{a->second.owner, key.sequence, a->second.delegates});
  active_.erase(a);
}

bool broadcaster::take_token(const core::node_id& origin, core::time_point now) {
  auto it = origins_.find(origin);
  if (it == origins_.end()) {
    if (origins_.size() >= config_.max_origins_tracked) {
      auto level = [&](const auto& e) {
        const double idle = std::chrono::duration<double>(now - e.second.refilled).count();
        return std::min(config_.origin_burst, e.second.tokens + std::max(0.0, idle) * config_.origin_rate);
      };
      // Forget the origins that have refilled completely: they are indistinguishable from new.
      std::erase_if(origins_, [&](const auto& e) { return level(e) >= config_.origin_burst; });
      // Still full: the origin nearest a full bucket makes room. Forgetting it gives it at most
      // the few tokens it is short of, while an origin that spent its tokens (the one the limit
      // is for) stays limited. Refusing every new origin instead would let a few thousand keys
      // that each shout once shut every other origin out.
      if (origins_.size() >= config_.max_origins_tracked)
        origins_.erase(std::max_element(origins_.begin(), origins_.end(),
                                        [&](const auto& a, const auto& b) { return level(a) < level(b); }));
    }
    it = origins_.emplace(origin, origin_bucket{config_.origin_burst, now, std::nullopt}).first;
  }
  origin_bucket& b = it->second;
  double elapsed = std::chrono::duration<double>(now - b.refilled).count();
  b.tokens = std::min(config_.origin_burst, b.tokens + std::max(0.0, elapsed) * config_.origin_rate);
  b.refilled = now;
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

std::optional<broadcaster::send_request> broadcaster::poll_send() { return take_front(out_); }

std::optional<broadcaster::lookup_request> broadcaster::poll_lookup() { return take_front(lookups_out_); }

std::optional<shout_delivery> broadcaster::poll_delivery() { return take_front(deliveries_); }

std::optional<broadcaster::finished> broadcaster::poll_finished() { return take_front(finished_); }

}  // namespace kadnet::dht
