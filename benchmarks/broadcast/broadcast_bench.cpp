// kadnet_bench_broadcast: SHOUT on the simulated network, kadnet's tree (dht/broadcast.hpp)
// against naive flooding (every node forwards to every contact once), in the same run.
//
//   kadnet_bench_broadcast [--nodes 1000,10000] [--transport sim] [--shouts 3] [--payload 1024]
//                          [--churn 0.10] [--loss 0.05] [--latency-ms 10] [--jitter-ms 5]
//                          [--settle-s 7200] [--seed S] [--only tree|flood] [--json]
//
// For each N and each algorithm, one swarm of N DHT nodes is built by joins (the same seed gives
// both algorithms the same swarm) and runs for --settle-s of virtual time (default two hours,
// two bucket-refresh intervals: the steady state of a network that has been up a while), then
// shouts of `payload` bytes go out from random live nodes, one at a time, in four scenarios in
// this order:
//   steady      no churn, no loss
//   loss        every datagram lost with probability --loss
//   churn       --churn of the live nodes die silently (tables still list them) and as many
//               fresh nodes join, before each shout
//   churn+loss  both
// Per scenario it prints coverage (% of the live nodes but the origin that got the shout),
// payload copies per node (SHOUT requests that reached a live node), control messages per node
// (the ACKs and NACKs answering SHOUTs) and their bytes, all bytes per node, hops (median, max)
// and the virtual time until the last node got it. Bytes are wire messages as encoded
// (PROTOCOL.md 5); sealing adds the same few bytes per datagram to both algorithms.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
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

struct options {
  std::vector<std::size_t> nodes{1000, 10000};
  std::size_t shouts = 3;
  std::size_t payload = 1024;
  double churn = 0.10;
  double loss = 0.05;  // the loss scenarios' (the swarm is built without loss)
  sim_links links;
  bool json = false;
  bool tree = true, flood = true;  // --only picks one
  // Virtual time the swarm runs between the joins and the shouts: two bucket-refresh intervals,
  // so every bucket has been refreshed by a lookup at least once, as in a network that has been
  // up a while.
  std::chrono::seconds settle{2 * std::chrono::duration_cast<std::chrono::seconds>(dht::default_refresh_interval)};
};

const char* const usage_text =
    "usage: kadnet_bench_broadcast [--nodes 1000,10000] [--transport sim] [--shouts 3] [--payload 1024]\n"
    "                              [--churn 0.10] [--loss 0.05] [--latency-ms 10] [--jitter-ms 5]\n"
    "                              [--settle-s 7200] [--seed S] [--only tree|flood] [--json]\n";

options parse_options(int argc, char** argv) {
  options o;
  for (flag_walker args(argc, argv); args.next();) {
    const std::string& a = args.flag();
    auto value = [&]() -> const std::string& { return args.value(); };
    if (a == "--loss") {  // the loss scenarios' loss, not the links' (sim_links would take it)
      o.loss = parse_fraction(a, value());
    } else if (o.links.take(a, args)) {
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--nodes") {
      o.nodes = parse_count_list(a, value(), 3);
    } else if (a == "--transport") {
      if (value() != "sim") throw std::invalid_argument("--transport: only 'sim' is measured by this benchmark");
    } else if (a == "--only") {
      const std::string& v = value();
      if (v != "tree" && v != "flood") throw std::invalid_argument("--only: '" + v + "' is neither tree nor flood");
      o.tree = v == "tree";
      o.flood = v == "flood";
    } else if (a == "--shouts") {
      o.shouts = parse_number(a, value());
      if (o.shouts == 0) throw std::invalid_argument("--shouts: must be at least 1");
    } else if (a == "--payload") {
      o.payload = parse_number(a, value());
    } else if (a == "--settle-s") {
      o.settle = std::chrono::seconds(parse_number(a, value()));
    } else if (a == "--churn") {
      o.churn = parse_fraction(a, value());
    } else {
      args.help_or_unknown(usage_text);
    }
  }
  o.links.check();
  return o;
}

struct scenario {
  std::string name;
  double churn;
  double loss;
};

// What one scenario measured, summed over its shouts.
struct tally {
  double coverage_sum = 0, coverage_min = 100;
  double copies = 0, control = 0, control_bytes = 0, bytes = 0;  // per live node, summed over shouts
  std::vector<int> hops;
  double full_ms_sum = 0, full_ms_max = 0;
  std::size_t shouts = 0;
};

class broadcast_run {
 public:
  broadcast_run(std::size_t n, bool flood, const options& o) : o_(o) {
    dht_swarm::settings settings;
    o.links.apply(settings);
    settings.link.loss = 0;  // loss comes with the scenarios
    settings.dht.broadcast.flood = flood;
    // One origin shouts many times in a row here; the default rate limit would refuse it.
    settings.dht.broadcast.origin_burst = 1e9;
    swarm_ = std::make_unique<dht_swarm>(settings);
    for (std::size_t i = 0; i < n; ++i) swarm_->add_node();
    joins_.joined.push_back(0);
    join_nodes(*swarm_, 1, static_cast<std::uint32_t>(n), 1ms, joins_);
    // Steady state: the joins' follow-ups (PROTOCOL.md 8.3) and every bucket's refresh have run.
    swarm_->network().run_for(o.settle);
    swarm_->on_delivery([this](std::uint32_t node, const dht::shout_delivery& d) { delivered(node, d); });
  }

