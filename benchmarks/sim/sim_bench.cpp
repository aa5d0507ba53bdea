// kadnet_bench_sim: N DHT nodes on the simulated network, built by joins, then measured by
// lookups. For each N: build (every node joins through a random node that has already joined
// and bootstraps; a bootstrap that learns nothing is tried again, up to three times), PUT a set of values, then FIND_NODE random ids and GET the values from random
// nodes. Prints a table of figures against the project's targets, or with --json one JSON
// object per N.
//
//   kadnet_bench_sim [--nodes 1000,10000] [--lookups 1000] [--values 100] [--loss P]
//                    [--latency-ms 10] [--jitter-ms 5] [--join-interval-ms 1] [--seed S] [--json]
//
// Each N runs in a child process of its own, so that its memory figure starts from a clean heap.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "benchmarks/common/number_args.hpp"
#include "benchmarks/sim/dht_swarm.hpp"
#include "benchmarks/sim/report.hpp"
#include "benchmarks/sim/swarm_build.hpp"

namespace kadnet::bench {
namespace {

using namespace std::chrono_literals;
using wall_clock = std::chrono::steady_clock;  // only to time the run, never inside it

struct options {
  std::vector<std::size_t> nodes{1000, 10000};
  std::size_t lookups = 1000;
  std::size_t values = 100;
  sim_links links;
  std::chrono::milliseconds join_interval{1};  // one join starts this often
  std::chrono::milliseconds op_interval{10};   // one put or lookup starts this often
  bool json = false;
};

const char* const usage_text =
    "usage: kadnet_bench_sim [--nodes 1000,10000] [--lookups 1000] [--values 100] [--loss P]\n"
    "                        [--latency-ms 10] [--jitter-ms 5] [--join-interval-ms 1] [--seed S] [--json]\n";

options parse_options(int argc, char** argv) {
  options o;
  for (flag_walker args(argc, argv); args.next();) {
    const std::string& a = args.flag();
    auto value = [&]() -> const std::string& { return args.value(); };
    if (o.links.take(a, args)) {
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--nodes") {
      o.nodes = parse_count_list(a, value(), 2);
    } else if (a == "--lookups") {
      o.lookups = parse_number(a, value());
    } else if (a == "--values") {
      o.values = parse_number(a, value());
      if (o.values == 0) throw std::invalid_argument("--values: must be at least 1");
    } else if (a == "--join-interval-ms") {
      o.join_interval = std::chrono::milliseconds(parse_number(a, value()));
    } else {
      args.help_or_unknown(usage_text);
    }
  }
  o.links.check();
  return o;
}

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

double seconds_since(wall_clock::time_point t) {
  return std::chrono::duration<double>(wall_clock::now() - t).count();
}

// The node closest to target by brute force over every id, the asker excluded (a lookup never
// returns its own node).
struct id_words {
  std::array<std::uint64_t, 4> w;
};
id_words words_of(const core::node_id& id) {
  id_words out{};
  for (int i = 0; i < 32; ++i) out.w[i / 8] = (out.w[i / 8] << 8) | id.bytes()[i];
  return out;
}
std::uint32_t true_closest(const std::vector<id_words>& ids, const id_words& target, std::uint32_t except) {
  std::uint32_t best = except == 0 ? 1 : 0;
  std::array<std::uint64_t, 4> best_d{};
  for (int k = 0; k < 4; ++k) best_d[k] = ids[best].w[k] ^ target.w[k];
  for (std::uint32_t i = 0; i < ids.size(); ++i) {
    if (i == except) continue;
    std::array<std::uint64_t, 4> d;
    for (int k = 0; k < 4; ++k) d[k] = ids[i].w[k] ^ target.w[k];
    if (d < best_d) best_d = d, best = i;
  }
  return best;
}

struct lookup_tally {
  std::size_t ok = 0, total = 0;
  std::vector<int> rounds;
  std::size_t messages = 0;
  void add(bool success, const dht::lookup_stats& s) {
    ++total;
    if (success) ++ok;
    rounds.push_back(s.rounds);
    messages += s.messages;
  }
};

figures run_one(std::size_t n, const options& o) {
  figures f;
  f.text("bench", "sim");
  f.number("nodes", static_cast<double>(n));
  f.text("transport", "sim");
  f.number("seed", static_cast<double>(o.links.seed));
  f.number("loss", o.links.loss, 3);
  f.number("latency_ms", static_cast<double>(o.links.latency.count()));
  f.number("jitter_ms", static_cast<double>(o.links.jitter.count()));

  const std::size_t rss_before = resident_bytes();
  const auto build_start = wall_clock::now();
  dht_swarm::settings settings;
  o.links.apply(settings);
  dht_swarm swarm(settings);
  sim::network& net = swarm.network();
  auto& rng = swarm.rng();
  auto pick = [&rng](std::size_t size) { return static_cast<std::uint32_t>(rng() % size); };

  // --- build ---
  for (std::size_t i = 0; i < n; ++i) swarm.add_node();
  join_tally tally;
  tally.joined.push_back(0);
  join_nodes(swarm, 1, static_cast<std::uint32_t>(n), o.join_interval, tally);
  const std::size_t joins_failed = tally.failed, join_retries = tally.retries;
  const double build_s = seconds_since(build_start);
  const double build_virtual_s = std::chrono::duration<double>(net.now() - sim::epoch).count();
  const std::size_t rss_after = resident_bytes();
  std::size_t contacts = 0, replacements = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    contacts += swarm.dht(i).table().size();
    for (const auto& b : swarm.dht(i).table().buckets()) replacements += b.replacements;
  }

