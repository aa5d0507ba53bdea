#include "tools/swarm_command.hpp"

#include <algorithm>
#include <charconv>
#include <functional>
#include <future>
#include <iomanip>
#include <iostream>
#include <random>
#include <stdexcept>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include "transports/node.hpp"

namespace kadnet::tools {
namespace {

int int_arg(const std::string& flag, const std::string& text, int lo, int hi) {
  int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi)
    throw std::invalid_argument(flag + ": '" + text + "' must be a number from " + std::to_string(lo) +
                                " to " + std::to_string(hi));
  return v;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

swarm_options parse_swarm_options(const std::vector<std::string>& args) {
  swarm_options o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw std::invalid_argument(args[i] + " needs a value");
      return args[++i];
    };
    if (args[i] == "--nodes") o.nodes = int_arg("--nodes", value(), 2, 2000);
    else if (args[i] == "--calls") o.calls_per_node = int_arg("--calls", value(), 1, 100000);
    else if (args[i] == "--json") o.json = true;
    else throw std::invalid_argument("unknown argument '" + args[i] + "'");
  }
  return o;
}

int run_swarm(const swarm_options& o, std::ostream& out) {
  using clock = std::chrono::steady_clock;
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::vector<std::unique_ptr<node>> nodes;
  std::vector<uri> addresses;
  auto start = clock::now();
  for (int i = 0; i < o.nodes; ++i) {
    nodes.push_back(std::make_unique<node>(io.get_executor()));
    nodes.back()->add_handler(64, [](const node_id&, byte_span in) { return byte_vector(in.begin(), in.end()); });
    addresses.push_back(nodes.back()->listen(*transports::parse_uri("tcp://127.0.0.1:0")));
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) threads.emplace_back([&] { io.run(); });

  // Phase 1: every node connects to up to 8 random peers (its call targets).
  std::mt19937 rng(1);
  const int fanout = std::min(8, o.nodes - 1);
  std::vector<std::vector<std::size_t>> targets(static_cast<std::size_t>(o.nodes));
  for (int i = 0; i < o.nodes; ++i) {
    while (static_cast<int>(targets[static_cast<std::size_t>(i)].size()) < fanout) {
      std::size_t j = rng() % static_cast<unsigned>(o.nodes);
      auto& t = targets[static_cast<std::size_t>(i)];
      if (j != static_cast<std::size_t>(i) && std::find(t.begin(), t.end(), j) == t.end()) t.push_back(j);
    }
  }
  std::vector<std::future<node_id>> connects;
  for (int i = 0; i < o.nodes; ++i)
    for (auto j : targets[static_cast<std::size_t>(i)])
      connects.push_back(nodes[static_cast<std::size_t>(i)]->async_connect(addresses[j], std::nullopt, boost::asio::use_future));
  std::size_t connect_failures = 0;
  for (auto& f : connects) {
    try {
      f.get();
    } catch (const boost::system::system_error&) {
      ++connect_failures;
    }
  }
  double settle_s = std::chrono::duration<double>(clock::now() - start).count();

  // Phase 2: plugin calls to those peers, 64 in flight across the swarm.
  std::mutex m;
  std::vector<double> latencies_ms;
  std::size_t failures = 0, issued = 0;
  const std::size_t total = static_cast<std::size_t>(o.nodes) * static_cast<std::size_t>(o.calls_per_node);
  std::promise<void> all_done;
  std::function<void()> issue = [&] {
    std::size_t k;
    {
      std::lock_guard lock(m);
      if (issued == total) return;
      k = issued++;
    }
    std::size_t i = k % static_cast<std::size_t>(o.nodes);
    std::size_t j = targets[i][(k / static_cast<std::size_t>(o.nodes)) % targets[i].size()];
    auto t0 = clock::now();
    nodes[i]->async_call(addresses[j], 64, byte_vector(64, static_cast<std::uint8_t>(k)),
                         [&, t0](boost::system::error_code ec, reply) {
                           bool last;
                           {
                             std::lock_guard lock(m);
                             if (ec) ++failures;
                             else latencies_ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
                             last = latencies_ms.size() + failures == total;
                           }
                           if (last) all_done.set_value();
                           else issue();
                         });
  };
  auto calls_start = clock::now();
  for (int w = 0; w < 64; ++w) issue();
  all_done.get_future().wait();
  double calls_s = std::chrono::duration<double>(clock::now() - calls_start).count();
  double seconds = std::chrono::duration<double>(clock::now() - start).count();
  std::size_t sessions = 0;
  for (auto& n : nodes) sessions += n->async_peers(boost::asio::use_future).get().size();
  for (auto& n : nodes) n->stop();
  work.reset();
  io.stop();
  for (auto& t : threads) t.join();

  double ok_pct = 100.0 * static_cast<double>(total - failures) / static_cast<double>(total);
  double median = percentile(latencies_ms, 0.5), p99 = percentile(latencies_ms, 0.99);
  if (o.json) {
    out << boost::json::serialize(boost::json::object{
               {"bench", "swarm"}, {"mode", "mesh (DHT arrives with the DHT issue)"}, {"nodes", o.nodes},
               {"transport", "tcp"}, {"calls", total}, {"success_pct", ok_pct}, {"latency_median_ms", median},
               {"latency_p99_ms", p99}, {"calls_per_s", static_cast<double>(total) / calls_s},
               {"settle_s", settle_s}, {"connect_failures", connect_failures}, {"sessions", sessions},
               {"seconds", seconds}})
        << "\n";
    return failures + connect_failures == 0 ? 0 : 1;
  }
  out << std::fixed << std::setprecision(2)
      << "kadnet local swarm (TCP loopback, one process)\n"
      << "  note: the Kademlia DHT (puts, gets, churn) arrives with the DHT issue;\n"
      << "        this run forms a mesh of nodes that call a plugin RPC on each other.\n"
      << "  nodes            " << o.nodes << "\n"
      << "  time to settle   " << settle_s << " s (" << connects.size() << " sessions dialed, "
      << connect_failures << " failed)\n"
      << "  plugin calls     " << total << " (" << o.calls_per_node << " per node, 64 in flight), "
      << static_cast<double>(total) / calls_s << " calls/s\n"
      << "  success          " << ok_pct << " %\n"
      << "  latency median   " << median << " ms\n"
      << "  latency p99      " << p99 << " ms\n"
      << "  sessions         " << sessions << " (counted at both ends)\n"
      << "  wall time        " << seconds << " s\n";
  return failures + connect_failures == 0 ? 0 : 1;
}

}  // namespace kadnet::tools
