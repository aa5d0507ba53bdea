#include "tools/swarm_command.hpp"

#include <algorithm>
#include <functional>
#include <future>
#include <iostream>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include <sys/resource.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "tools/run_batch.hpp"
#include "tools/sim_swarm.hpp"
#include "tools/swarm_report.hpp"
#include "kadnet/transports/node.hpp"
#include "kadnet/transports/testing/socket_swarm.hpp"

namespace kadnet::tools {
namespace {

using clock = std::chrono::steady_clock;

}  // namespace

int run_swarm(const swarm_options& o, std::ostream& out) {
  if (o.transport == "sim") return print_swarm(o, run_sim_swarm(o), out);
  double rss_before = resident_kib();
  testing::socket_swarm_settings settings;
  settings.transport = o.transport;
  settings.seed = o.seed;
  settings.config.request_timeout = std::chrono::milliseconds(2000);
  // Every TCP (or WebSocket) session costs two descriptors in this one process (both ends):
  // keep ℓ within them. UDP sessions share their node's one socket.
  if (o.transport != "udp") {
    rlimit files{};
    getrlimit(RLIMIT_NOFILE, &files);
    settings.config.max_outbound_sessions = std::clamp<std::size_t>(
        (static_cast<std::size_t>(files.rlim_cur) - 256) / (3 * static_cast<std::size_t>(o.nodes)), 4, 48);
  }
  testing::socket_swarm swarm(std::move(settings));
  swarm.add_nodes(static_cast<std::size_t>(o.nodes));

  // Join: every node dials a random earlier node and looks itself up, 64 at a time.
  auto settle_start = clock::now();
  batch joins = run_batch(static_cast<std::size_t>(o.nodes - 1), [&](std::size_t k, auto done) {
    std::size_t i = k + 1;
    swarm.async_join(i, swarm.bootstrap_for(i, testing::bootstrap_strategy::random_earlier),
                     [done](bool ok, int rounds) { done(ok, ok ? rounds : 0); });
  });
  double settle_s = std::chrono::duration<double>(clock::now() - settle_start).count();
  double rss_per_node_kib = (resident_kib() - rss_before) / o.nodes;

  // Puts and gets of distinct keys from random nodes.
  std::mt19937_64 rng(o.seed);
  std::mutex rng_mutex;  // completions run on both I/O threads
  auto key_of = [&](std::size_t k) { return text_key("swarm/" + std::to_string(o.seed) + "/" + std::to_string(k)); };
  std::vector<std::size_t> alive(static_cast<std::size_t>(o.nodes));
  for (std::size_t i = 0; i < alive.size(); ++i) alive[i] = i;
  const std::size_t ops = static_cast<std::size_t>(o.ops);
  auto pick = [&] {
    std::lock_guard lock(rng_mutex);
    return alive[std::uniform_int_distribution<std::size_t>(0, alive.size() - 1)(rng)];
  };
  batch puts = run_batch(ops, [&](std::size_t k, auto done) {
    std::string text = "value " + std::to_string(k);
    swarm[pick()].dht().put(key_of(k), byte_vector(text.begin(), text.end()),
                            [done](boost::system::error_code ec, dht::put_outcome r) { done(!ec, r.stats.rounds); });
  });
  auto get_all = [&](std::size_t count, int in_flight) {
    return run_batch(count, [&](std::size_t k, auto done) {
      std::string expected = "value " + std::to_string(k);
      swarm[pick()].dht().get(key_of(k), [done, expected](boost::system::error_code ec, dht::get_result r) {
        bool ok = !ec && r.value && std::string(r.value->value.begin(), r.value->value.end()) == expected;
        done(ok, r.stats.rounds);
      });
    }, in_flight);
  };
  batch gets = get_all(ops, 64);
  // Latency without queueing behind other operations: one get at a time.
  batch serial = get_all(std::min<std::size_t>(ops, 200), 1);

  core::engine_counters totals;
  auto count_in = [&](std::size_t i) {
    auto s = swarm[i].async_stats(boost::asio::use_future).get();
    totals.sessions_opened += s.sessions_opened;
    totals.handshakes_failed += s.handshakes_failed;
    totals.timeouts += s.timeouts;
    totals.requests_sent += s.requests_sent;
  };
  // Churn: stop a share of the nodes (their counters first), then read everything again.
  std::shuffle(alive.begin(), alive.end(), rng);
  std::size_t kill = static_cast<std::size_t>(o.churn * o.nodes);
  for (std::size_t i = 0; i < kill; ++i) {
    count_in(alive[i]);
    swarm.kill(alive[i]);
  }
  alive.erase(alive.begin(), alive.begin() + static_cast<std::ptrdiff_t>(kill));
  batch after = kill ? get_all(ops, 64) : batch{};
  for (std::size_t i : alive) count_in(i);

  swarm_results r;
  r.network = o.transport + " loopback";
  r.settle_s = settle_s;
  r.joins = std::move(joins), r.puts = std::move(puts), r.gets = std::move(gets);
  r.serial = std::move(serial), r.after = std::move(after);
  r.killed = kill;
  r.rss_per_node_kib = rss_per_node_kib;
  r.totals = totals;
  return print_swarm(o, r, out);
}

}  // namespace kadnet::tools
