// kadnet_bench_atomic: the DHT's atomic operations on the simulated network (PROTOCOL.md 8.6).
//
//   kadnet_bench_atomic [--nodes 64] [--clients 1,8,32] [--updates 20] [--loss P]
//                       [--latency-ms 10] [--jitter-ms 5] [--seed S] [--json]
//                       [--lock-cycles 50] [--lock-clients 8] [--lock-rounds 10] [--hold-ms 100]
//
// A swarm of --nodes DHT nodes is built by joins on transports/sim and runs a minute of virtual
// time. Then, for each client count C, C clients on distinct random nodes increment one shared
// counter key (a fresh key per C) --updates times each with dht_node::update(), each client
// starting its next update when the last finished. Printed per C: updates that succeeded, the
// counter's final value read by a quorum read (it must equal C × updates: no lost update),
// update throughput (successful updates per second of virtual time), the conflict rate (the
// share of prepare rounds that did not write the client's value: another writer took the slot,
// or the round was outbid or lost), rounds (reads and prepares) and messages per update, and
// update latency (median, p99, virtual ms).
//
// Then diffs (PROTOCOL.md 8.8): one node writes a --value-kib value (default 64) and edits it
// --edits times (default 100), each edit overwriting 3 runs of 16 bytes at random places, once
// with patch() and once, on another key, with whole put()s of the same values; printed: the
// STORE bytes each sent (lookups not counted on either side), their ratio, and how many replicas
// took each patch as a diff.
//
// Then locks (PROTOCOL.md 8.9), on the same network built again from the same seed but with the
// library's default compare-and-swap settings (the counter above raises max_attempts), timed by
// benchmarks/atomic/lock_latency.hpp: one client locking and at once unlocking a key
// --lock-cycles times (median and p99 latency of lock and of unlock), then --lock-clients clients
// on distinct nodes each taking another key's lock --lock-rounds times, holding it --hold-ms
// (acquisitions per second, median and p99 wait from wanting the lock to holding it, refusals,
// give-ups). Each prints whether its lease history is valid (no two leases overlap, tokens grow).
//
// The exit status is non-zero when an update was lost, a patch not stored, a lock history is
// invalid, or a lock run did not finish.
#include <algorithm>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "benchmarks/atomic/lock_latency.hpp"
#include "benchmarks/common/number_args.hpp"
#include "benchmarks/sim/dht_swarm.hpp"
#include "benchmarks/sim/report.hpp"
#include "benchmarks/sim/swarm_build.hpp"

