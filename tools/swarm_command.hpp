#pragma once
// `kadnet swarm`: a DHT swarm on loopback in one process: forms it, stores and reads back values
// from random nodes, kills a share of the nodes, reads again, and prints what it measured.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace kadnet::tools {

struct swarm_options {
  int nodes = 64;
  int ops = 200;           // puts, then as many gets (and again after the churn)
  double churn = 0.33;     // share of nodes killed before the second round of gets
  std::uint64_t seed = 1;
  std::string transport = "tcp";
  bool json = false;
};

// Throws std::invalid_argument naming the bad argument.
swarm_options parse_swarm_options(const std::vector<std::string>& args);
int run_swarm(const swarm_options& options, std::ostream& out);

}  // namespace kadnet::tools
