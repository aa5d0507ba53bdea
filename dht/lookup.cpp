#include "kadnet/dht/lookup.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace kadnet::dht {

namespace {

// Not-yet-asked candidates a path keeps, in multiples of k. Four times k leaves room for the
// ~30 % of dead contacts a churning network hands out while keeping memory independent of how
// chatty (or hostile) the peers are.
constexpr std::size_t candidate_factor = 4;

}  // namespace

lookup::lookup(const core::node_id& target, std::vector<contact> seeds, lookup_config config,
               core::node_id self)
    : target_(target), self_(self), config_(config) {
  if (config_.k == 0 || config_.alpha == 0 || config_.disjoint_paths == 0)
    throw std::invalid_argument("lookup: k, alpha and disjoint_paths must be at least 1");
  config_.asks_per_contact = std::clamp(config_.asks_per_contact, 1, 255);  // counted in a byte
  paths_.resize(config_.disjoint_paths);
  if (config_.find_value && config_.hedge)
    for (path& p : paths_) p.widened = false;

  // Deal the seeds closest first, so each path starts with a fair share of the best ones.
  core::closer_to closer(target_);
  std::stable_sort(seeds.begin(), seeds.end(),
                   [&](const contact& a, const contact& b) { return closer(a.id, b.id); });
  if (config_.slot_rtts > 0)
    for (const contact& c : seeds) slowest_answer_ = std::max(slowest_answer_, c.rtt);
  std::size_t dealt = 0;
  for (contact& c : seeds) {
    if (c.id == self_ || owner_.contains(c.id)) continue;
    add_candidate(dealt % paths_.size(), std::move(c), 1);
    ++dealt;
  }
}

void lookup::add_candidate(std::size_t path_index, contact c, int hop) {
  if (c.id == self_) return;
  if (owner_.contains(c.id)) return;  // first path to learn a contact owns it
  path& p = paths_[path_index];
  const core::node_id id = c.id;
  peer q{std::move(c), id.distance(target_), hop};
  auto at = std::lower_bound(p.peers.begin(), p.peers.end(), q.distance,
                             [](const peer& a, const core::node_id& d) { return a.distance < d; });
  p.peers.insert(at, std::move(q));
  owner_.emplace(id, path_index);
  ++p.not_contacted;
  if (p.not_contacted > candidate_factor * config_.k) drop_farthest_candidate(p);
}

void lookup::drop_farthest_candidate(path& p) {
  // Only never-asked candidates are dropped: asked ones carry results and late replies.
  for (auto it = p.peers.end(); it != p.peers.begin();) {
    --it;
    if (it->state == peer_state::not_contacted) {
      owner_.erase(it->info.id);  // another path may learn it again; it was never asked
      p.peers.erase(it);
      --p.not_contacted;
      return;
    }
  }
}

lookup::peer* lookup::find_peer(const core::node_id& id, std::size_t* path_index) {
  auto owner = owner_.find(id);
  if (owner == owner_.end()) return nullptr;
  path& p = paths_[owner->second];
  // Distances to a fixed target are unique per id, so a binary search finds the entry.
  core::node_id d = id.distance(target_);
  auto at = std::lower_bound(p.peers.begin(), p.peers.end(), d,
                             [](const peer& a, const core::node_id& x) { return a.distance < x; });
  if (at == p.peers.end() || at->info.id != id) return nullptr;
  if (path_index) *path_index = owner->second;
  return &*at;
}

lookup::action lookup::next(core::time_point now) {
  if (answered_within_) finished_ = true;
  if (finished_) return finished{};
  std::optional<core::time_point> until;
  bool all_finished = true;
  for (std::size_t i = 0; i < paths_.size(); ++i) {
    if (paths_[i].finished) continue;
    action a = next_on_path(i, now);
    if (std::holds_alternative<send>(a)) return a;
    if (auto* w = std::get_if<waiting>(&a)) {
      all_finished = false;
      if (w->until && (!until || *w->until < *until)) until = w->until;
    }
  }
  if (all_finished) {
    finished_ = true;
    return finished{};
  }
  return waiting{until};
}

