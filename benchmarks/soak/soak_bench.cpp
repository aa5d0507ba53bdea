// kadnet_bench_soak: does a node's memory stay bounded over hours of traffic and churn?
//
// Full nodes on the simulated network (transports/sim/swarm: engines, sealed datagram sessions,
// DHT with an in-memory store) run for hours of virtual time. Every virtual minute random live
// nodes put fresh values (a 20-minute TTL, so the store reaches a steady size), get recent ones,
// read-modify-write one shared counter (cas) and take and release a lock; every 10 minutes a
// share of the live nodes crashes and as many dead ones restart and rejoin. Every half hour the
// program reads glibc's bytes in use (mallinfo2: live blocks only) and prints them per live node
// with the node's sessions, contacts and values. Anything kept per peer, per value, per request
// or per shout that is never let go shows as a heap that keeps growing while those counts level.
//
//   kadnet_bench_soak [--nodes N] [--hours H] [--churn F] [--seed S] [--json]
//
// Verdict: the largest heap per live node sampled in the last hour against the largest in the
// second (the store and the tables have filled by then; the largest, because the samples at the
// full hour meet every node's hourly replication round): bounded when at most 1.25 times. The exit
// status is 0 when bounded, 1 when not, 2 for bad arguments. The counter is read back by a quorum
// read and compared with the updates reported written: without churn it must be exact (else exit
// 1); with churn it may be off, which compare-and-swap does not guarantee against (its replica
// set changes: PROTOCOL.md 8.7), so it is reported, not judged.
#include <malloc.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kadnet/core/bytes.hpp"
#include "kadnet/transports/sim/swarm.hpp"

namespace {

using namespace std::chrono_literals;
using kadnet::byte_vector;
using kadnet::core::node_id;

std::size_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;  // small blocks in use, and blocks of their own (mmap)
}

struct options {
  std::size_t nodes = 100;
  double hours = 6;
  double churn = 0.05;  // share of the live nodes that crash every 10 minutes
  std::uint64_t seed = 1;
  bool json = false;
};

int usage(const std::string& problem) {
  std::fprintf(stderr, "kadnet_bench_soak: %s\nusage: kadnet_bench_soak [--nodes N (>= 8)] [--hours H (>= 3)] "
                       "[--churn F (0..0.5)] [--seed S] [--json]\n",
               problem.c_str());
  return 2;
}

std::optional<options> parse(int argc, char** argv, std::string& problem) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      o.json = true;
      continue;
    }
    if (i + 1 >= argc) {
      problem = "missing value for " + arg;
      return std::nullopt;
    }
    const char* text = argv[++i];
    char* end = nullptr;
    const double value = std::strtod(text, &end);
    if (*end != '\0' || end == text) {
      problem = arg + ": '" + text + "' is not a number";
      return std::nullopt;
    }
    if (arg == "--nodes" && value >= 8 && value <= 100000) o.nodes = static_cast<std::size_t>(value);
    else if (arg == "--hours" && value >= 3 && value <= 1000) o.hours = value;
    else if (arg == "--churn" && value >= 0 && value <= 0.5) o.churn = value;
    else if (arg == "--seed" && value >= 0) o.seed = static_cast<std::uint64_t>(value);
    else {
      problem = "bad or out-of-range argument " + arg + " " + text;
      return std::nullopt;
    }
  }
  return o;
}