  f.number("build_s", build_s, 2);
  f.number("build_virtual_s", build_virtual_s, 1);
  f.number("joins_failed", static_cast<double>(joins_failed));
  f.number("join_retries", static_cast<double>(join_retries));
  f.number("kib_per_node", static_cast<double>(rss_after - std::min(rss_after, rss_before)) / 1024.0 / static_cast<double>(n), 1);
  f.number("rss_mib", static_cast<double>(rss_after) / (1024.0 * 1024.0), 0);
  f.number("contacts_per_node", static_cast<double>(contacts) / static_cast<double>(n), 1);
  f.number("replacements_per_node", static_cast<double>(replacements) / static_cast<double>(n), 1);
  f.number("sessions_per_node", 2.0 * static_cast<double>(swarm.stats().sessions) / static_cast<double>(n), 1);

  // --- puts ---
  const auto lookup_start = wall_clock::now();
  auto key_of = [](std::size_t k) {
    const std::string text = "kadnet sim bench value " + std::to_string(k);
    return core::node_id::hash_of(as_bytes(text));
  };
  auto value_of = [](std::size_t k) {
    const std::string text = "value " + std::to_string(k);
    return byte_vector(text.begin(), text.end());
  };
  std::size_t puts_ok = 0;
  run_phase(swarm, o.values, o.op_interval, [&](std::size_t k, auto done) {
    swarm.put(pick(n), key_of(k), value_of(k), [&, done](const dht::put_outcome& r) {
      if (!r.ec) ++puts_ok;
      done();
    });
  });

  // --- lookups: FIND_NODE random ids, GET the values ---
  struct find_record {
    std::uint32_t asker;
    core::node_id target;
    std::optional<core::node_id> first;
    dht::lookup_stats stats;
  };
  std::vector<find_record> finds(o.lookups);
  run_phase(swarm, o.lookups, o.op_interval, [&](std::size_t j, auto done) {
    core::node_id::bytes_type target;
    for (auto& b : target) b = static_cast<std::uint8_t>(rng());
    finds[j].asker = pick(n);
    finds[j].target = core::node_id(target);
    swarm.find_node(finds[j].asker, finds[j].target, [&, j, done](const dht::find_node_result& r) {
      if (!r.closest.empty()) finds[j].first = r.closest.front().id;
      finds[j].stats = r.stats;
      done();
    });
  });
  lookup_tally find_tally, get_tally;
  run_phase(swarm, o.lookups, o.op_interval, [&](std::size_t, auto done) {
    const std::size_t k = pick(o.values);
    swarm.get(pick(n), key_of(k), [&, k, done](const dht::get_result& r) {
      get_tally.add(!r.ec && r.value && r.value->value == value_of(k), r.stats);
      done();
    });
  });
  const double lookup_s = seconds_since(lookup_start);

