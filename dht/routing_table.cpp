#include "kadnet/dht/routing_table.hpp"

#include <algorithm>
#include <cassert>
#include <stdexcept>
#include <utility>

namespace kadnet::dht {
namespace {

// A bucket that has never been touched; refresh_targets() treats it as stale at once.
constexpr core::time_point never = core::time_point::min();

template <typename Vec>
std::size_t index_of(const Vec& v, const core::node_id& id) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i].id == id) return i;
  return v.size();
}

// Grows a vector towards its bound in small steps, never past it: a full bucket then holds
// exactly k contacts' worth of storage instead of the next power of two.
void push_bounded(std::vector<contact>& v, contact c, std::size_t bound) {
  if (v.size() == v.capacity()) {
    std::size_t want = std::max<std::size_t>(4, v.capacity() * 2);
    v.reserve(std::max(v.size() + 1, std::min(want, bound)));
  }
  v.push_back(std::move(c));
}

// Moves v[pos] to the back (most recently seen) keeping the order of the others.
void move_to_back(std::vector<contact>& v, std::size_t pos) {
  std::rotate(v.begin() + static_cast<std::ptrdiff_t>(pos),
              v.begin() + static_cast<std::ptrdiff_t>(pos) + 1, v.end());
}

void refresh(contact& x, core::time_point now, std::chrono::microseconds rtt) {
  x.last_seen = now;
  x.failures = 0;
  if (rtt.count() > 0) x.rtt = smooth_rtt(x.rtt, rtt);
}

core::node_id with_bit_set(const core::node_id& id, int bit) {
  auto b = id.bytes();
  b[bit / 8] |= static_cast<std::uint8_t>(0x80 >> (bit % 8));
  return core::node_id(b);
}

}  // namespace

bool routing_table::bucket::covers(const core::node_id& id) const {
  return id.common_prefix_length(prefix) >= depth;
}

routing_table::routing_table(const core::node_id& self, routing_table_config config)
    : self_(self), config_(config) {
  if (config_.k == 0) throw std::invalid_argument("routing_table_config.k must be at least 1, got 0");
  buckets_.emplace_back();
  buckets_.back().last_touched = never;
}

std::size_t routing_table::bucket_for(const core::node_id& id) const {
  // Ranges are contiguous and sorted, so the covering bucket is the last one starting at or
  // below id; the first bucket starts at zero.
  auto it = std::upper_bound(buckets_.begin(), buckets_.end(), id,
                             [](const core::node_id& v, const bucket& b) { return v < b.prefix; });
  return static_cast<std::size_t>(it - buckets_.begin()) - 1;
}

bool routing_table::prefix_allows(const std::vector<contact>& in, const contact& c) const {
  if (config_.max_per_prefix == 0) return true;
  auto net = network_prefix(c);
  if (!net) return true;  // no IP address: nothing an attacker could concentrate
  std::size_t same = 0;
  for (const contact& x : in)
    if (x.id != c.id && network_prefix(x) == net) ++same;
  return same < config_.max_per_prefix;
}

bool routing_table::should_split(const bucket& b, const core::node_id& newcomer) const {
  if (b.depth >= core::id_bits) return false;
  if (b.covers(self_)) return true;
  // Relaxed rule: split when the newcomer would be among the k closest to self. A bucket that
  // does not cover self lies wholly at one common-prefix length m from self, so whole buckets
  // are either all closer (m > j), all farther (m < j), or need a per-contact look (m == j).
  const int j = self_.common_prefix_length(newcomer);
  const core::node_id d_new = newcomer.distance(self_);
  std::size_t closer = 0;
  for (const bucket& other : buckets_) {
    int m = std::min(other.depth, other.prefix.common_prefix_length(self_));
    if (m >= other.depth || m > j) {
      // Covers self (then every contact shares more than j bits with it) or lies nearer.
      closer += other.contacts.size();
    } else if (m == j) {
      for (const contact& x : other.contacts)
        if (x.id.distance(self_) < d_new) ++closer;
    }
    if (closer >= config_.k) return false;
  }
  return true;
}