lookup::action lookup::next_on_path(std::size_t path_index, core::time_point now) {
  path& p = paths_[path_index];
  // Expire first, over the whole path: a slot whose deadline passed is free for the scan below,
  // and the earliest deadline reported back is always in the future.
  std::optional<core::time_point> earliest;
  peer* resend = nullptr;
  for (peer& q : p.peers) {
    const bool asked = q.state == peer_state::waiting || q.state == peer_state::asked_again;
    if (asked && now >= q.deadline) {
      if (q.state == peer_state::waiting) {
        --p.in_flight;
        p.widened = true;
      }
      ++stats_.failures;
      // A late reply is still welcome either way.
      q.state = may_ask_again(q) ? peer_state::resend_due : peer_state::unresponsive;
    } else if (asked && (!earliest || q.deadline < *earliest)) {
      earliest = q.deadline;
    }
    if (q.state == peer_state::resend_due && !resend) resend = &q;
  }
  if (resend) return ask_again(*resend, now);

  if (!p.widened && p.hedge_at) {
    if (now >= *p.hedge_at) p.widened = true;
    else if (!earliest || *p.hedge_at < *earliest) earliest = p.hedge_at;
  }

  // Counting answers toward k stops at the first request still in flight: a closer contact
  // may yet answer and must not be overtaken by farther answers.
  bool counting = true;
  std::size_t answered = 0;
  for (std::size_t rank = 0; rank < p.peers.size(); ++rank) {
    peer& q = p.peers[rank];
    switch (q.state) {
      case peer_state::waiting:
      case peer_state::resend_due:
      case peer_state::asked_again:
        counting = false;
        break;
      case peer_state::succeeded:
        if (counting && ++answered >= config_.k) {
          p.finished = true;
          return finished{};
        }
        break;
      case peer_state::not_contacted:
        // The closest candidate not yet asked waits for a free slot.
        if (p.in_flight >= (p.widened ? config_.alpha : 1)) return waiting{earliest};
        return ask(p, config_.find_value ? connected_candidate(p, rank) : q, now);
      case peer_state::unresponsive:
      case peer_state::failed:
        break;
    }
  }
  // Every candidate was asked: done unless answers are still pending.
  if (p.in_flight > 0 || !counting) return waiting{earliest};
  p.finished = true;
  return finished{};
}

lookup::action lookup::ask(path& p, peer& q, core::time_point now) {
  if (!p.widened && !p.hedge_at) {
    // Hedge only a request that should find the value; one that can only bring us closer goes
    // out with company.
    if (presumed_replica(q.distance)) p.hedge_at = now + hedge_delay(q.info);
    else p.widened = true;
  }
  q.state = peer_state::waiting;
  q.deadline = now + slot_for(q.info);
  q.asked = now;
  q.asks = 1;
  q.unanswered = 1;
  ++p.in_flight;
  --p.not_contacted;
  ++stats_.messages;
  return send{q.info};
}

lookup::action lookup::ask_again(peer& q, core::time_point now) {
  q.state = peer_state::asked_again;
  q.deadline = now + slot_for(q.info);
  ++q.asks;
  ++q.unanswered;
  ++stats_.messages;
  return send{q.info};
}

std::chrono::microseconds lookup::slot_for(const contact& c) const {
  const std::chrono::microseconds slot = config_.slot_timeout;
  const std::chrono::microseconds rtt = c.rtt.count() > 0 ? c.rtt : slowest_answer_;
  if (config_.slot_rtts <= 0 || rtt.count() <= 0) return slot;
  // A contact without a session is dialed first: a handshake's round trips come before the request's.
  const int rtts = c.connected ? config_.slot_rtts : 2 * config_.slot_rtts;
  return std::min<std::chrono::microseconds>(std::max<std::chrono::microseconds>(rtt * rtts, config_.slot_floor), slot);
}

std::chrono::microseconds lookup::hedge_delay(const contact& first) const {
  const std::chrono::microseconds slot = config_.slot_timeout;
  const auto wait = first.rtt.count() > 0 ? 2 * first.rtt : config_.hedge_unmeasured;
  return std::min(std::max(wait, config_.hedge_floor), slot);
}

bool lookup::presumed_replica(const core::node_id& distance) const {
  return !config_.replica_radius || distance <= *config_.replica_radius;
}

// Any of the k closest holds the value, so FIND_VALUE first asks one we have a session with:
// a handshake costs both ends far more CPU than the request (PROTOCOL.md 8.3).
lookup::peer& lookup::connected_candidate(path& p, std::size_t first_unasked) {
  const std::size_t window = std::min(p.peers.size(), config_.k);
  for (std::size_t rank = first_unasked; rank < window; ++rank) {
    peer& q = p.peers[rank];
    if (!presumed_replica(q.distance)) break;  // sorted by distance: none further is either
    if (q.state == peer_state::not_contacted && q.info.connected) return q;
  }
  return p.peers[first_unasked];
}

void lookup::release_slot(path& p, peer& q) {
  if (q.state == peer_state::waiting) --p.in_flight;
}

lookup::peer* lookup::answerable_peer(const core::node_id& from, std::size_t& path_index,
                                      bool finished_path_ok) {
  if (finished_) return nullptr;
  peer* q = find_peer(from, &path_index);
  if (!q || (paths_[path_index].finished && !finished_path_ok)) return nullptr;
  switch (q->state) {
    case peer_state::waiting:
    case peer_state::resend_due:
    case peer_state::asked_again:
    case peer_state::unresponsive:  // late reply after the slot timed out
    case peer_state::failed:        // late reply after the driver reported a timeout
      return q;
    case peer_state::not_contacted:  // never asked: unsolicited
    case peer_state::succeeded:      // duplicate answer
      return nullptr;
  }
  return nullptr;
}

