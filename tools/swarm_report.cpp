#include "tools/swarm_report.hpp"

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <ostream>

#include <sys/resource.h>
#include <unistd.h>

#include <boost/json.hpp>

namespace kadnet::tools {

double batch::success_pct() const {
  return ok + failed == 0 ? 0 : 100.0 * static_cast<double>(ok) / static_cast<double>(ok + failed);
}

double resident_kib() {
  std::ifstream statm("/proc/self/statm");
  double pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return 0;
  return resident * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1024.0;
}

double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(u.ru_utime) + seconds(u.ru_stime);
}

namespace {

// CPU microseconds per operation of a batch, 0 when it ran none.
double cpu_us_per_op(const batch& b, std::size_t ops) {
  return ops == 0 ? 0 : 1e6 * b.cpu_seconds / static_cast<double>(ops);
}

}  // namespace

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

int print_swarm(const swarm_options& o, const swarm_results& r, std::ostream& out) {
  const std::size_t ops = static_cast<std::size_t>(o.ops);
  if (o.json) {
    boost::json::object j{
        {"bench", "swarm"}, {"system", r.system}, {"nodes", o.nodes}, {"transport", o.transport}, {"seed", o.seed},
        {"settle_s", r.settle_s}, {"joins_failed", r.joins.failed},
        {"puts", ops}, {"put_success_pct", r.puts.success_pct()},
        {"put_median_ms", percentile(r.puts.latency_ms, 0.5)}, {"put_p99_ms", percentile(r.puts.latency_ms, 0.99)},
        {"gets", ops}, {"get_success_pct", r.gets.success_pct()},
        {"get_median_ms", percentile(r.gets.latency_ms, 0.5)}, {"get_p99_ms", percentile(r.gets.latency_ms, 0.99)},
        {"get_one_at_a_time_median_ms", percentile(r.serial.latency_ms, 0.5)},
        {"get_one_at_a_time_p99_ms", percentile(r.serial.latency_ms, 0.99)},
        {"get_ops_per_s", r.gets.seconds > 0 ? static_cast<double>(ops) / r.gets.seconds : 0},
        {"put_ops_per_s", r.puts.seconds > 0 ? static_cast<double>(ops) / r.puts.seconds : 0},
        {"rss_per_node_kib", r.rss_per_node_kib},
        {"killed", r.killed}, {"get_after_churn_success_pct", r.after.success_pct()},
        {"get_after_churn_median_ms", percentile(r.after.latency_ms, 0.5)}};
    if (!r.gets.rounds.empty()) {  // OpenDHT does not say how many rounds a lookup took
      j["lookup_rounds_median"] = percentile(r.gets.rounds, 0.5);
      j["lookup_rounds_p99"] = percentile(r.gets.rounds, 0.99);
    }
    if (r.virtual_time) {
      // Times above are virtual; these say what the run cost for real.
      j["time"] = "virtual";
      j["wall_s"] = r.wall_s;
      j["build_wall_s"] = r.build_wall_s;
      j["datagrams"] = r.datagrams;
      j["trace_hash"] = r.trace_hash;
    } else {
      j["get_cpu_us"] = cpu_us_per_op(r.gets, ops);
      j["put_cpu_us"] = cpu_us_per_op(r.puts, ops);
    }
    out << boost::json::serialize(j) << "\n";
    return r.ok() ? 0 : 1;
  }
  const char* unit = r.virtual_time ? " virtual" : "";
  out << std::fixed << std::setprecision(2) << r.system << " swarm: " << o.nodes << " nodes on " << r.network
      << ", one process, seed " << o.seed << "\n";
  if (r.virtual_time)
    out << "  (times and latencies are virtual: simulated network time, not the wall clock)\n";
  out << "  time to settle      " << r.settle_s << unit << " s (" << r.joins.ok << " joins, " << r.joins.failed << " failed)\n"
      << "  puts                " << ops << ", " << r.puts.success_pct() << " % stored, median "
      << percentile(r.puts.latency_ms, 0.5) << unit << " ms, p99 " << percentile(r.puts.latency_ms, 0.99) << unit << " ms\n"
      << "  gets                " << ops << ", " << r.gets.success_pct() << " % found, median "
      << percentile(r.gets.latency_ms, 0.5) << unit << " ms, p99 " << percentile(r.gets.latency_ms, 0.99) << unit << " ms\n"
      << "  gets one at a time  " << r.serial.ok + r.serial.failed << ", " << r.serial.success_pct() << " % found, median "
      << percentile(r.serial.latency_ms, 0.5) << unit << " ms, p99 " << percentile(r.serial.latency_ms, 0.99) << unit << " ms\n";
  if (!r.gets.rounds.empty())
    out << "  lookup hops         median " << percentile(r.gets.rounds, 0.5) << ", p99 " << percentile(r.gets.rounds, 0.99) << "\n";
  out << "  throughput          " << (r.puts.seconds > 0 ? static_cast<double>(ops) / r.puts.seconds : 0) << " puts/s, "
      << (r.gets.seconds > 0 ? static_cast<double>(ops) / r.gets.seconds : 0) << " gets/s (64 in flight" << (r.virtual_time ? ", per virtual second" : "") << ")\n";
  if (!r.virtual_time)
    out << "  CPU per operation   " << cpu_us_per_op(r.puts, ops) << " us per put, " << cpu_us_per_op(r.gets, ops)
        << " us per get (the whole process, 64 in flight)\n";
  out << "  memory              " << r.rss_per_node_kib << " KiB resident per node\n";
  if (r.system == "kadnet")
    out << "  sessions            " << r.totals.sessions_opened << " opened, " << r.totals.handshakes_failed
        << " handshakes failed; " << r.totals.requests_sent << " requests, " << r.totals.timeouts << " timed out\n";
  if (r.killed)
    out << "  after killing " << r.killed << "    " << r.after.success_pct() << " % of gets found, median "
        << percentile(r.after.latency_ms, 0.5) << unit << " ms, p99 " << percentile(r.after.latency_ms, 0.99) << unit << " ms\n";
  if (r.virtual_time)
    out << "  simulation          " << r.wall_s << " s wall clock (" << r.build_wall_s << " s to build and join), "
        << r.datagrams << " datagrams, trace " << r.trace_hash.substr(0, 16) << "\n";
  return r.ok() ? 0 : 1;
}

}  // namespace kadnet::tools
