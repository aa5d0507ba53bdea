#pragma once
// Building and driving a dht_swarm for the simulated-network benchmarks (sim, broadcast): joins
// through nodes that already joined, and phases of operations started at a steady pace.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "benchmarks/common/number_args.hpp"
#include "benchmarks/sim/dht_swarm.hpp"

namespace kadnet::bench {

// The links and seed of a simulated swarm, as both sim benchmarks take them on the command line:
// --loss P, --latency-ms, --jitter-ms, --seed.
struct sim_links {
  double loss = 0;
  std::chrono::milliseconds latency{10}, jitter{5};
  std::uint64_t seed = 1;

  // Takes `flag` (and its value) when it is one of the four; false for any other flag.
  bool take(const std::string& flag, flag_walker& args);
  // Throws std::invalid_argument when the flags do not fit together.
  void check() const;
  // The swarm settings they give.
  void apply(dht_swarm::settings& s) const;
};

// Starts `count` operations `interval` apart of virtual time (start(j, done) begins the j-th and
// calls done when it finishes) and runs the network until all finished; returns how many did.
std::size_t run_phase(dht_swarm& swarm, std::size_t count, sim::duration interval,
                      const std::function<void(std::size_t, std::function<void()>)>& start);

struct join_tally {
  std::vector<std::uint32_t> joined;  // nodes in the swarm, in the order they joined
  std::size_t failed = 0;             // nodes whose every bootstrap learned nothing
  std::size_t retries = 0;
};

// Joins nodes [first, last), one every `interval`, each through a random node of tally.joined
// (which must not be empty). A bootstrap whose only seed lost the request (or the reply) learns
// nothing; like any application, the node tries again through another node, up to three times.
void join_nodes(dht_swarm& swarm, std::uint32_t first, std::uint32_t last, sim::duration interval, join_tally& tally);

}  // namespace kadnet::bench
