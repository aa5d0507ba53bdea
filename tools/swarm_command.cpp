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
#include "transports/node.hpp"

namespace kadnet::tools {
namespace {

using clock = std::chrono::steady_clock;

}  // namespace

int run_swarm(const swarm_options& o, std::ostream& out) {
  if (o.transport == "sim") return print_swarm(o, run_sim_swarm(o), out);
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  double rss_before = resident_kib();
  std::mt19937_64 rng(o.seed);
  std::vector<std::unique_ptr<node>> nodes;
  std::vector<uri> addresses;
  transports::dht_settings dht;
  dht.config.routing.max_per_prefix = 0;  // every node of this swarm is on 127.0.0.1
  core::node_config config;
  config.request_timeout = std::chrono::milliseconds(2000);
  // Every TCP (or WebSocket) session costs two descriptors in this one process (both ends):
  // keep ℓ within them. UDP sessions share their node's one socket.
  if (o.transport != "udp") {
    rlimit files{};
    getrlimit(RLIMIT_NOFILE, &files);
    config.max_outbound_sessions = std::clamp<std::size_t>(
        (static_cast<std::size_t>(files.rlim_cur) - 256) / (3 * static_cast<std::size_t>(o.nodes)), 4, 48);
  }
  for (int i = 0; i < o.nodes; ++i) {
    nodes.push_back(std::make_unique<node>(io.get_executor(), core::identity::generate(), config, dht));
    addresses.push_back(nodes.back()->listen(*transports::parse_uri(o.transport + "://127.0.0.1:0")));
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) threads.emplace_back([&] { io.run(); });

  std::mutex rng_mutex;  // completions run on both I/O threads
  // Join: every node dials one earlier node and looks itself up, 64 at a time.
  auto settle_start = clock::now();
  batch joins = run_batch(static_cast<std::size_t>(o.nodes - 1), [&](std::size_t k, auto done) {
    std::size_t i = k + 1;
    std::size_t via;
    {
      std::lock_guard lock(rng_mutex);
      via = std::uniform_int_distribution<std::size_t>(0, i - 1)(rng);
    }
    nodes[i]->async_connect(addresses[via], std::nullopt, [&, i, done](boost::system::error_code ec, node_id) {
      if (ec) return done(false, 0);
      nodes[i]->dht().bootstrap([done](boost::system::error_code ec, dht::find_node_result r) {
        done(!ec, r.stats.rounds);
      });
    });
  });
  double settle_s = std::chrono::duration<double>(clock::now() - settle_start).count();
  double rss_per_node_kib = (resident_kib() - rss_before) / o.nodes;

  // Puts and gets of distinct keys from random nodes.
  auto key_of = [&](std::size_t k) { return text_key("swarm/" + std::to_string(o.seed) + "/" + std::to_string(k)); };
  auto random_node = [&](const std::vector<std::size_t>& alive) {
    return alive[std::uniform_int_distribution<std::size_t>(0, alive.size() - 1)(rng)];
  };
  std::vector<std::size_t> alive(static_cast<std::size_t>(o.nodes));
  for (std::size_t i = 0; i < alive.size(); ++i) alive[i] = i;
  const std::size_t ops = static_cast<std::size_t>(o.ops);
  auto pick = [&] {
    std::lock_guard lock(rng_mutex);
    return random_node(alive);
  };
  batch puts = run_batch(ops, [&](std::size_t k, auto done) {
    std::string text = "value " + std::to_string(k);
    nodes[pick()]->dht().put(key_of(k), byte_vector(text.begin(), text.end()),
                             [done](boost::system::error_code ec, dht::put_outcome r) { done(!ec, r.stats.rounds); });
  });
  auto get_all = [&](std::size_t count, int in_flight) {
    return run_batch(count, [&](std::size_t k, auto done) {
      std::string expected = "value " + std::to_string(k);
      nodes[pick()]->dht().get(key_of(k), [done, expected](boost::system::error_code ec, dht::get_result r) {
        bool ok = !ec && r.value && std::string(r.value->value.begin(), r.value->value.end()) == expected;
        done(ok, r.stats.rounds);
      });
    }, in_flight);
  };
  batch gets = get_all(ops, 64);
  // Latency without queueing behind other operations: one get at a time.
  batch serial = get_all(std::min<std::size_t>(ops, 200), 1);

  // Churn: stop a share of the nodes (never node 0's survivors all), then read everything again.
  std::shuffle(alive.begin(), alive.end(), rng);
  std::size_t kill = static_cast<std::size_t>(o.churn * o.nodes);
  for (std::size_t i = 0; i < kill; ++i) nodes[alive[i]]->stop();
  alive.erase(alive.begin(), alive.begin() + static_cast<std::ptrdiff_t>(kill));
  batch after = kill ? get_all(ops, 64) : batch{};

  core::engine_counters totals;
  for (auto& n : nodes) {
    auto s = n->async_stats(boost::asio::use_future).get();
    totals.sessions_opened += s.sessions_opened;
    totals.handshakes_failed += s.handshakes_failed;
    totals.timeouts += s.timeouts;
    totals.requests_sent += s.requests_sent;
  }
  for (auto& n : nodes) n->stop();
  work.reset();
  io.stop();
  for (auto& t : threads) t.join();

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
