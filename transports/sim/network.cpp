#include "kadnet/transports/sim/network.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include <sodium.h>

#include "kadnet/core/identity.hpp"

namespace kadnet::sim {
namespace {

void put_be(std::uint8_t* out, std::uint64_t v, int width) {
  for (int i = width - 1; i >= 0; --i, v >>= 8) out[i] = static_cast<std::uint8_t>(v);
}

// Nanoseconds to put `bytes` on a link of `bandwidth` bytes/s, rounded up so that a full queue
// never drains early.
duration transmission_time(std::size_t bytes, std::uint64_t bandwidth) {
  const std::uint64_t ns = (static_cast<std::uint64_t>(bytes) * 1'000'000'000ull + bandwidth - 1) / bandwidth;
  return duration(static_cast<duration::rep>(ns));
}

}  // namespace

network::network(std::uint64_t seed, link_config default_link)
    : default_link_(default_link), rng_(seed) {
  core::ensure_sodium();
}

// --- endpoints ---

endpoint_id network::add_endpoint(receive_fn receive) {
  if (endpoints_.size() > std::numeric_limits<endpoint_id>::max())
    throw std::length_error("sim::network: out of endpoint ids");
  endpoints_.push_back(endpoint{std::move(receive), false, false});
  return static_cast<endpoint_id>(endpoints_.size() - 1);
}

void network::remove_endpoint(endpoint_id id) {
  if (id >= endpoints_.size()) return;
  endpoint& e = endpoints_[id];
  e.removed = true;
  // A receive_fn that removes its own endpoint is still running: deliver() frees it afterwards.
  if (dispatching_ != id) e.receive = nullptr;
}

void network::set_down(endpoint_id id, bool down) {
  if (id >= endpoints_.size()) throw std::out_of_range("sim::network::set_down: unknown endpoint " + std::to_string(id));
  endpoints_[id].down = down;
}

bool network::is_down(endpoint_id id) const { return id < endpoints_.size() && endpoints_[id].down; }

network::endpoint* network::live(endpoint_id id) {
  if (id >= endpoints_.size()) return nullptr;
  endpoint& e = endpoints_[id];
  return e.down || e.removed ? nullptr : &e;
}

// --- links ---

void network::set_link(endpoint_id from, endpoint_id to, const link_config& c) {
  links_.insert_or_assign(link_key(from, to), c);
}

const link_config& network::link(endpoint_id from, endpoint_id to) const {
  if (links_.empty()) return default_link_;
  auto it = links_.find(link_key(from, to));
  return it == links_.end() ? default_link_ : it->second;
}

void network::partition(const std::vector<endpoint_id>& a, const std::vector<endpoint_id>& b) {
  partitions_.push_back({{a.begin(), a.end()}, {b.begin(), b.end()}});
}

void network::heal() { partitions_.clear(); }

bool network::partitioned(endpoint_id x, endpoint_id y) const {
  for (const partition_sets& p : partitions_)
    if ((p.a.count(x) && p.b.count(y)) || (p.b.count(x) && p.a.count(y))) return true;
  return false;
}

// --- randomness ---

bool network::chance(double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  // 53 random bits as a double in [0, 1): the same on every standard library, unlike
  // std::bernoulli_distribution, so a seed means the same run everywhere.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53 < p;
}

duration network::delay_for(const link_config& c) {
  duration d = c.latency;
  if (c.jitter.count() > 0) {
    const auto span = static_cast<std::uint64_t>(c.jitter.count()) * 2 + 1;
    d += duration(static_cast<duration::rep>(rng_() % span) - c.jitter.count());
  }
  return std::max(d, duration::zero());
}

// --- datagrams ---

void network::send(endpoint_id from, endpoint_id to, byte_span bytes) {
  if (from >= endpoints_.size())
    throw std::out_of_range("sim::network::send: unknown sender " + std::to_string(from));
  ++counters_.sent;
  counters_.bytes_sent += bytes.size();
  if (!live(from) || !live(to) || (!partitions_.empty() && partitioned(from, to))) {
    ++counters_.unreachable;
    return;
  }
  const link_config& c = link(from, to);

  // The link transmits one datagram at a time: this one starts when the one before has left.
  time_point departure = now_;
  if (c.bandwidth > 0) {
    if (busy_until_.size() >= busy_prune_at_) {
      std::erase_if(busy_until_, [&](const auto& e) { return e.second <= now_; });
      busy_prune_at_ = std::max<std::size_t>(1024, busy_until_.size() * 2);
    }
    auto [it, fresh] = busy_until_.try_emplace(link_key(from, to), now_);
    const time_point start = std::max(now_, it->second);
    if (c.max_queue_bytes > 0) {
      // What the link still has to transmit, in bytes, is its remaining busy time at its rate.
      const double backlog = std::chrono::duration<double>(start - now_).count() * static_cast<double>(c.bandwidth);
      if (backlog + static_cast<double>(bytes.size()) > static_cast<double>(c.max_queue_bytes)) {
        if (fresh) busy_until_.erase(it);
        ++counters_.queue_drops;
        return;
      }
    }
    it->second = start + transmission_time(bytes.size(), c.bandwidth);
    departure = it->second;
  }

  if (chance(c.loss)) {
    ++counters_.lost;
    return;
  }
  duration delay = delay_for(c);
  if (chance(c.reorder)) {
    delay += c.reorder_delay;
    ++counters_.reordered;
  }
  const bool twice = chance(c.duplicate);
  if (twice) {
    ++counters_.duplicated;
    push(event{departure + delay_for(c), 0, event_kind::datagram, from, to, byte_vector(bytes.begin(), bytes.end())});
  }
  push(event{departure + delay, 0, event_kind::datagram, from, to, byte_vector(bytes.begin(), bytes.end())});
}

void network::deliver(event& e) {
  endpoint* to = live(e.to);
  if (!to || (!partitions_.empty() && partitioned(e.from, e.to))) {
    ++counters_.unreachable;
    return;
  }
  ++counters_.delivered;
  counters_.bytes_delivered += e.bytes.size();

  std::uint8_t record[20];
  put_be(record, static_cast<std::uint64_t>((now_ - epoch).count()), 8);
  put_be(record + 8, e.from, 4);
  put_be(record + 12, e.to, 4);
  put_be(record + 16, e.bytes.size(), 4);
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, trace_.size());
  crypto_generichash_update(&state, trace_.data(), trace_.size());
  crypto_generichash_update(&state, record, sizeof record);
  crypto_generichash_update(&state, e.bytes.data(), e.bytes.size());
  crypto_generichash_final(&state, trace_.data(), trace_.size());