  std::vector<id_words> ids(n);
  for (std::uint32_t i = 0; i < n; ++i) ids[i] = words_of(swarm.id(i));
  for (const find_record& r : finds) {
    const bool ok = r.first && *r.first == swarm.id(true_closest(ids, words_of(r.target), r.asker));
    find_tally.add(ok, r.stats);
  }
  lookup_tally all = find_tally;
  all.ok += get_tally.ok;
  all.total += get_tally.total;
  all.messages += get_tally.messages;
  all.rounds.insert(all.rounds.end(), get_tally.rounds.begin(), get_tally.rounds.end());

  auto pct = [](std::size_t ok, std::size_t total) { return total ? 100.0 * static_cast<double>(ok) / static_cast<double>(total) : 0.0; };
  auto per = [](std::size_t x, std::size_t total) { return total ? static_cast<double>(x) / static_cast<double>(total) : 0.0; };
  f.number("lookups", static_cast<double>(all.total));
  f.number("success_pct", pct(all.ok, all.total), 2);
  f.number("rounds_median", percentile(all.rounds, 0.5));
  f.number("rounds_p99", percentile(all.rounds, 0.99));
  f.number("messages_per_lookup", per(all.messages, all.total), 1);
  f.number("find_node_success_pct", pct(find_tally.ok, find_tally.total), 2);
  f.number("find_node_rounds_median", percentile(find_tally.rounds, 0.5));
  f.number("find_node_rounds_p99", percentile(find_tally.rounds, 0.99));
  f.number("find_node_messages", per(find_tally.messages, find_tally.total), 1);
  f.number("get_success_pct", pct(get_tally.ok, get_tally.total), 2);
  f.number("get_rounds_median", percentile(get_tally.rounds, 0.5));
  f.number("get_rounds_p99", percentile(get_tally.rounds, 0.99));
  f.number("get_messages", per(get_tally.messages, get_tally.total), 1);
  f.number("puts", static_cast<double>(o.values));
  f.number("put_success_pct", pct(puts_ok, o.values), 2);
  f.number("lookup_phase_s", lookup_s, 2);
  f.number("virtual_s", std::chrono::duration<double>(net.now() - sim::epoch).count(), 1);
  const auto& c = net.counters();
  f.number("datagrams_sent", static_cast<double>(c.sent));
  f.number("datagrams_lost", static_cast<double>(c.lost));
  f.number("request_timeouts", static_cast<double>(swarm.stats().timeouts));
  // Same seed and flags, same trace: the run is reproducible to the datagram.
  f.text("trace", to_hex(byte_span(net.trace_hash()).first(8)));
  return f;
}

int run(std::size_t n, const options& o) {
  figures f;
  try {
    f = run_one(n, o);
  } catch (const std::exception& e) {
    std::cerr << "kadnet_bench_sim: " << n << " nodes: " << e.what() << "\n";
    return 1;
  }
  if (o.json) print_json(std::cout, f);
  else print_table(std::cout, f);
  std::cout.flush();
  return 0;
}

}  // namespace
}  // namespace kadnet::bench

int main(int argc, char** argv) {
  using namespace kadnet::bench;
  const options o = parse_or_exit("kadnet_bench_sim", usage_text, [&] { return parse_options(argc, argv); });
  if (o.nodes.size() == 1) return run(o.nodes.front(), o);
  int status = 0;
  for (std::size_t n : o.nodes) {
    std::cout.flush();
    const pid_t child = fork();
    if (child < 0) {
      std::perror("kadnet_bench_sim: fork");
      return 1;
    }
    if (child == 0) std::_Exit(run(n, o));
    int child_status = 0;
    waitpid(child, &child_status, 0);
    if (!WIFEXITED(child_status) || WEXITSTATUS(child_status) != 0) {
      std::cerr << "kadnet_bench_sim: the run with " << n << " nodes failed\n";
      status = 1;
    }
  }
  return status;
}
