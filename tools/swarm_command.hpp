#pragma once
// `kadnet swarm`: a local swarm on loopback in one process, with a summary of what it measured.
// Until the DHT lands it forms a mesh of nodes that connect, ping and call a plugin on each
// other; the DHT issue turns it into puts and gets with churn.
#include <iosfwd>
#include <string>
#include <vector>

namespace kadnet::tools {

struct swarm_options {
  int nodes = 16;
  int calls_per_node = 32;
  bool json = false;
};

// Throws std::invalid_argument naming the bad argument.
swarm_options parse_swarm_options(const std::vector<std::string>& args);
int run_swarm(const swarm_options& options, std::ostream& out);

}  // namespace kadnet::tools