namespace kadnet::bench {
namespace {

using namespace std::chrono_literals;

struct options {
  std::size_t nodes = 64;
  std::vector<std::size_t> clients{1, 8, 32};
  std::size_t updates = 20;
  std::size_t value_kib = 64, edits = 100;
  lock_plan locks;
  sim_links links;
  bool json = false;
};

const char* const usage_text =
    "usage: kadnet_bench_atomic [--nodes 64] [--clients 1,8,32] [--updates 20] [--value-kib 64]\n"
    "                           [--edits 100] [--loss P] [--latency-ms 10] [--jitter-ms 5] [--seed S]\n"
    "                           [--json] [--lock-cycles 50] [--lock-clients 8] [--lock-rounds 10]\n"
    "                           [--hold-ms 100]\n";

options parse_options(int argc, char** argv) {
  options o;
  for (flag_walker args(argc, argv); args.next();) {
    const std::string& a = args.flag();
    if (o.links.take(a, args)) {
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--nodes") {
      o.nodes = parse_number(a, args.value());
      if (o.nodes < 2) throw std::invalid_argument("--nodes: at least 2");
    } else if (a == "--clients") {
      o.clients = parse_count_list(a, args.value(), 1);
    } else if (a == "--value-kib") {
      o.value_kib = parse_number(a, args.value());
      if (o.value_kib == 0) throw std::invalid_argument("--value-kib: at least 1");
    } else if (a == "--edits") {
      o.edits = parse_number(a, args.value());
      if (o.edits == 0) throw std::invalid_argument("--edits: at least 1");
    } else if (a == "--updates") {
      o.updates = parse_number(a, args.value());
      if (o.updates == 0) throw std::invalid_argument("--updates: at least 1");
    } else if (a == "--lock-cycles") {
      o.locks.cycles = parse_number(a, args.value());
      if (o.locks.cycles == 0) throw std::invalid_argument("--lock-cycles: at least 1");
    } else if (a == "--lock-clients") {
      o.locks.clients = parse_number(a, args.value());
      if (o.locks.clients == 0) throw std::invalid_argument("--lock-clients: at least 1");
    } else if (a == "--lock-rounds") {
      o.locks.rounds = parse_number(a, args.value());
      if (o.locks.rounds == 0) throw std::invalid_argument("--lock-rounds: at least 1");
    } else if (a == "--hold-ms") {
      o.locks.hold = std::chrono::milliseconds(parse_number(a, args.value()));
    } else {
      args.help_or_unknown(usage_text);
    }
  }
  o.links.check();
  for (std::size_t c : o.clients)
    if (c > o.nodes) throw std::invalid_argument("--clients: " + std::to_string(c) + " is more than --nodes");
  if (o.locks.clients > o.nodes)
    throw std::invalid_argument("--lock-clients: " + std::to_string(o.locks.clients) + " is more than --nodes");
  return o;
}

byte_vector counter_bytes(std::uint64_t n) {
  byte_vector out;
  byte_writer(out).u64(n);
  return out;
}

std::uint64_t counter_of(const byte_vector& b) {
  std::uint64_t n = 0;
  byte_reader r(b);
  if (!r.u64(n) || !r.empty()) throw std::runtime_error("the counter key holds something else");
  return n;
}

std::optional<byte_vector> increment(const std::optional<dht::versioned_value>& current) {
  return counter_bytes(current ? counter_of(current->value) + 1 : 1);
}

// `count` distinct nodes of `live`, at random.
std::vector<std::uint32_t> pick_nodes(dht_swarm& swarm, const std::vector<std::uint32_t>& live, std::size_t count) {
  std::vector<std::uint32_t> nodes = live;
  std::shuffle(nodes.begin(), nodes.end(), swarm.rng());
  nodes.resize(count);
  return nodes;
}

// What the contention of C clients measured.
struct contention {
  std::size_t clients = 0, succeeded = 0, failed = 0;
  std::uint64_t final_value = 0;
  bool final_read = false;
  double seconds = 0;  // virtual, from the first update's start to the last one's end
  std::size_t rounds = 0, reads = 0, messages = 0;
  std::vector<double> latency_ms;
};

contention contend(dht_swarm& swarm, const std::vector<std::uint32_t>& live, std::size_t clients, std::size_t updates) {
  contention c;
  c.clients = clients;
  sim::network& net = swarm.network();
  const std::vector<std::uint32_t> nodes = pick_nodes(swarm, live, clients);
  const core::node_id key = core::node_id::hash_of(as_bytes("atomic bench counter " + std::to_string(clients)));

  std::size_t running = clients;
  const sim::time_point start = net.now();
  // Each client runs its updates one after another.
  std::function<void(std::size_t, std::size_t)> next = [&](std::size_t client, std::size_t left) {
    if (left == 0) {
      --running;
      return;
    }
    const sim::time_point began = net.now();
    swarm.update(nodes[client], key, increment, [&, client, left, began](const dht::cas_outcome& r) {
      c.rounds += r.attempts;
      c.reads += r.reads;
      c.messages += r.messages;
      if (!r.ec && r.written) {
        ++c.succeeded;
        c.latency_ms.push_back(std::chrono::duration<double, std::milli>(net.now() - began).count());
      } else {
        ++c.failed;
      }
      next(client, left - 1);
    });
  };
  for (std::size_t i = 0; i < clients; ++i) next(i, updates);
  net.run_until([&] { return running == 0; }, net.now() + 24h);
  c.seconds = std::chrono::duration<double>(net.now() - start).count();

  // The counter as a majority of its replicas holds it: an update that declines.
  bool read = false;
  swarm.update(nodes[0], key, [](const std::optional<dht::versioned_value>&) { return std::optional<byte_vector>{}; },
               [&](const dht::cas_outcome& r) {
                 read = true;
                 c.final_read = !r.ec && r.value.has_value();
                 if (c.final_read) c.final_value = counter_of(*r.value);
               });
  net.run_until([&] { return read; }, net.now() + 10min);
  return c;
}

// What editing one value by diffs and by whole puts sent.
struct editing {
  std::size_t patch_bytes = 0, put_bytes = 0, edits_done = 0, puts_done = 0, by_diff = 0, by_whole = 0;
};

editing edit(dht_swarm& swarm, std::uint32_t writer, const options& o) {
  editing e;
  sim::network& net = swarm.network();
  auto& rng = swarm.rng();
  byte_vector value(o.value_kib * 1024);
  for (auto& b : value) b = static_cast<std::uint8_t>(rng());
  const core::node_id by_patch = core::node_id::hash_of(as_bytes("atomic bench patched value"));
  const core::node_id by_put = core::node_id::hash_of(as_bytes("atomic bench put value"));
  // Runs one operation to its end.
  auto await = [&](auto start) {
    bool done = false;
    start([&] { done = true; });
    net.run_until([&] { return done; }, net.now() + 10min);
  };
  for (const core::node_id& key : {by_patch, by_put})
    await([&](auto finished) { swarm.put(writer, key, value, [finished](const dht::put_outcome&) { finished(); }); });
  std::uint64_t version = 1;
  for (std::size_t i = 0; i < o.edits; ++i) {
    byte_vector next = value;
    for (int run = 0; run < 3; ++run) {
      std::size_t at = rng() % (next.size() - 16);
      for (std::size_t k = 0; k < 16; ++k) next[at + k] = static_cast<std::uint8_t>(rng());
    }
    await([&](auto finished) {
      swarm.patch(writer, by_patch, version, value, next, [&, finished](const dht::patch_outcome& r) {
        if (!r.ec) ++e.edits_done;
        e.patch_bytes += r.bytes_sent;
        e.by_diff += r.by_diff;
        e.by_whole += r.by_whole;
        finished();
      });
    });
    await([&](auto finished) {
      swarm.put(writer, by_put, next, [&, finished](const dht::put_outcome& r) {
        if (!r.ec) ++e.puts_done;
        e.put_bytes += r.bytes_sent;
        finished();
      });
    });
    value = std::move(next);
    ++version;
  }
  return e;
}

// The fields every result of this bench starts with.
figures figures_of(const options& o, const char* operation) {
  figures f;
  f.text("bench", "atomic");
  f.text("transport", "sim");
  f.text("operation", operation);
  f.number("nodes", static_cast<double>(o.nodes));
  f.number("loss_pct", 100 * o.links.loss, 1);
  return f;
}

figures to_figures(const options& o, const editing& e) {
  figures f = figures_of(o, "patch");
  f.number("value_bytes", static_cast<double>(o.value_kib * 1024));
  f.number("edits", static_cast<double>(o.edits));
  f.number("patches_stored", static_cast<double>(e.edits_done));
  f.number("puts_stored", static_cast<double>(e.puts_done));
  f.number("patch_bytes", static_cast<double>(e.patch_bytes));
  f.number("put_bytes", static_cast<double>(e.put_bytes));
  f.number("bytes_ratio", static_cast<double>(e.put_bytes) / std::max<double>(1, static_cast<double>(e.patch_bytes)), 1);
  f.number("replicas_by_diff", static_cast<double>(e.by_diff));
  f.number("replicas_by_whole", static_cast<double>(e.by_whole));
  return f;
}

figures to_figures(const options& o, const contention& c) {
  figures f = figures_of(o, "update");
  const double updates = static_cast<double>(c.succeeded + c.failed);
  f.number("clients", static_cast<double>(c.clients));
  f.number("updates", updates);
  f.number("succeeded", static_cast<double>(c.succeeded));
  f.number("final_value", static_cast<double>(c.final_value));
  f.text("no_lost_update", c.final_read && c.final_value == c.succeeded ? "yes" : "NO");
  f.number("cas_per_s", static_cast<double>(c.succeeded) / std::max(1e-9, c.seconds), 1);
  // Of the prepare rounds (every round but the reads), those that did not write the client's value.
  const double prepares = static_cast<double>(c.rounds - c.reads);
  f.number("conflict_rate", prepares == 0 ? 0 : 1.0 - static_cast<double>(c.succeeded) / prepares, 3);
  f.number("rounds_per_update", static_cast<double>(c.rounds) / std::max(1.0, updates), 2);
  f.number("messages_per_update", static_cast<double>(c.messages) / std::max(1.0, updates), 1);
  f.number("latency_median_ms", percentile(c.latency_ms, 0.5), 1);
  f.number("latency_p99_ms", percentile(c.latency_ms, 0.99), 1);
  return f;
}

figures to_figures(const options& o, const lock_plan& plan, const lock_cycles_result& r) {
  figures f = figures_of(o, "lock_uncontended");
  f.number("clients", 1);
  f.number("lease_ms", static_cast<double>(plan.lease.count()));
  f.number("cycles", static_cast<double>(r.cycles));
  f.number("acquired", static_cast<double>(r.acquired));
  f.number("released", static_cast<double>(r.released));
  f.number("failed", static_cast<double>(r.failed));
  f.number("acquire_median_ms", percentile(r.acquire_ms, 0.5), 1);
  f.number("acquire_p99_ms", percentile(r.acquire_ms, 0.99), 1);
  f.number("release_median_ms", percentile(r.release_ms, 0.5), 1);
  f.number("release_p99_ms", percentile(r.release_ms, 0.99), 1);
  f.number("messages_per_op", static_cast<double>(r.messages) / std::max<double>(1, static_cast<double>(r.operations)), 1);
  f.text("finished", r.finished ? "yes" : "NO");
  f.text("history_valid", r.violations.empty() ? "yes" : "NO");
  return f;
}

figures to_figures(const options& o, const lock_plan& plan, const lock_contention_result& r) {
  figures f = figures_of(o, "lock_contended");
  f.number("clients", static_cast<double>(r.clients));
  f.number("lease_ms", static_cast<double>(plan.lease.count()));
  f.number("hold_ms", static_cast<double>(plan.hold.count()));
  f.number("rounds", static_cast<double>(r.rounds));
  f.number("acquired", static_cast<double>(r.acquired));
  f.number("acquisitions_per_s", static_cast<double>(r.acquired) / std::max(1e-9, r.seconds), 2);
  f.number("wait_median_ms", percentile(r.wait_ms, 0.5), 1);
  f.number("wait_p99_ms", percentile(r.wait_ms, 0.99), 1);
  f.number("locks_per_acquisition", static_cast<double>(r.lock_calls) / std::max<double>(1, static_cast<double>(r.acquired)), 2);
  f.number("messages_per_acquisition", static_cast<double>(r.messages) / std::max<double>(1, static_cast<double>(r.acquired)), 1);
  f.number("refusals", static_cast<double>(r.refusals));
  f.number("failures", static_cast<double>(r.failures));
  f.number("gave_up", static_cast<double>(r.gave_up));
  f.number("max_attempts", static_cast<double>(plan.max_attempts));
  f.number("most_attempts", static_cast<double>(r.most_attempts));
  f.number("unlock_failures", static_cast<double>(r.unlock_failures));
  f.text("finished", r.finished ? "yes" : "NO");
  f.text("history_valid", r.violations.empty() ? "yes" : "NO");
  return f;
}

void print_update_row(const figures& f) {
  std::cout << std::right << std::fixed << std::setw(8) << std::setprecision(0) << *f.number_of("clients")
            << std::setw(9) << *f.number_of("succeeded") << std::setw(7) << *f.number_of("final_value") << "  "
            << std::setw(4) << f.text_of("no_lost_update") << std::setprecision(1) << std::setw(10)
            << *f.number_of("cas_per_s") << std::setprecision(3) << std::setw(10) << *f.number_of("conflict_rate")
            << std::setprecision(2) << std::setw(9) << *f.number_of("rounds_per_update") << std::setprecision(1)
            << std::setw(10) << *f.number_of("messages_per_update") << std::setw(10)
            << *f.number_of("latency_median_ms") << std::setw(10) << *f.number_of("latency_p99_ms") << "\n";
}

// "valid" or "INVALID", and whether the run was cut short.
std::string history_verdict(const figures& f) {
  return std::string(f.text_of("history_valid") == "yes" ? "valid" : "INVALID") +
         (f.text_of("finished") == "yes" ? "" : " (did not finish)");
}

void print_lock_cycles(const figures& f) {
  std::cout << std::right << std::fixed << std::setprecision(0) << "  uncontended: 1 client, "
            << *f.number_of("cycles") << " lock -> unlock cycles (unlock as soon as granted)\n"
            << "    acquired  released  failed  lock median ms  p99 ms  unlock median ms  p99 ms  msgs/op  history\n"
            << std::setw(12) << *f.number_of("acquired") << std::setw(10) << *f.number_of("released") << std::setw(8)
            << *f.number_of("failed") << std::setprecision(1) << std::setw(16) << *f.number_of("acquire_median_ms")
            << std::setw(8) << *f.number_of("acquire_p99_ms") << std::setw(18) << *f.number_of("release_median_ms")
            << std::setw(8) << *f.number_of("release_p99_ms") << std::setw(9) << *f.number_of("messages_per_op")
            << "  " << history_verdict(f) << "\n";
}

void print_lock_contention(const lock_plan& plan, const figures& f) {
  std::cout << std::right << std::fixed << std::setprecision(0) << "  contended: " << *f.number_of("clients")
            << " clients on distinct nodes, " << *f.number_of("rounds") << " grants each, held "
            << *f.number_of("hold_ms") << " ms, retry " << plan.retry_pause_min.count() << "-"
            << plan.retry_pause_max.count() << " ms after a refusal and after an unlock\n"
            << "    acquired  acq/s  locks/acq  msgs/acq  refused  failed  gave up  most rounds  wait median ms"
               "    p99 ms  history\n"
            << std::setw(12) << *f.number_of("acquired") << std::setprecision(2) << std::setw(7)
            << *f.number_of("acquisitions_per_s") << std::setw(11) << *f.number_of("locks_per_acquisition")
            << std::setprecision(0) << std::setw(10) << *f.number_of("messages_per_acquisition") << std::setw(9)
            << *f.number_of("refusals") << std::setw(8) << *f.number_of("failures") << std::setw(9)
            << *f.number_of("gave_up") << std::setw(13) << *f.number_of("most_attempts") << std::setprecision(1)
            << std::setw(16) << *f.number_of("wait_median_ms") << std::setw(10) << *f.number_of("wait_p99_ms") << "  "
            << history_verdict(f) << "\n";
}

// What breaks a lock history, on stderr (the figures only say that it is broken); the first few
// lines are enough to start from, and one bad grant can overlap every other.
void report_violations(const char* run, const std::vector<std::string>& violations) {
  constexpr std::size_t shown = 10;
  for (std::size_t i = 0; i < std::min(shown, violations.size()); ++i)
    std::cerr << "kadnet_bench_atomic: " << run << ": " << violations[i] << "\n";
  if (violations.size() > shown)
    std::cerr << "kadnet_bench_atomic: " << run << ": and " << violations.size() - shown << " more\n";
}

// A swarm of --nodes nodes joined one a millisecond and run a minute. `cas` is used only by
// operations, so the same --seed builds the same network whatever it says.
struct joined_swarm {
  std::unique_ptr<dht_swarm> swarm;
  join_tally joins;
};

joined_swarm build_swarm(const options& o, const dht::cas_config& cas) {
  dht_swarm::settings settings;
  o.links.apply(settings);
  settings.dht.cas = cas;
  joined_swarm s{std::make_unique<dht_swarm>(settings), {}};
  for (std::size_t i = 0; i < o.nodes; ++i) s.swarm->add_node();
  s.joins.joined.push_back(0);
  join_nodes(*s.swarm, 1, static_cast<std::uint32_t>(o.nodes), 1ms, s.joins);
  s.swarm->network().run_for(1min);
  return s;
}

// The counter's contention, then the diffs; true when no update was lost and every patch stored.
bool run_updates_and_diffs(const options& o) {
  dht::cas_config cas;
  // Many writers on one key lose many slots in a row before their turn: let them keep trying.
  cas.max_attempts = 1000;
  joined_swarm s = build_swarm(o, cas);
  if (!o.json) {
    std::cout << "kadnet atomic: " << o.nodes << " nodes on the simulated network, links " << o.links.latency.count()
              << " ± " << o.links.jitter.count() << " ms, loss " << 100 * o.links.loss << " %, " << o.updates
              << " updates per client\n"
              << "compare-and-swap (update: read, then prepare/accept/commit among the key's k closest)\n"
              << "  clients  written  final  exact   CAS/s    conflict  rounds/op  msgs/op  median ms  p99 ms\n";
  }
  bool all_counted = true;
  for (std::size_t clients : o.clients) {
    auto c = contend(*s.swarm, s.joins.joined, clients, o.updates);
    figures f = to_figures(o, c);
    all_counted = all_counted && f.text_of("no_lost_update") == "yes";
    if (o.json) print_json(std::cout, f);
    else print_update_row(f);
  }
  const editing e = edit(*s.swarm, s.joins.joined[1], o);
  figures f = to_figures(o, e);
  if (o.json) {
    print_json(std::cout, f);
  } else {
    std::cout << "diffs: a " << o.value_kib << " KiB value edited " << o.edits << " times (3 runs of 16 bytes each)\n"
              << "  patch: " << e.edits_done << " stored, " << e.patch_bytes << " STORE bytes (replicas by diff "
              << e.by_diff << ", whole " << e.by_whole << ")\n"
              << "  put:   " << e.puts_done << " stored, " << e.put_bytes << " STORE bytes\n"
              << "  whole puts / patches: " << std::fixed << std::setprecision(1) << *f.number_of("bytes_ratio")
              << " x (target >= 20 x)\n";
  }
  return all_counted && e.edits_done == o.edits;
}

// Lock latency, uncontended and contended, with the library's default compare-and-swap settings;
// true when both runs finished with a valid lease history.
bool run_locks(const options& o) {
  const dht::cas_config cas;
  lock_plan plan = o.locks;
  plan.max_attempts = cas.max_attempts;
  joined_swarm s = build_swarm(o, cas);
  const std::uint32_t lone = pick_nodes(*s.swarm, s.joins.joined, 1).front();
  const lock_cycles_result cycles = measure_lock_cycles(*s.swarm, lone, plan);
  const lock_contention_result contention =
      measure_lock_contention(*s.swarm, pick_nodes(*s.swarm, s.joins.joined, plan.clients), plan);
  const figures uncontended = to_figures(o, plan, cycles);
  const figures contended = to_figures(o, plan, contention);
  if (o.json) {
    print_json(std::cout, uncontended);
    print_json(std::cout, contended);
  } else {
    std::cout << "locks (lock, unlock: compare-and-swap of a lock record, PROTOCOL.md 8.9; lease "
              << plan.lease.count() << " ms; default cas settings, max_attempts " << plan.max_attempts << ")\n";
    print_lock_cycles(uncontended);
    print_lock_contention(plan, contended);
  }
  report_violations("uncontended lock history", cycles.violations);
  report_violations("contended lock history", contention.violations);
  return cycles.finished && contention.finished && cycles.violations.empty() && contention.violations.empty();
}

int run(const options& o) {
  const bool updates_ok = run_updates_and_diffs(o);
  const bool locks_ok = run_locks(o);
  return updates_ok && locks_ok ? 0 : 1;
}

}  // namespace
}  // namespace kadnet::bench

int main(int argc, char** argv) {
  using namespace kadnet::bench;
  const options o = parse_or_exit("kadnet_bench_atomic", usage_text, [&] { return parse_options(argc, argv); });
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::cerr << "kadnet_bench_atomic: " << e.what() << "\n";
    return 1;
  }
}
