#include "benchmarks/atomic/lock_latency.hpp"

#include <algorithm>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "kadnet/core/errors.hpp"
#include "tests/support/lock_history_check.hpp"

namespace kadnet::bench {
namespace {

using namespace std::chrono_literals;
using testing::lease_interval;

// The most virtual time one measurement may run.
constexpr sim::duration run_limit = 1h;

double ms_between(sim::time_point from, sim::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// The lease a holder counts on, from its grant until its expiry; its unlock cuts it short.
lease_interval lease_of(std::size_t client, const dht::lock_outcome& granted) {
  return lease_interval{client, granted.token, granted.granted_at, granted.expires_at, false};
}

// One client's lock → unlock cycles, one after another. Held by shared_ptr in every callback it
// hands the swarm, so that callbacks still pending after run_limit find it alive.
class lock_cycles : public std::enable_shared_from_this<lock_cycles> {
 public:
  lock_cycles(dht_swarm& swarm, std::uint32_t node, const lock_plan& plan)
      : swarm_(swarm), node_(node), plan_(plan) {
    result_.cycles = plan.cycles;
  }

  lock_cycles_result run() {
    sim::network& net = swarm_.network();
    next_cycle();
    net.run_until([this] { return left_ == 0; }, net.now() + run_limit);
    result_.finished = left_ == 0;
    result_.violations = testing::lock_history_violations(history_);
    return result_;
  }

 private:
  void next_cycle() {
    if (left_ == 0) return;
    const sim::time_point began = swarm_.network().now();
    swarm_.lock(node_, key_, plan_.lease, [self = shared_from_this(), began](const dht::lock_outcome& r) {
      self->on_locked(r, began);
    });
  }

  void on_locked(const dht::lock_outcome& r, sim::time_point began) {
    count(r);
    const sim::time_point now = swarm_.network().now();
    if (r.ec) {
      ++result_.failed;
      finish_cycle();
      return;
    }
    ++result_.acquired;
    result_.acquire_ms.push_back(ms_between(began, now));
    history_.push_back(lease_of(0, r));
    history_.back().end = std::min(history_.back().end, now);  // unlocks at once
    swarm_.unlock(node_, key_, r.token, [self = shared_from_this(), now](const dht::lock_outcome& u) {
      self->on_unlocked(u, now);
    });
  }

  void on_unlocked(const dht::lock_outcome& r, sim::time_point began) {
    count(r);
    if (!r.ec) {
      ++result_.released;
      result_.release_ms.push_back(ms_between(began, swarm_.network().now()));
    } else {
      ++result_.failed;
    }
    finish_cycle();
  }

  void count(const dht::lock_outcome& r) {
    ++result_.operations;
    result_.messages += r.messages;
  }

  void finish_cycle() {
    --left_;
    next_cycle();
  }

  dht_swarm& swarm_;
  const std::uint32_t node_;
  const lock_plan plan_;
  const core::node_id key_ = core::node_id::hash_of(as_bytes(std::string("atomic bench lock")));
  std::size_t left_ = plan_.cycles;
  std::vector<lease_interval> history_;
  lock_cycles_result result_;
};

// Clients on distinct nodes contending for one lock. Held by shared_ptr as lock_cycles is.
class lock_contention : public std::enable_shared_from_this<lock_contention> {
 public:
  lock_contention(dht_swarm& swarm, const std::vector<std::uint32_t>& nodes, const lock_plan& plan)
      : swarm_(swarm), plan_(plan), pauses_(swarm.rng()()) {
    for (std::uint32_t node : nodes) clients_.push_back(client{node, plan.rounds, {}});
    result_.clients = nodes.size();
    result_.rounds = plan.rounds;
  }

  lock_contention_result run() {
    sim::network& net = swarm_.network();
    const sim::time_point start = net.now();
    for (std::size_t c = 0; c < clients_.size(); ++c) want(c);
    net.run_until([this] { return done_ == clients_.size(); }, start + run_limit);
    result_.finished = done_ == clients_.size();
    result_.seconds = std::chrono::duration<double>(net.now() - start).count();
    result_.violations = testing::lock_history_violations(history_);
    return result_;
  }

 private:
  struct client {
    std::uint32_t node;
    std::size_t left;        // grants it still wants
    sim::time_point wanted;  // when it began to want the next one
  };

  void want(std::size_t c) {
    clients_[c].wanted = swarm_.network().now();
    try_lock(c);
  }

  void try_lock(std::size_t c) {
    ++result_.lock_calls;
    swarm_.lock(clients_[c].node, key_, plan_.lease,
                [self = shared_from_this(), c](const dht::lock_outcome& r) { self->on_lock(c, r); });
  }

  void on_lock(std::size_t c, const dht::lock_outcome& r) {
    result_.most_attempts = std::max(result_.most_attempts, r.attempts);
    result_.messages += r.messages;
    if (r.ec) {
      count_refusal(r);
      after_pause([self = shared_from_this(), c] { self->try_lock(c); });
      return;
    }
    const sim::time_point now = swarm_.network().now();
    ++result_.acquired;
    result_.wait_ms.push_back(ms_between(clients_[c].wanted, now));
    const std::size_t held = history_.size();
    history_.push_back(lease_of(c, r));
    swarm_.network().schedule_after(plan_.hold, [self = shared_from_this(), c, held] { self->release(c, held); });
  }

  void count_refusal(const dht::lock_outcome& r) {
    if (r.ec == core::errc::locked) {
      ++result_.refusals;
      return;
    }
    ++result_.failures;
    if (r.ec == core::errc::no_quorum && r.attempts >= plan_.max_attempts) ++result_.gave_up;
  }

  // Unlocks the grant at history_[held].
  void release(std::size_t c, std::size_t held) {
    lease_interval& lease = history_[held];
    lease.end = std::min(lease.end, swarm_.network().now());  // stops counting on it as the unlock starts
    swarm_.unlock(clients_[c].node, key_, lease.token,
                  [self = shared_from_this(), c](const dht::lock_outcome& r) { self->on_unlock(c, r); });
  }

  void on_unlock(std::size_t c, const dht::lock_outcome& r) {
    result_.messages += r.messages;
    if (r.ec) ++result_.unlock_failures;
    if (--clients_[c].left == 0) {
      ++done_;
      return;
    }
    after_pause([self = shared_from_this(), c] { self->want(c); });
  }

  void after_pause(std::function<void()> then) {
    std::uniform_int_distribution<std::int64_t> ms(plan_.retry_pause_min.count(), plan_.retry_pause_max.count());
    swarm_.network().schedule_after(std::chrono::milliseconds(ms(pauses_)), std::move(then));
  }

  dht_swarm& swarm_;
  const lock_plan plan_;
  const core::node_id key_ = core::node_id::hash_of(as_bytes(std::string("atomic bench contended lock")));
  std::mt19937_64 pauses_;  // seeded from the swarm's generator: the run stays fixed by --seed
  std::vector<client> clients_;
  std::size_t done_ = 0;
  std::vector<lease_interval> history_;
  lock_contention_result result_;
};

}  // namespace

lock_cycles_result measure_lock_cycles(dht_swarm& swarm, std::uint32_t node, const lock_plan& plan) {
  return std::make_shared<lock_cycles>(swarm, node, plan)->run();
}

lock_contention_result measure_lock_contention(dht_swarm& swarm, const std::vector<std::uint32_t>& nodes,
                                               const lock_plan& plan) {
  return std::make_shared<lock_contention>(swarm, nodes, plan)->run();
}

}  // namespace kadnet::bench
