// kadnet_bench_opendht: `kadnet swarm`'s workload on OpenDHT, the DHT users would otherwise
// pick, so that `./run.sh bench swarm --vs opendht` measures both in the same run.
//
// N dht::DhtRunner nodes in this process, each with its own UDP socket on 127.0.0.1 and its own
// threads (OpenDHT's threaded mode), every one bootstrapped from the first; then the same
// operations as `kadnet swarm` (tools/swarm_command.cpp), driven and measured by the same code
// (tools/run_batch, tools/swarm_report): puts of distinct keys from random nodes and gets of them
// from random nodes with 64 in flight, gets one at a time, a third of the nodes stopped and the
// gets again. Memory is the process's RSS growth over building and joining, divided by N.
//
// Settings that differ from OpenDHT's defaults, and why: the per-address request rate limit is
// off (every node of this swarm shares 127.0.0.1, so the default limit would throttle the whole
// swarm as if it were one abusive peer; kadnet's swarm likewise lifts its per-prefix routing
// limit), and only IPv4 is bound (one socket per node, as kadnet's nodes have).
#include <sys/select.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <opendht/dhtrunner.h>
#include <opendht/utils.h>

#include "tools/run_batch.hpp"
#include "tools/swarm_command.hpp"
#include "tools/swarm_report.hpp"

namespace {

using namespace kadnet::tools;
using clock_type = std::chrono::steady_clock;

constexpr const char* usage =
    "usage: kadnet_bench_opendht [--nodes N] [--ops N] [--churn F] [--seed S] [--json]\n"
    "  `kadnet swarm`'s workload on N OpenDHT nodes (UDP on 127.0.0.1) in this process\n";

// How long the routing tables may take to fill after the joins (see settle()).
constexpr auto settle_limit = std::chrono::seconds(30);
constexpr auto settle_quiet = std::chrono::seconds(3);
constexpr auto settle_poll = std::chrono::milliseconds(250);
constexpr unsigned settle_min_good = 8;  // OpenDHT's TARGET_NODES: a search's width

// The lowest descriptor number this process would be handed next: OpenDHT's sockets get
// numbers from here up.
int next_descriptor() {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) ::close(fd);
  return fd;
}

// Starts one node on 127.0.0.1 on a port of the kernel's choosing, with its own threads.
std::unique_ptr<dht::DhtRunner> start_node() {
  dht::DhtRunner::Config config;
  config.threaded = true;
  config.dht_config.node_config.max_peer_req_per_sec = -1;  // all peers share 127.0.0.1
  config.dht_config.node_config.max_req_per_sec = -1;
  auto bind = dht::SockAddr::resolve("127.0.0.1", "0");
  if (bind.empty()) throw std::runtime_error("cannot resolve 127.0.0.1");
  config.bind4 = bind.front();  // bind6 left empty: no IPv6 socket
  auto runner = std::make_unique<dht::DhtRunner>();
  runner->run(config, dht::DhtRunner::Context{});
  return runner;
}

unsigned good_nodes(const dht::DhtRunner& n) { return n.getNodesStats(AF_INET).good_nodes; }

// OpenDHT offers no signal that a node's routing table is as full as it will get, so this waits
// on the wall clock, bounded by `settle_limit`: until every node knows `settle_min_good` good
// nodes (or all others) and the swarm's total of good routing-table entries has grown by less
// than 1 % over `settle_quiet`. Each node looks itself up a few seconds after its bootstrap ping
// is answered, which is when the tables fill; later maintenance adds a few entries at a time.
// Returns when the total last grew by 1 % or more: the time the swarm took to settle, without
// the quiet period spent making sure of it.
clock_type::time_point settle(const std::vector<std::unique_ptr<dht::DhtRunner>>& nodes) {
  const auto deadline = clock_type::now() + settle_limit;
  const unsigned enough = std::min<unsigned>(settle_min_good, static_cast<unsigned>(nodes.size() - 1));
  std::size_t mark = 0;  // the total when it last grew by 1 % or more
  auto last_growth = clock_type::now();
  while (clock_type::now() < deadline) {
    std::size_t total = 0;
    bool all_enough = true;
    for (auto& n : nodes) {
      const unsigned good = good_nodes(*n);
      total += good;
      all_enough = all_enough && good >= enough;
    }
    if (total * 100 >= mark * 101 && total > mark) {
      mark = total;
      last_growth = clock_type::now();
    } else if (all_enough && clock_type::now() - last_growth >= settle_quiet) {
      break;
    }
    std::this_thread::sleep_for(settle_poll);  // the bounded wall-clock wait described above
  }
  return last_growth;
}

std::string key_text(const swarm_options& o, std::size_t k) {
  return "swarm/" + std::to_string(o.seed) + "/" + std::to_string(k);
}

// What could not be built, printed instead of results (exit status 3).
int report_unreachable(const swarm_options& o, int built, const std::string& why, std::ostream& out) {
  if (o.json)
    out << "{\"bench\":\"swarm\",\"system\":\"opendht\",\"nodes\":" << o.nodes << ",\"transport\":\"udp\","
        << "\"nodes_reached\":" << built << ",\"error\":\"" << why << "\"}\n";
  else
    out << "opendht swarm: " << o.nodes << " nodes not reached (stopped at " << built << "): " << why << "\n";
  return 3;
}