  dispatching_ = e.to;
  to->receive(e.from, e.bytes, now_);
  dispatching_.reset();
  // The endpoint removed itself while its receive_fn ran: free that function now.
  endpoint& after = endpoints_[e.to];
  if (after.removed) after.receive = nullptr;
}

// --- timers ---

timer_id network::schedule(time_point at, std::function<void()> fn) {
  push(event{std::max(at, now_), 0, event_kind::timer, 0, 0, {}});
  const timer_id id = next_sequence_ - 1;  // the sequence push() just gave it
  timers_.emplace(id, std::move(fn));
  return id;
}

bool network::cancel(timer_id id) { return timers_.erase(id) > 0; }

// --- the event loop ---

void network::push(event e) {
  e.sequence = next_sequence_++;
  queue_.push_back(std::move(e));
  std::push_heap(queue_.begin(), queue_.end(), std::greater<>{});
}

bool network::discard_cancelled() {
  while (!queue_.empty()) {
    const event& top = queue_.front();
    if (top.kind == event_kind::datagram || timers_.count(top.sequence)) return true;
    std::pop_heap(queue_.begin(), queue_.end(), std::greater<>{});
    queue_.pop_back();
  }
  return false;
}

bool network::step() {
  if (!discard_cancelled()) return false;
  std::pop_heap(queue_.begin(), queue_.end(), std::greater<>{});
  event e = std::move(queue_.back());
  queue_.pop_back();
  now_ = std::max(now_, e.at);
  if (e.kind == event_kind::datagram) {
    deliver(e);
    return true;
  }
  auto it = timers_.find(e.sequence);
  std::function<void()> fn = std::move(it->second);
  timers_.erase(it);
  fn();
  return true;
}

bool network::run_until(const std::function<bool()>& done, time_point limit) {
  for (;;) {
    if (done && done()) return true;
    if (!discard_cancelled() || queue_.front().at > limit) {
      now_ = std::max(now_, limit);
      return done && done();
    }
    step();
  }
}

void network::run_for(duration d) { run_until({}, now_ + d); }

}  // namespace kadnet::sim