  tally run(const scenario& sc) {
    tally t;
    sim::network& net = swarm_->network();
    sim::link_config link = net.default_link();
    link.loss = sc.loss;
    net.set_default_link(link);
    for (std::size_t s = 0; s < o_.shouts; ++s) {
      if (sc.churn > 0) churn(sc.churn);
      shout_once(t);
    }
    link.loss = 0;
    net.set_default_link(link);
    return t;
  }

  const join_tally& joins() const { return joins_; }

 private:
  // Kills `fraction` of the live nodes and joins as many new ones.
  void churn(double fraction) {
    auto& rng = swarm_->rng();
    std::vector<std::uint32_t> live;
    for (std::uint32_t i : joins_.joined)
      if (swarm_->alive(i)) live.push_back(i);
    const auto victims = static_cast<std::size_t>(fraction * static_cast<double>(live.size()));
    std::shuffle(live.begin(), live.end(), rng);
    for (std::size_t v = 0; v < victims; ++v) swarm_->kill(live[v]);
    join_tally fresh;
    fresh.joined.assign(live.begin() + static_cast<std::ptrdiff_t>(victims), live.end());
    const auto first = static_cast<std::uint32_t>(swarm_->size());
    for (std::size_t v = 0; v < victims; ++v) swarm_->add_node();
    join_nodes(*swarm_, first, static_cast<std::uint32_t>(swarm_->size()), 1ms, fresh);
    joins_.joined = std::move(fresh.joined);
  }

  void shout_once(tally& t) {
    sim::network& net = swarm_->network();
    auto& rng = swarm_->rng();
    std::vector<std::uint32_t> live;
    for (std::uint32_t i : joins_.joined)
      if (swarm_->alive(i)) live.push_back(i);
    const std::uint32_t origin = live[rng() % live.size()];
    byte_vector payload(o_.payload);
    for (auto& b : payload) b = static_cast<std::uint8_t>(rng());

    got_.assign(swarm_->size(), false);
    received_ = 0;
    current_.reset();
    last_delivery_ = start_ = net.now();
    hops_.clear();
    const auto before = swarm_->stats();
    const std::size_t audience = live.size() - 1;  // every live node but the origin

    bool origin_done = false;
    shout_origin_ = swarm_->id(origin);
    swarm_->shout(origin, std::move(payload), [&](const dht::shout_outcome& r) {
      origin_done = true;
      current_ = r.sequence;
    });
    // Every live node got it, or nothing more can come (timeouts and repairs included).
    net.run_until([&] { return origin_done && received_ >= audience; }, net.now() + 120s);
    net.run_for(5s);  // late duplicates still count as copies

    const auto after = swarm_->stats();
    std::size_t covered = 0;
    for (std::uint32_t i : live)
      if (i != origin && got_[i]) ++covered;
    const double per = 1.0 / static_cast<double>(audience);
    const double coverage = 100.0 * static_cast<double>(covered) * per;
    t.coverage_sum += coverage;
    t.coverage_min = std::min(t.coverage_min, coverage);
    t.copies += static_cast<double>(after.shouts_received - before.shouts_received) * per;
    t.control += static_cast<double>(after.shout_replies - before.shout_replies) * per;
    t.control_bytes += static_cast<double>(after.shout_reply_bytes - before.shout_reply_bytes) * per;
    t.bytes += static_cast<double>(after.shout_bytes - before.shout_bytes + after.shout_reply_bytes -
                                   before.shout_reply_bytes) * per;
    t.hops.insert(t.hops.end(), hops_.begin(), hops_.end());
    const double full_ms = std::chrono::duration<double, std::milli>(last_delivery_ - start_).count();
    t.full_ms_sum += full_ms;
    t.full_ms_max = std::max(t.full_ms_max, full_ms);
    ++t.shouts;
  }

  void delivered(std::uint32_t node, const dht::shout_delivery& d) {
    // Only this shout counts: its origin, and its sequence once the origin has reported it.
    if (d.origin != shout_origin_ || (current_ && d.sequence != *current_)) return;
    if (node >= got_.size() || got_[node]) return;
    got_[node] = true;
    ++received_;
    hops_.push_back(d.hops + 1);  // hops counts forwards; the origin's send is the first hop
    last_delivery_ = swarm_->network().now();
  }

  const options& o_;
  std::unique_ptr<dht_swarm> swarm_;
  join_tally joins_;
  std::vector<bool> got_;
  std::size_t received_ = 0;
  std::optional<std::uint64_t> current_;
  core::node_id shout_origin_;
  std::vector<int> hops_;
  sim::time_point start_{}, last_delivery_{};
};

