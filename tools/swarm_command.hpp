#pragma once
// `kadnet swarm`: a DHT swarm in one process, on loopback sockets or on the simulated network:
// forms it, stores and reads back values from random nodes, kills a share of the nodes, reads
// again, and prints what it measured.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace kadnet::tools {

// Real sockets cost descriptors and kernel buffers; simulated nodes only memory.
inline constexpr int max_socket_nodes = 5000;
inline constexpr int max_sim_nodes = 100000;

struct swarm_options {
  int nodes = 64;
  int ops = 200;           // puts, then as many gets (and again after the churn)
  double churn = 0.33;     // share of nodes killed before the second round of gets
  std::uint64_t seed = 1;
  std::string transport = "tcp";  // tcp, udp, or sim: full nodes on the simulated network
  bool json = false;
};

// Throws std::invalid_argument naming the bad argument.
swarm_options parse_swarm_options(const std::vector<std::string>& args);
int run_swarm(const swarm_options& options, std::ostream& out);

}  // namespace kadnet::tools
