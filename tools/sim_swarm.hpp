#pragma once
// `kadnet swarm --transport sim`: the swarm workload on full nodes (sessions, crypto, DHT) on the
// simulated network (transports/sim/swarm.hpp), in virtual time, in one thread.
#include "tools/swarm_command.hpp"
#include "tools/swarm_report.hpp"

namespace kadnet::tools {

swarm_results run_sim_swarm(const swarm_options& options);

}  // namespace kadnet::tools