void routing_table::split(std::size_t index, core::time_point now) {
  bucket& low = buckets_[index];
  const int d = low.depth;
  assert(d < core::id_bits);

  bucket high;
  high.prefix = with_bit_set(low.prefix, d);
  high.depth = d + 1;
  high.last_touched = low.last_touched;
  low.depth = d + 1;

  auto move_high = [&](std::vector<contact>& from, std::vector<contact>& to, std::size_t bound) {
    auto first_high = std::stable_partition(from.begin(), from.end(),
                                            [d](const contact& c) { return !c.id.bit(d); });
    for (auto it = first_high; it != from.end(); ++it) push_bounded(to, std::move(*it), bound);
    from.erase(first_high, from.end());
  };
  move_high(low.contacts, high.contacts, config_.k);
  move_high(low.replacements, high.replacements, config_.replacement_cache);
  if (low.pending_ping && low.pending_ping->bit(d)) {
    high.pending_ping = low.pending_ping;
    low.pending_ping.reset();
  }

  buckets_.insert(buckets_.begin() + static_cast<std::ptrdiff_t>(index) + 1, std::move(high));
  // Both halves now have room: waiting replacements are known-good nodes, use them.
  for (std::size_t i : {index, index + 1}) {
    while (promote_replacement(buckets_[i])) {
    }
    // A half that starts empty is a subtree next to our own id we know nobody in. Kademlia
    // (and SHOUT's tree, dht/broadcast.hpp) relies on knowing someone in every non-empty one:
    // if it is still empty a little later (a node filling its table splits many buckets that
    // its first lookups fill anyway), look it up then rather than an interval later.
    if (buckets_[i].contacts.empty())
      buckets_[i].last_touched = now - config_.refresh_interval + config_.empty_bucket_refresh;
  }
}

void routing_table::add_replacement(bucket& b, contact c) {
  if (config_.replacement_cache == 0) return;
  if (std::size_t pos = index_of(b.replacements, c.id); pos < b.replacements.size())
    b.replacements.erase(b.replacements.begin() + static_cast<std::ptrdiff_t>(pos));
  if (config_.max_per_prefix != 0) {
    // The cache obeys the prefix limit too, so one network cannot flush honest replacements;
    // its own oldest entry makes room.
    if (auto net = network_prefix(c)) {
      std::size_t same = 0, oldest = b.replacements.size();
      for (std::size_t i = 0; i < b.replacements.size(); ++i) {
        if (network_prefix(b.replacements[i]) == net) {
          if (same++ == 0) oldest = i;
        }
      }
      if (same >= config_.max_per_prefix)
        b.replacements.erase(b.replacements.begin() + static_cast<std::ptrdiff_t>(oldest));
    }
  }
  if (b.replacements.size() >= config_.replacement_cache) b.replacements.erase(b.replacements.begin());
  push_bounded(b.replacements, std::move(c), config_.replacement_cache);
}

bool routing_table::promote_replacement(bucket& b) {
  if (b.contacts.size() >= config_.k) return false;
  for (std::size_t i = b.replacements.size(); i-- > 0;) {  // newest first
    if (!prefix_allows(b.contacts, b.replacements[i])) continue;
    contact c = std::move(b.replacements[i]);
    b.replacements.erase(b.replacements.begin() + static_cast<std::ptrdiff_t>(i));
    // Keep the bucket ordered by last_seen: the replacement may be older than recent contacts.
    std::size_t pos = b.contacts.size();
    while (pos > 0 && b.contacts[pos - 1].last_seen > c.last_seen) --pos;
    push_bounded(b.contacts, std::move(c), config_.k);
    std::rotate(b.contacts.begin() + static_cast<std::ptrdiff_t>(pos), b.contacts.end() - 1,
                b.contacts.end());
    ++size_;
    return true;
  }
  return false;
}

void routing_table::erase_contact(bucket& b, std::size_t pos) {
  if (b.pending_ping == b.contacts[pos].id) b.pending_ping.reset();
  b.contacts.erase(b.contacts.begin() + static_cast<std::ptrdiff_t>(pos));
  --size_;
}

insert_result routing_table::learn(const contact& c, core::time_point now) {
  bucket& b = buckets_[bucket_for(c.id)];
  for (auto* list : {&b.contacts, &b.replacements}) {
    if (std::size_t pos = index_of(*list, c.id); pos < list->size()) {
      contact& known = (*list)[pos];
      if (known.addresses.empty() && (list == &b.replacements || prefix_allows(b.contacts, c)))
        known.addresses = c.addresses;
      return {insert_outcome::updated, std::nullopt};
    }
  }
  return insert(c, now);
}