figures to_figures(std::size_t n, const char* algorithm, const scenario& sc, const tally& t, const options& o) {
  figures f;
  const double shouts = static_cast<double>(t.shouts);
  f.text("bench", "broadcast");
  f.text("algorithm", algorithm);
  f.number("nodes", static_cast<double>(n));
  f.text("transport", "sim");
  f.text("scenario", sc.name);
  f.number("churn_pct", 100 * sc.churn, 1);
  f.number("loss_pct", 100 * sc.loss, 1);
  f.number("payload_bytes", static_cast<double>(o.payload));
  f.number("shouts", shouts);
  f.number("coverage_pct", t.coverage_sum / shouts, 3);
  f.number("coverage_min_pct", t.coverage_min, 3);
  f.number("payload_per_node", t.copies / shouts, 3);
  f.number("control_per_node", t.control / shouts, 3);
  f.number("control_bytes_per_node", t.control_bytes / shouts, 1);
  f.number("bytes_per_node", t.bytes / shouts, 1);
  f.number("hops_median", percentile(t.hops, 0.5));
  f.number("hops_max", percentile(t.hops, 1.0));
  f.number("full_coverage_ms", t.full_ms_sum / shouts, 1);
  f.number("full_coverage_max_ms", t.full_ms_max, 1);
  return f;
}

void print(const figures& f, bool json) {
  if (json) {
    print_json(std::cout, f);
    return;
  }
  std::cout << "  " << std::left << std::setw(6) << f.text_of("algorithm") << std::setw(11) << f.text_of("scenario")
            << std::right << std::fixed << std::setprecision(3) << std::setw(9) << *f.number_of("coverage_pct") << "%"
            << std::setprecision(2) << std::setw(10) << *f.number_of("payload_per_node") << std::setw(10)
            << *f.number_of("control_per_node") << std::setprecision(0) << std::setw(12)
            << *f.number_of("bytes_per_node") << std::setw(6) << *f.number_of("hops_median") << std::setw(6)
            << *f.number_of("hops_max") << std::setprecision(1) << std::setw(12) << *f.number_of("full_coverage_ms");
  if (auto r = f.number_of("bytes_ratio_vs_flood")) std::cout << std::setprecision(3) << std::setw(9) << *r;
  if (auto r = f.number_of("time_ratio_vs_flood")) std::cout << std::setprecision(2) << std::setw(8) << *r;
  std::cout << "\n";
}

int run(std::size_t n, const options& o) {
  const std::vector<scenario> scenarios = {
      {"steady", 0, 0}, {"loss", 0, o.loss}, {"churn", o.churn, 0}, {"churn+loss", o.churn, o.loss}};
  std::vector<figures> tree, flood;
  for (bool flooding : {false, true}) {
    if (!(flooding ? o.flood : o.tree)) continue;
    broadcast_run r(n, flooding, o);
    if (r.joins().failed > 0)
      std::cerr << "kadnet_bench_broadcast: " << r.joins().failed << " of " << n << " joins failed\n";
    for (const scenario& sc : scenarios)
      (flooding ? flood : tree).push_back(to_figures(n, flooding ? "flood" : "tree", sc, r.run(sc), o));
  }
  // The tree against flooding, scenario by scenario: bytes on the wire and time to full coverage.
  for (std::size_t i = 0; i < std::min(tree.size(), flood.size()); ++i) {
    tree[i].number("bytes_ratio_vs_flood", *tree[i].number_of("bytes_per_node") / *flood[i].number_of("bytes_per_node"), 4);
    tree[i].number("time_ratio_vs_flood",
                   *tree[i].number_of("full_coverage_ms") / std::max(1e-9, *flood[i].number_of("full_coverage_ms")), 3);
  }
  if (!o.json) {
    std::cout << "kadnet broadcast: " << n << " nodes on the simulated network, links " << o.links.latency.count() << " ± "
              << o.links.jitter.count() << " ms, " << o.payload << "-byte shouts, " << o.shouts << " per scenario\n"
              << "  " << std::left << std::setw(6) << "algo" << std::setw(11) << "scenario" << std::right
              << std::setw(10) << "coverage" << std::setw(10) << "payload/n" << std::setw(10) << "control/n"
              << std::setw(12) << "bytes/node" << std::setw(6) << "hops" << std::setw(6) << "max" << std::setw(12)
              << "full ms" << std::setw(9) << "bytes/fl" << std::setw(8) << "time/fl" << "\n";
  }
  for (const auto& f : tree) print(f, o.json);
  for (const auto& f : flood) print(f, o.json);
  std::cout.flush();
  return 0;
}

}  // namespace
}  // namespace kadnet::bench

int main(int argc, char** argv) {
  using namespace kadnet::bench;
  const options o = parse_or_exit("kadnet_bench_broadcast", usage_text, [&] { return parse_options(argc, argv); });
  try {
    for (std::size_t n : o.nodes) run(n, o);
  } catch (const std::exception& e) {
    std::cerr << "kadnet_bench_broadcast: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