node_id key_of(std::uint64_t n) {
  std::array<std::uint8_t, 32> bytes{};
  for (int b = 0; b < 8; ++b) bytes[static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(n >> (8 * b));
  bytes[31] = 0x5a;  // apart from the counter's and the lock's keys
  return node_id(bytes);
}

struct sample {
  double hour;
  std::size_t live;
  double heap_per_node;  // bytes
  double sessions, contacts, values;  // per live node
};

struct tally {
  std::size_t puts = 0, puts_ok = 0, gets = 0, gets_found = 0;
  std::size_t updates = 0, updates_ok = 0, updates_maybe = 0, locks = 0, locks_ok = 0, unlocks_ok = 0;
  std::size_t killed = 0, restarted = 0, joins_failed = 0;
};

class soak {
 public:
  explicit soak(const options& o) : o_(o), swarm_(settings_of(o)), rng_(o.seed ^ 0x50a4ULL) {}

  int run() {
    swarm_.add_nodes(o_.nodes);
    const auto joined = swarm_.join_all(kadnet::sim::join_via::random_earlier);
    if (!o_.json)
      std::printf("kadnet_bench_soak: %zu nodes on the simulated network (20 ms +- 5 ms links), seed %llu, "
                  "%.1f virtual hours, %.0f %% churn every 10 minutes\n  joins %zu ok, %zu failed\n",
                  o_.nodes, static_cast<unsigned long long>(o_.seed), o_.hours, o_.churn * 100, joined.ok,
                  joined.failed);
    const auto minutes = static_cast<std::size_t>(o_.hours * 60);
    if (!o_.json)
      std::printf("  %6s %5s %14s %9s %9s %9s  %s\n", "hour", "live", "heap per node", "sessions", "contacts", "values",
                  "(datagrams and timers in flight)");
    for (std::size_t minute = 1; minute <= minutes; ++minute) {
      start_minute(minute);
      swarm_.run_for(1min);
      if (minute % 10 == 0) churn();
      if (minute % 30 == 0) take_sample(static_cast<double>(minute) / 60);
    }
    // Let the last operations end, then check the counter: every update that reported success
    // is in it exactly once.
    swarm_.run_for(2min);
    return report();
  }

 private:
  static kadnet::sim::swarm_settings settings_of(const options& o) {
    kadnet::sim::swarm_settings s;
    s.seed = o.seed;
    s.link = kadnet::sim::link_config{.latency = 20ms, .jitter = 5ms};
    s.node.request_timeout = 2000ms;
    return s;
  }

  std::size_t random_live() {
    for (;;) {
      std::size_t i = std::uniform_int_distribution<std::size_t>(0, swarm_.size() - 1)(rng_);
      if (swarm_.alive(i)) return i;
    }
  }

  void start_minute(std::size_t minute) {
    const std::size_t per_minute = std::max<std::size_t>(o_.nodes / 4, 4);
    for (std::size_t p = 0; p < per_minute; ++p) {
      const std::uint64_t n = next_key_++;
      byte_vector value(200, static_cast<std::uint8_t>(n));
      kadnet::dht::put_options put;
      put.ttl = std::chrono::minutes(20);
      ++t_.puts;
      swarm_.put(random_live(), key_of(n), std::move(value),
                 [this, n, minute](const kadnet::dht::put_outcome& r) {
                   if (r.ec) return;
                   ++t_.puts_ok;
                   recent_.push_back({n, minute});
                 },
                 put);
    }
    while (!recent_.empty() && recent_.front().minute + 10 < minute) recent_.pop_front();
    for (std::size_t g = 0; g < per_minute && !recent_.empty(); ++g) {
      const auto& k = recent_[std::uniform_int_distribution<std::size_t>(0, recent_.size() - 1)(rng_)];
      ++t_.gets;
      swarm_.get(random_live(), key_of(k.n), [this](const kadnet::dht::get_result& r) {
        if (!r.ec && r.value) ++t_.gets_found;
      });
    }
    ++t_.updates;
    swarm_.update(random_live(), counter_key(), increment, [this](const kadnet::dht::cas_outcome& r) {
      if (!r.ec && r.written) ++t_.updates_ok;
      else if (r.maybe_written) ++t_.updates_maybe;  // no majority answered after it was sent
    });
    const std::size_t holder = random_live();
    ++t_.locks;
    swarm_.lock(holder, lock_key(), 30s, [this, holder](const kadnet::dht::lock_outcome& r) {
      if (r.ec) return;
      ++t_.locks_ok;
      swarm_.unlock(holder, lock_key(), r.token, [this](const kadnet::dht::lock_outcome& u) {
        if (!u.ec) ++t_.unlocks_ok;
      });
    });
  }

  static std::optional<byte_vector> increment(const std::optional<kadnet::dht::versioned_value>& current) {
    std::uint64_t count = 0;
    if (current && current->value.size() == 8) std::memcpy(&count, current->value.data(), 8);
    ++count;
    byte_vector out(8);
    std::memcpy(out.data(), &count, 8);
    return out;
  }

  static node_id counter_key() { return key_of(0xc0c0c0c0ULL); }
  static node_id lock_key() { return key_of(0x10c410c4ULL); }

  void churn() {
    std::vector<std::size_t> live, dead;
    for (std::size_t i = 0; i < swarm_.size(); ++i) (swarm_.alive(i) ? live : dead).push_back(i);
    const auto count = static_cast<std::size_t>(o_.churn * static_cast<double>(live.size()));
    std::shuffle(live.begin(), live.end(), rng_);
    std::shuffle(dead.begin(), dead.end(), rng_);
    // Restart before killing, so that a node never comes straight back in the same round.
    for (std::size_t r = 0; r < count && r < dead.size(); ++r) {
      swarm_.restart(dead[r]);
      ++t_.restarted;
      swarm_.join(dead[r], live[count + r % (live.size() - count)], [this](const kadnet::dht::find_node_result& j) {
        if (j.ec) ++t_.joins_failed;
      });
    }
    for (std::size_t k = 0; k < count; ++k) {
      swarm_.kill(live[k]);
      ++t_.killed;
    }
  }

  void take_sample(double hour) {
    sample s{hour, 0, 0, 0, 0, 0};
    for (std::size_t i = 0; i < swarm_.size(); ++i) {
      if (!swarm_.alive(i)) continue;
      const auto st = swarm_.stats(i);
      ++s.live;
      s.sessions += static_cast<double>(st.sessions);
      s.contacts += static_cast<double>(st.contacts);
      s.values += static_cast<double>(st.values);
    }
    const double live = static_cast<double>(s.live);
    s.heap_per_node = static_cast<double>(heap_in_use()) / live;
    s.sessions /= live;
    s.contacts /= live;
    s.values /= live;
    samples_.push_back(s);
    if (o_.json)
      std::printf("{\"bench\":\"soak\",\"nodes\":%zu,\"hour\":%.1f,\"live\":%zu,\"heap_per_node_KiB\":%.2f,"
                  "\"sessions\":%.1f,\"contacts\":%.1f,\"values\":%.1f,\"events\":%zu}\n",
                  o_.nodes, s.hour, s.live, s.heap_per_node / 1024, s.sessions, s.contacts, s.values,
                  swarm_.net().pending_events());
    else
      std::printf("  %6.1f %5zu %10.2f KiB %9.1f %9.1f %9.1f  %zu\n", s.hour, s.live, s.heap_per_node / 1024,
                  s.sessions, s.contacts, s.values, swarm_.net().pending_events());
    std::fflush(stdout);
  }

  int report() {
    // The largest sample of the second hour against the largest of the last.
    const double end = samples_.back().hour;
    const sample* base = nullptr;
    const sample* last = nullptr;
    for (const auto& s : samples_) {
      if (s.hour > 1.0 && s.hour <= 2.0 && (!base || s.heap_per_node > base->heap_per_node)) base = &s;
      if (s.hour > end - 1.0 && (!last || s.heap_per_node > last->heap_per_node)) last = &s;
    }
    const double growth = last->heap_per_node / base->heap_per_node;
    const bool bounded = growth <= 1.25;

    // Read by consensus (an update that declines to write: a majority of the replicas says what the
    // key holds), not by a get, which may meet a replica that has not caught up.
    std::optional<std::uint64_t> counted;
    bool read_done = false;
    auto decline = [](const std::optional<kadnet::dht::versioned_value>&) -> std::optional<byte_vector> {
      return std::nullopt;
    };
    swarm_.update(random_live(), counter_key(), decline, [&](const kadnet::dht::cas_outcome& r) {
      read_done = true;
      if (!r.ec && r.value && r.value->size() == 8) {
        std::uint64_t c = 0;
        std::memcpy(&c, r.value->data(), 8);
        counted = c;
      }
    });
    swarm_.run_until([&] { return read_done; }, 1min);
    // Every update reported written is in the counter once; one that may have been is at most once.
    const bool counter_exact = counted && *counted >= t_.updates_ok && *counted <= t_.updates_ok + t_.updates_maybe;

    auto pct = [](std::size_t a, std::size_t b) { return b ? 100.0 * static_cast<double>(a) / static_cast<double>(b) : 0.0; };
    if (o_.json) {
      std::printf("{\"bench\":\"soak\",\"nodes\":%zu,\"hours\":%.1f,\"heap_growth\":%.3f,\"bounded\":%s,"
                  "\"puts_ok_pct\":%.2f,\"gets_found_pct\":%.2f,\"updates_ok\":%zu,\"updates_maybe\":%zu,\"counter\":%llu,"
                  "\"counter_exact\":%s,\"locks_ok\":%zu,\"unlocks_ok\":%zu,\"killed\":%zu,\"restarted\":%zu,"
                  "\"joins_failed\":%zu}\n",
                  o_.nodes, o_.hours, growth, bounded ? "true" : "false", pct(t_.puts_ok, t_.puts),
                  pct(t_.gets_found, t_.gets), t_.updates_ok, t_.updates_maybe, static_cast<unsigned long long>(counted.value_or(0)),
                  counter_exact ? "true" : "false", t_.locks_ok, t_.unlocks_ok, t_.killed, t_.restarted,
                  t_.joins_failed);
    } else {
      std::printf("  puts                %zu, %.2f %% stored\n", t_.puts, pct(t_.puts_ok, t_.puts));
      std::printf("  gets                %zu, %.2f %% found (keys put in the last 10 minutes)\n", t_.gets,
                  pct(t_.gets_found, t_.gets));
      std::printf("  counter             %zu updates reported written (%zu more maybe), %s read back (%s)\n",
                  t_.updates_ok, t_.updates_maybe, counted ? std::to_string(*counted).c_str() : "nothing",
                  counter_exact ? "exact" : o_.churn > 0 ? "not exact: churn, PROTOCOL.md 8.7" : "NOT exact");
      std::printf("  locks               %zu taken of %zu tried, %zu released\n", t_.locks_ok, t_.locks,
                  t_.unlocks_ok);
      std::printf("  churn               %zu crashed, %zu restarted (%zu rejoins failed)\n", t_.killed, t_.restarted,
                  t_.joins_failed);
      std::printf("  heap per live node  largest of hour 2 %.2f KiB (at %.1f), of the last hour %.2f KiB (at %.1f): "
                  "x%.3f, %s (bound x1.25)\n",
                  base->heap_per_node / 1024, base->hour, last->heap_per_node / 1024, last->hour, growth,
                  bounded ? "bounded" : "GROWING");
    }
    return bounded && (counter_exact || o_.churn > 0) ? 0 : 1;
  }

  struct recent_key {
    std::uint64_t n;
    std::size_t minute;
  };

  options o_;
  kadnet::sim::swarm swarm_;
  std::mt19937_64 rng_;
  std::uint64_t next_key_ = 1;
  std::deque<recent_key> recent_;
  std::vector<sample> samples_;
  tally t_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string problem;
  auto o = parse(argc, argv, problem);
  if (!o) return usage(problem);
  return soak(*o).run();
}
