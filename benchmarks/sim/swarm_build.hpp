#pragma once
// Building and driving a dht_swarm for the simulated-network benchmarks (sim, broadcast): joins
// through nodes that already joined, and phases of operations started at a steady pace.
#include <cstdint>
#include <functional>
#include <vector>

#include "benchmarks/sim/dht_swarm.hpp"

namespace kadnet::bench {

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