void lookup::on_reply(const core::node_id& from, std::vector<contact> closer, core::time_point now) {
  std::size_t path_index = 0;
  peer* q = answerable_peer(from, path_index, false);  // a finished path's results are final
  if (!q) return;
  if (config_.slot_rtts > 0 && q->asks <= 1) {  // which of two requests was answered is unknown (Karn)
    const auto rtt = std::chrono::duration_cast<std::chrono::microseconds>(now - q->asked);
    slowest_answer_ = std::max(slowest_answer_, rtt);
    if (q->info.rtt.count() <= 0 && rtt.count() > 0) q->info.rtt = rtt;  // closest_answered() reports it
  }
  path& p = paths_[path_index];
  release_slot(p, *q);
  q->state = peer_state::succeeded;
  ++stats_.replies;
  if (config_.subtree_bits >= 0 && from.common_prefix_length(target_) >= config_.subtree_bits &&
      std::find(config_.finish_ignoring.begin(), config_.finish_ignoring.end(), from) == config_.finish_ignoring.end())
    answered_within_ = true;
  p.widened = true;  // no value here: the search goes on, alpha wide
  const int hop = q->hop + 1;
  // q may dangle once candidates are inserted; nothing below touches it.
  if (closer.size() > config_.k) closer.resize(config_.k);
  for (contact& c : closer) add_candidate(path_index, std::move(c), hop);
}

void lookup::on_value(const core::node_id& from, byte_vector value_bytes, core::time_point) {
  if (!config_.find_value) return;
  std::size_t path_index = 0;
  // A value ends the whole lookup, so one from a path that already finished still counts.
  peer* q = answerable_peer(from, path_index, true);
  if (!q) return;
  release_slot(paths_[path_index], *q);
  q->state = peer_state::succeeded;
  q->had_value = true;
  ++stats_.replies;
  value_ = std::move(value_bytes);
  finished_ = true;
}

bool lookup::may_ask_again(const peer& q) const {
  return q.asks < config_.asks_per_contact && q.info.id.common_prefix_length(target_) >= config_.subtree_bits;
}

void lookup::on_failure(const core::node_id& from, bool timed_out) {
  if (finished_) return;
  std::size_t path_index = 0;
  peer* q = find_peer(from, &path_index);
  if (!q) return;
  if (q->unanswered > 0) --q->unanswered;
  // The driver's own timeout is silence, as a deadline is: asked again if it may be.
  const peer_state after = timed_out && may_ask_again(*q) ? peer_state::resend_due : peer_state::failed;
  switch (q->state) {
    case peer_state::waiting:
      --paths_[path_index].in_flight;
      ++stats_.failures;
      q->state = after;
      paths_[path_index].widened = true;
      break;
    case peer_state::asked_again:
      // The first request's failure, reported late, says nothing of the second.
      if (q->unanswered == 0) {
        ++stats_.failures;
        q->state = after;
      }
      break;
    case peer_state::unresponsive:
      q->state = peer_state::failed;  // its timeout was already counted (and widened the path)
      break;
    case peer_state::resend_due:  // its deadline came first; another failure than silence ends it
      if (!timed_out) q->state = peer_state::failed;
      break;
    case peer_state::not_contacted:
    case peer_state::succeeded:
    case peer_state::failed:
      break;
  }
}

std::vector<const lookup::peer*> lookup::closest_in(bool answered_only) const {
  std::vector<const peer*> out;
  for (const path& p : paths_)
    for (const peer& q : p.peers)
      if (answered_only ? q.state == peer_state::succeeded : q.state != peer_state::not_contacted)
        out.push_back(&q);
  auto by_distance = [](const peer* a, const peer* b) { return a->distance < b->distance; };
  std::size_t n = std::min(out.size(), config_.k);
  std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n), out.end(),
                    by_distance);
  out.resize(n);
  return out;
}

std::vector<contact> lookup::closest_answered() const {
  std::vector<contact> out;
  for (const peer* q : closest_in(true)) out.push_back(q->info);
  return out;
}

std::vector<contact> lookup::closest_asked() const {
  std::vector<contact> out;
  for (const peer* q : closest_in(false)) out.push_back(q->info);
  return out;
}

std::optional<contact> lookup::cache_target() const {
  if (!value_) return std::nullopt;
  const peer* best = nullptr;
  for (const path& p : paths_)
    for (const peer& q : p.peers)
      if (q.state == peer_state::succeeded && !q.had_value &&
          (!best || q.distance < best->distance))
        best = &q;
  if (!best) return std::nullopt;
  return best->info;
}

lookup::stats lookup::get_stats() const {
  stats s = stats_;
  s.rounds = 0;
  for (const peer* q : closest_in(true)) s.rounds = std::max(s.rounds, q->hop);
  return s;
}

}  // namespace kadnet::dht
