#include "tools/swarm_command.hpp"

#include <algorithm>
#include <charconv>
#include <functional>
#include <future>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include "transports/node.hpp"

namespace kadnet::tools {
namespace {

using clock = std::chrono::steady_clock;

long long int_arg(const std::string& flag, const std::string& text, long long lo, long long hi) {
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi)
    throw std::invalid_argument(flag + ": '" + text + "' must be a number from " + std::to_string(lo) +
                                " to " + std::to_string(hi));
  return v;
}

double fraction_arg(const std::string& flag, const std::string& text) {
  double v = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0 || v >= 1)
    throw std::invalid_argument(flag + ": '" + text + "' must be a fraction from 0 to below 1 (e.g. 0.33)");
  return v;
}

// Resident memory of this process in KiB (Linux /proc), 0 if unreadable.
double resident_kib() {
  std::ifstream statm("/proc/self/statm");
  double pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return 0;
  return resident * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1024.0;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

// Results of one batch of operations.
struct batch {
  std::size_t ok = 0, failed = 0;
  std::vector<double> latency_ms;
  std::vector<double> rounds;
  double seconds = 0;
  double success_pct() const { return ok + failed == 0 ? 0 : 100.0 * static_cast<double>(ok) / static_cast<double>(ok + failed); }
};

// Runs `count` operations, `in_flight` at a time; `issue(k, done)` starts operation k and calls
// done(ok, rounds) when it completes.
batch run_batch(std::size_t count, const std::function<void(std::size_t, std::function<void(bool, int)>)>& issue,
                int in_flight = 64) {
  batch b;
  std::mutex m;
  std::size_t started = 0;
  std::promise<void> all_done;
  auto t0 = clock::now();
  if (count == 0) return b;
  std::function<void()> next = [&] {
    std::size_t k;
    {
      std::lock_guard lock(m);
      if (started == count) return;
      k = started++;
    }
    auto op_start = clock::now();
    issue(k, [&, op_start](bool ok, int rounds) {
      bool last;
      {
        std::lock_guard lock(m);
        if (ok) {
          ++b.ok;
          b.latency_ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - op_start).count());
          b.rounds.push_back(rounds);
        } else {
          ++b.failed;
        }
        last = b.ok + b.failed == count;
      }
      if (last) all_done.set_value();
      else next();
    });
  };
  for (int w = 0; w < in_flight; ++w) next();
  all_done.get_future().wait();
  b.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return b;
}

}  // namespace

swarm_options parse_swarm_options(const std::vector<std::string>& args) {
  swarm_options o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw std::invalid_argument(args[i] + " needs a value");
      return args[++i];
    };
    if (args[i] == "--nodes") o.nodes = static_cast<int>(int_arg("--nodes", value(), 2, 5000));
    else if (args[i] == "--ops") o.ops = static_cast<int>(int_arg("--ops", value(), 1, 1000000));
    else if (args[i] == "--churn") o.churn = fraction_arg("--churn", value());
    else if (args[i] == "--seed") o.seed = static_cast<std::uint64_t>(int_arg("--seed", value(), 0, 1LL << 62));
    else if (args[i] == "--transport") {
      o.transport = value();
      if (o.transport == "sim")
        throw std::invalid_argument("--transport sim: not available yet (the Node on the simulator is still to come); use tcp or udp");
      if (o.transport != "tcp" && o.transport != "udp")
        throw std::invalid_argument("--transport: '" + o.transport + "' must be tcp, udp or sim");
    } else if (args[i] == "--json") o.json = true;
    else throw std::invalid_argument("unknown argument '" + args[i] + "'");
  }
  return o;
}

int run_swarm(const swarm_options& o, std::ostream& out) {
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
  // Every TCP session costs two descriptors in this one process (both ends): keep ℓ within
  // them. UDP sessions share their node's one socket.
  if (o.transport == "tcp") {
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

  bool ok = joins.failed == 0 && puts.failed == 0 && gets.failed == 0 && serial.failed == 0;
  if (o.json) {
    out << boost::json::serialize(boost::json::object{
               {"bench", "swarm"}, {"nodes", o.nodes}, {"transport", o.transport}, {"seed", o.seed},
               {"settle_s", settle_s}, {"joins_failed", joins.failed},
               {"puts", ops}, {"put_success_pct", puts.success_pct()},
               {"put_median_ms", percentile(puts.latency_ms, 0.5)}, {"put_p99_ms", percentile(puts.latency_ms, 0.99)},
               {"gets", ops}, {"get_success_pct", gets.success_pct()},
               {"get_median_ms", percentile(gets.latency_ms, 0.5)}, {"get_p99_ms", percentile(gets.latency_ms, 0.99)},
               {"get_one_at_a_time_median_ms", percentile(serial.latency_ms, 0.5)},
               {"get_one_at_a_time_p99_ms", percentile(serial.latency_ms, 0.99)},
               {"lookup_rounds_median", percentile(gets.rounds, 0.5)}, {"lookup_rounds_p99", percentile(gets.rounds, 0.99)},
               {"get_ops_per_s", gets.seconds > 0 ? static_cast<double>(ops) / gets.seconds : 0},
               {"put_ops_per_s", puts.seconds > 0 ? static_cast<double>(ops) / puts.seconds : 0},
               {"rss_per_node_kib", rss_per_node_kib},
               {"killed", kill}, {"get_after_churn_success_pct", after.success_pct()},
               {"get_after_churn_median_ms", percentile(after.latency_ms, 0.5)}})
        << "\n";
    return ok ? 0 : 1;
  }
  out << std::fixed << std::setprecision(2) << "kadnet swarm: " << o.nodes << " nodes on " << o.transport
      << " loopback, one process, seed " << o.seed << "\n"
      << "  time to settle      " << settle_s << " s (" << joins.ok << " joins, " << joins.failed << " failed)\n"
      << "  puts                " << ops << ", " << puts.success_pct() << " % stored, median "
      << percentile(puts.latency_ms, 0.5) << " ms, p99 " << percentile(puts.latency_ms, 0.99) << " ms\n"
      << "  gets                " << ops << ", " << gets.success_pct() << " % found, median "
      << percentile(gets.latency_ms, 0.5) << " ms, p99 " << percentile(gets.latency_ms, 0.99) << " ms\n"
      << "  gets one at a time  " << serial.ok + serial.failed << ", " << serial.success_pct() << " % found, median "
      << percentile(serial.latency_ms, 0.5) << " ms, p99 " << percentile(serial.latency_ms, 0.99) << " ms\n"
      << "  lookup hops         median " << percentile(gets.rounds, 0.5) << ", p99 " << percentile(gets.rounds, 0.99) << "\n"
      << "  throughput          " << (puts.seconds > 0 ? static_cast<double>(ops) / puts.seconds : 0) << " puts/s, "
      << (gets.seconds > 0 ? static_cast<double>(ops) / gets.seconds : 0) << " gets/s (64 in flight)\n"
      << "  memory              " << rss_per_node_kib << " KiB resident per node\n"
      << "  sessions            " << totals.sessions_opened << " opened, " << totals.handshakes_failed
      << " handshakes failed; " << totals.requests_sent << " requests, " << totals.timeouts << " timed out\n";
  if (kill)
    out << "  after killing " << kill << "    " << after.success_pct() << " % of gets found, median "
        << percentile(after.latency_ms, 0.5) << " ms, p99 " << percentile(after.latency_ms, 0.99) << " ms\n";
  return ok ? 0 : 1;
}

}  // namespace kadnet::tools
