#pragma once
// What `kadnet swarm` measured and how it prints it: the same summary (text or --json) whether
// the nodes ran on loopback sockets or on the simulated network.
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "kadnet/core/node_engine.hpp"
#include "tools/swarm_command.hpp"

namespace kadnet::tools {

// Results of one batch of operations.
struct batch {
  std::size_t ok = 0, failed = 0;
  std::vector<double> latency_ms;
  std::vector<double> rounds;
  double seconds = 0;
  // CPU time the whole process used meanwhile (every thread, user and system): what the batch
  // cost, which unlike `seconds` does not grow when other programs share the cores.
  double cpu_seconds = 0;
  double success_pct() const;
};

double percentile(std::vector<double> v, double p);
// Resident memory of this process in KiB (Linux /proc), 0 if unreadable.
double resident_kib();
// CPU time this process has used so far, all threads, user and system.
double process_cpu_seconds();

struct swarm_results {
  std::string system = "kadnet";  // which DHT ran: "kadnet", or "opendht" (benchmarks/swarm_opendht)
  // On the simulator, times and latencies are virtual (wall_s is the real time the run took).
  bool virtual_time = false;
  std::string network;  // how the nodes were connected, for the header line
  double settle_s = 0;
  batch joins, puts, gets, serial, after;
  std::size_t killed = 0;
  double rss_per_node_kib = 0;
  core::engine_counters totals;  // kadnet only: OpenDHT has no sessions to count
  // Simulator only.
  double wall_s = 0;
  double build_wall_s = 0;  // making and joining the nodes
  std::uint64_t datagrams = 0;
  std::string trace_hash;  // hex

  bool ok() const { return joins.failed == 0 && puts.failed == 0 && gets.failed == 0 && serial.failed == 0; }
};

// Returns the exit status: 0 when every join, put and get before the churn succeeded.
int print_swarm(const swarm_options& o, const swarm_results& r, std::ostream& out);

}  // namespace kadnet::tools
