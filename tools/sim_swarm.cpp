#include "tools/sim_swarm.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "kadnet/core/node_id.hpp"
#include "kadnet/transports/sim/swarm.hpp"

namespace kadnet::tools {
namespace {

using namespace std::chrono_literals;
using wall_clock = std::chrono::steady_clock;

// A wide-area link: 20 ms one way, give or take 5 ms (so datagrams reorder), no loss.
constexpr sim::link_config swarm_link{.latency = 20ms, .jitter = 5ms};
// Virtual time a batch may take before what is unfinished counts as failed.
constexpr sim::duration batch_limit = 24h;

using done_fn = std::function<void(bool ok, int rounds)>;
using issue_fn = std::function<void(std::size_t k, done_fn done)>;

double virtual_ms(sim::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Runs `count` operations, `in_flight` at a time, on virtual time; latencies are virtual.
batch run_batch(sim::swarm& s, std::size_t count, const issue_fn& issue, std::size_t in_flight = 64) {
  // Shared with the callbacks, which outlive this call when the limit cuts a batch short.
  struct state {
    std::size_t started = 0, finished = 0;
    batch b;
  };
  auto st = std::make_shared<state>();
  auto next = std::make_shared<std::function<void()>>();
  *next = [&s, &issue, st, count, weak = std::weak_ptr(next)] {
    if (st->started == count) return;
    const std::size_t k = st->started++;
    const sim::time_point start = s.now();
    issue(k, [&s, st, start, weak](bool ok, int rounds) {
      if (ok) {
        ++st->b.ok;
        st->b.latency_ms.push_back(virtual_ms(s.now() - start));
        st->b.rounds.push_back(rounds);
      } else {
        ++st->b.failed;
      }
      ++st->finished;
      if (auto again = weak.lock()) (*again)();
    });
  };
  const sim::time_point start = s.now();
  for (std::size_t w = 0; w < in_flight; ++w) (*next)();
  s.run_until([&] { return st->finished == count; }, batch_limit);
  batch out = st->b;
  out.failed += count - st->finished;
  out.seconds = std::chrono::duration<double>(s.now() - start).count();
  return out;
}

std::string hex(const std::array<std::uint8_t, 32>& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (auto b : bytes) out += {digits[b >> 4], digits[b & 15]};
  return out;
}

void add_counters(core::engine_counters& total, const core::engine_counters& c) {
  total.sessions_opened += c.sessions_opened;
  total.handshakes_failed += c.handshakes_failed;
  total.timeouts += c.timeouts;
  total.requests_sent += c.requests_sent;
}

}  // namespace

swarm_results run_sim_swarm(const swarm_options& o) {
  swarm_results r;
  r.virtual_time = true;
  r.network = "the simulated network (20 ms ± 5 ms links)";
  const auto wall_start = wall_clock::now();
  const double rss_before = resident_kib();

  sim::swarm_settings settings;
  settings.seed = o.seed;
  settings.link = swarm_link;
  settings.node.request_timeout = 2000ms;  // as on loopback
  sim::swarm s(settings);
  auto& rng = s.rng();  // one generator: a seed fixes the whole run
  const auto n = static_cast<std::size_t>(o.nodes);
  s.add_nodes(n);

  // Join: every node connects to one earlier node and looks itself up, 64 at a time.
  r.joins = run_batch(s, n - 1, [&](std::size_t k, done_fn done) {
    const std::size_t i = k + 1;
    const std::size_t via = std::uniform_int_distribution<std::size_t>(0, i - 1)(rng);
    s.join(i, via, [done](const dht::find_node_result& res) { done(!res.ec, res.stats.rounds); });
  });
  r.settle_s = r.joins.seconds;
  r.build_wall_s = std::chrono::duration<double>(wall_clock::now() - wall_start).count();
  r.rss_per_node_kib = (resident_kib() - rss_before) / static_cast<double>(n);

  // Puts and gets of distinct keys from random nodes.
  auto key_of = [&](std::size_t k) {
    std::string text = "swarm/" + std::to_string(o.seed) + "/" + std::to_string(k);
    return core::node_id::hash_of(as_bytes(text));
  };
  std::vector<std::size_t> alive(n);
  for (std::size_t i = 0; i < n; ++i) alive[i] = i;
  auto pick = [&] { return alive[std::uniform_int_distribution<std::size_t>(0, alive.size() - 1)(rng)]; };
  const auto ops = static_cast<std::size_t>(o.ops);
  r.puts = run_batch(s, ops, [&](std::size_t k, done_fn done) {
    std::string text = "value " + std::to_string(k);
    s.put(pick(), key_of(k), byte_vector(text.begin(), text.end()),
          [done](const dht::put_outcome& res) { done(!res.ec, res.stats.rounds); });
  });
  auto get_all = [&](std::size_t count, std::size_t in_flight) {
    return run_batch(s, count, [&](std::size_t k, done_fn done) {
      std::string expected = "value " + std::to_string(k);
      s.get(pick(), key_of(k), [done, expected](const dht::get_result& res) {
        bool found = !res.ec && res.value && std::string(res.value->value.begin(), res.value->value.end()) == expected;
        done(found, res.stats.rounds);
      });
    }, in_flight);
  };
  r.gets = get_all(ops, 64);
  // Latency without queueing behind other operations: one get at a time.
  r.serial = get_all(std::min<std::size_t>(ops, 200), 1);

  // Churn: a share of the nodes crash (their counters are kept first), then everything is read again.
  std::shuffle(alive.begin(), alive.end(), rng);
  r.killed = static_cast<std::size_t>(o.churn * o.nodes);
  for (std::size_t k = 0; k < r.killed; ++k) {
    add_counters(r.totals, s.stats(alive[k]).engine);
    s.kill(alive[k]);
  }
  alive.erase(alive.begin(), alive.begin() + static_cast<std::ptrdiff_t>(r.killed));
  if (r.killed) r.after = get_all(ops, 64);

  for (auto i : alive) add_counters(r.totals, s.stats(i).engine);
  r.datagrams = s.net().counters().sent;
  r.trace_hash = hex(s.trace_hash());
  r.wall_s = std::chrono::duration<double>(wall_clock::now() - wall_start).count();
  return r;
}

}  // namespace kadnet::tools