insert_result routing_table::insert(const contact& c, core::time_point now) {
  if (c.id == self_) return {insert_outcome::rejected_self, std::nullopt};
  for (;;) {
    const std::size_t index = bucket_for(c.id);
    bucket& b = buckets_[index];

    if (std::size_t pos = index_of(b.contacts, c.id); pos < b.contacts.size()) {
      contact& x = b.contacts[pos];
      refresh(x, now, c.rtt);
      // Empty addresses mean "reached over its own session", not "forget where it listens";
      // a move into a crowded network keeps the old addresses.
      if (!c.addresses.empty() && c.addresses != x.addresses && prefix_allows(b.contacts, c))
        x.addresses = c.addresses;
      if (b.pending_ping == c.id) b.pending_ping.reset();  // it is alive: no need to ping
      move_to_back(b.contacts, pos);
      b.last_touched = now;
      return {insert_outcome::updated, std::nullopt};
    }

    if (!prefix_allows(b.contacts, c)) return {insert_outcome::rejected_prefix, std::nullopt};
    contact fresh = c;
    // Drop a cached copy first so a split cannot promote it behind our back; re-added below,
    // with the addresses it had when this insert brings none (a request over its own session).
    if (std::size_t pos = index_of(b.replacements, c.id); pos < b.replacements.size()) {
      if (fresh.addresses.empty()) fresh.addresses = std::move(b.replacements[pos].addresses);
      fresh.connected = fresh.connected || b.replacements[pos].connected;
      b.replacements.erase(b.replacements.begin() + static_cast<std::ptrdiff_t>(pos));
    }

    fresh.last_seen = now;
    fresh.failures = 0;

    if (b.contacts.size() < config_.k) {
      push_bounded(b.contacts, std::move(fresh), config_.k);
      ++size_;
      b.last_touched = now;
      return {insert_outcome::added, std::nullopt};
    }
    if (should_split(b, c.id)) {
      split(index, now);
      continue;  // b is invalidated; look the bucket up again
    }

    b.last_touched = now;
    add_replacement(b, std::move(fresh));
    if (b.pending_ping) return {insert_outcome::cached, std::nullopt};
    // Heard from lately, it is good (BEP 5): no PING, the newcomer waits.
    if (now - b.contacts.front().last_seen < config_.ping_if_quiet_for)
      return {insert_outcome::cached, std::nullopt};
    b.pending_ping = b.contacts.front().id;
    return {insert_outcome::pending_ping, b.contacts.front()};
  }
}

void routing_table::set_connected(const core::node_id& id, bool connected) {
  bucket& b = buckets_[bucket_for(id)];
  for (auto* list : {&b.contacts, &b.replacements})
    if (std::size_t pos = index_of(*list, id); pos < list->size()) (*list)[pos].connected = connected;
}

bool routing_table::is_connected(const core::node_id& id) const {
  const bucket& b = buckets_[bucket_for(id)];
  for (const auto* list : {&b.contacts, &b.replacements})
    if (std::size_t pos = index_of(*list, id); pos < list->size()) return (*list)[pos].connected;
  return false;
}

void routing_table::on_seen(const core::node_id& id, core::time_point now,
                            std::chrono::microseconds rtt) {
  bucket& b = buckets_[bucket_for(id)];
  if (std::size_t pos = index_of(b.contacts, id); pos < b.contacts.size()) {
    refresh(b.contacts[pos], now, rtt);
    move_to_back(b.contacts, pos);
    if (b.pending_ping == id) b.pending_ping.reset();
  } else if (std::size_t rpos = index_of(b.replacements, id); rpos < b.replacements.size()) {
    refresh(b.replacements[rpos], now, rtt);
    move_to_back(b.replacements, rpos);
  }
}

void routing_table::on_ping_answered(const core::node_id& id, core::time_point now,
                                     std::chrono::microseconds rtt) {
  on_seen(id, now, rtt);
}

void routing_table::on_ping_failed(const core::node_id& id) {
  bucket& b = buckets_[bucket_for(id)];
  if (b.pending_ping == id) b.pending_ping.reset();
  if (std::size_t pos = index_of(b.contacts, id); pos < b.contacts.size()) {
    erase_contact(b, pos);
    promote_replacement(b);
  }
}

void routing_table::on_request_failed(const core::node_id& id) {
  bucket& b = buckets_[bucket_for(id)];
  if (std::size_t pos = index_of(b.contacts, id); pos < b.contacts.size()) {
    if (++b.contacts[pos].failures >= max_consecutive_failures) {
      erase_contact(b, pos);
      promote_replacement(b);
    }
  } else if (std::size_t rpos = index_of(b.replacements, id); rpos < b.replacements.size()) {
    if (++b.replacements[rpos].failures >= max_consecutive_failures)
      b.replacements.erase(b.replacements.begin() + static_cast<std::ptrdiff_t>(rpos));
  }
}

bool routing_table::remove(const core::node_id& id) {
  bucket& b = buckets_[bucket_for(id)];
  if (std::size_t pos = index_of(b.contacts, id); pos < b.contacts.size()) {
    erase_contact(b, pos);
    promote_replacement(b);
    return true;
  }
  if (std::size_t rpos = index_of(b.replacements, id); rpos < b.replacements.size()) {
    b.replacements.erase(b.replacements.begin() + static_cast<std::ptrdiff_t>(rpos));
    return true;
  }
  return false;
}