int run(const swarm_options& o, std::ostream& out) {
  std::mt19937_64 rng(o.seed);
  std::mutex rng_mutex;  // operations are started from OpenDHT's threads too
  const double rss_before = resident_kib();

  // Each runner's receive thread waits in select(), which cannot watch a descriptor at or above
  // FD_SETSIZE (glibc aborts): stop before a node would get one, and say so.
  std::vector<std::unique_ptr<dht::DhtRunner>> nodes;
  int per_node = 0;
  for (int i = 0; i < o.nodes; ++i) {
    const int before = next_descriptor();
    if (per_node > 0 && before + per_node > FD_SETSIZE)
      return report_unreachable(o, i,
                                "OpenDHT's socket thread uses select(), which takes descriptors below FD_SETSIZE (" +
                                    std::to_string(FD_SETSIZE) + "); each node needs " + std::to_string(per_node) +
                                    " and the next would be " + std::to_string(before),
                                out);
    nodes.push_back(start_node());
    per_node = std::max(per_node, next_descriptor() - before);
  }
  const dht::SockAddr first = nodes.front()->getBound(AF_INET);

  // Join: every other node pings the first (OpenDHT's bootstrap), 64 at a time; then settle.
  const auto settle_start = clock_type::now();
  batch joins = run_batch(static_cast<std::size_t>(o.nodes - 1), [&](std::size_t k, batch_done done) {
    nodes[k + 1]->bootstrap(first, [done](bool ok) { done(ok, -1); });
  });
  const double settle_s = std::chrono::duration<double>(settle(nodes) - settle_start).count();
  const double rss_per_node_kib = (resident_kib() - rss_before) / o.nodes;

  std::vector<std::size_t> alive(nodes.size());
  for (std::size_t i = 0; i < alive.size(); ++i) alive[i] = i;
  auto pick = [&]() -> dht::DhtRunner& {
    std::lock_guard lock(rng_mutex);
    return *nodes[alive[std::uniform_int_distribution<std::size_t>(0, alive.size() - 1)(rng)]];
  };
  const auto ops = static_cast<std::size_t>(o.ops);

  batch puts = run_batch(ops, [&](std::size_t k, batch_done done) {
    const std::string text = "value " + std::to_string(k);
    pick().put(dht::InfoHash::get(key_text(o, k)),
               dht::Value(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()),
               [done](bool ok) { done(ok, -1); });
  });
  // A get succeeds when the value put under its key comes back; it completes at the first such
  // value (the search is then stopped) or when OpenDHT's search ends without it.
  auto get_all = [&](std::size_t count, int in_flight) {
    return run_batch(count, [&](std::size_t k, batch_done done) {
      auto expected = std::make_shared<const std::string>("value " + std::to_string(k));
      auto completed = std::make_shared<std::atomic<bool>>(false);
      auto finish = [completed, done](bool ok) {
        if (!completed->exchange(true)) done(ok, -1);
      };
      pick().get(
          dht::InfoHash::get(key_text(o, k)),
          [expected, finish](const std::vector<std::shared_ptr<dht::Value>>& values) {
            for (auto& v : values)
              if (v && std::string(v->data.begin(), v->data.end()) == *expected) {
                finish(true);
                return false;  // found: stop searching
              }
            return true;
          },
          [finish](bool) { finish(false); });  // no effect when the value was found
    }, in_flight);
  };
  batch gets = get_all(ops, 64);
  batch serial = get_all(std::min<std::size_t>(ops, 200), 1);

  // Churn: stop a share of the nodes, then read everything again from the others.
  {
    std::lock_guard lock(rng_mutex);
    std::shuffle(alive.begin(), alive.end(), rng);
  }
  const auto kill = static_cast<std::size_t>(o.churn * o.nodes);
  for (std::size_t i = 0; i < kill; ++i) nodes[alive[i]]->join();
  {
    std::lock_guard lock(rng_mutex);
    alive.erase(alive.begin(), alive.begin() + static_cast<std::ptrdiff_t>(kill));
  }
  batch after = kill ? get_all(ops, 64) : batch{};
  for (auto& n : nodes) n->join();

  swarm_results r;
  r.system = "opendht";
  r.network = "udp loopback (OpenDHT " + std::string(dht::version()) + ", one DhtRunner per node)";
  r.settle_s = settle_s;
  r.joins = std::move(joins), r.puts = std::move(puts), r.gets = std::move(gets);
  r.serial = std::move(serial), r.after = std::move(after);
  r.killed = kill;
  r.rss_per_node_kib = rss_per_node_kib;
  return print_swarm(o, r, out);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  swarm_options o;
  try {
    if (std::find(args.begin(), args.end(), "--transport") != args.end())
      throw std::invalid_argument("--transport: OpenDHT runs over UDP only");
    o = parse_swarm_options(args);  // also bounds --nodes for real sockets
  } catch (const std::invalid_argument& e) {
    std::cerr << "kadnet_bench_opendht: " << e.what() << "\n" << usage;
    return 2;
  }
  o.transport = "udp";
  try {
    return run(o, std::cout);
  } catch (const std::exception& e) {
    std::cerr << "kadnet_bench_opendht: " << e.what() << "\n";
    return 1;
  }
}