std::optional<contact> routing_table::find(const core::node_id& id) const {
  const bucket& b = buckets_[bucket_for(id)];
  if (std::size_t pos = index_of(b.contacts, id); pos < b.contacts.size()) return b.contacts[pos];
  return std::nullopt;
}

void routing_table::collect_closest(std::size_t lo, std::size_t hi, int depth,
                                    const core::node_id& target, std::size_t n, bool dialable_only,
                                    std::vector<const contact*>& out) const {
  // buckets_[lo, hi) partition the subtree of ids sharing `depth` leading bits. One bucket left
  // means it is that subtree; otherwise the half agreeing with target at bit `depth` is wholly
  // closer than the other, which is needed only if the near half had fewer than n contacts.
  if (hi - lo == 1) {
    for (const contact& c : buckets_[lo].contacts)
      if (!dialable_only || c.dialable()) out.push_back(&c);
    return;
  }
  auto first = buckets_.begin() + static_cast<std::ptrdiff_t>(lo);
  auto last = buckets_.begin() + static_cast<std::ptrdiff_t>(hi);
  auto mid = static_cast<std::size_t>(
      std::partition_point(first, last, [depth](const bucket& b) { return !b.prefix.bit(depth); }) -
      buckets_.begin());
  assert(mid > lo && mid < hi);
  if (target.bit(depth)) {
    collect_closest(mid, hi, depth + 1, target, n, dialable_only, out);
    if (out.size() < n) collect_closest(lo, mid, depth + 1, target, n, dialable_only, out);
  } else {
    collect_closest(lo, mid, depth + 1, target, n, dialable_only, out);
    if (out.size() < n) collect_closest(mid, hi, depth + 1, target, n, dialable_only, out);
  }
}

std::vector<contact> routing_table::closest(const core::node_id& target, std::size_t n,
                                            bool dialable_only) const {
  std::vector<contact> result;
  if (n == 0) return result;
  std::vector<const contact*> found;
  found.reserve(std::min(n + config_.k, size_));
  collect_closest(0, buckets_.size(), 0, target, n, dialable_only, found);

  std::vector<std::pair<core::node_id, const contact*>> ranked;
  ranked.reserve(found.size());
  for (const contact* c : found) ranked.emplace_back(c->id.distance(target), c);
  const std::size_t take = std::min(n, ranked.size());
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(take), ranked.end(),
                    [](const auto& a, const auto& b) { return a.first < b.first; });
  result.reserve(take);
  for (std::size_t i = 0; i < take; ++i) result.push_back(*ranked[i].second);
  return result;
}

void routing_table::touched(const core::node_id& id_in_range, core::time_point now) {
  buckets_[bucket_for(id_in_range)].last_touched = now;
}

std::vector<core::node_id> routing_table::refresh_targets(core::time_point now,
                                                          const random_source& random) {
  std::vector<core::node_id> targets;
  for (bucket& b : buckets_) {
    if (b.last_touched != never && now - b.last_touched < config_.refresh_interval) continue;
    core::node_id::bytes_type bytes;
    random(mutable_byte_span(bytes));
    // Keep the bucket's first `depth` bits, randomise the rest.
    const auto& p = b.prefix.bytes();
    const int whole = b.depth / 8, rest = b.depth % 8;
    std::copy(p.begin(), p.begin() + whole, bytes.begin());
    if (rest != 0) {
      const auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
      bytes[whole] = static_cast<std::uint8_t>((p[whole] & mask) | (bytes[whole] & ~mask));
    }
    targets.emplace_back(bytes);
    b.last_touched = now;
  }
  return targets;
}

core::time_point routing_table::next_refresh() const {
  core::time_point next = core::time_point::max();
  for (const bucket& b : buckets_) {
    if (b.last_touched == never) return never;
    next = std::min(next, b.last_touched + config_.refresh_interval);
  }
  return next;
}

bool routing_table::bucket_empty(const core::node_id& id_in_range) const {
  return buckets_[bucket_for(id_in_range)].contacts.empty();
}

std::vector<bucket_view> routing_table::buckets() const {
  std::vector<bucket_view> views;
  views.reserve(buckets_.size());
  for (const bucket& b : buckets_)
    views.push_back({b.depth, b.prefix, b.contacts, b.replacements.size()});
  return views;
}

std::vector<contact> routing_table::all() const {
  std::vector<contact> out;
  out.reserve(size_);
  for (const bucket& b : buckets_) out.insert(out.end(), b.contacts.begin(), b.contacts.end());
  return out;
}

std::vector<contact> routing_table::replacements() const {
  std::vector<contact> out;
  for (const bucket& b : buckets_) out.insert(out.end(), b.replacements.begin(), b.replacements.end());
  return out;
}

}  // namespace kadnet::dht
