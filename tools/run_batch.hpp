#pragma once
// A batch of asynchronous operations run on the wall clock with a fixed number in flight, and
// what it measured: the loop shared by `kadnet swarm` on sockets and the OpenDHT swarm benchmark
// (benchmarks/swarm_opendht), so that both systems are driven and timed the same way.
#include <chrono>
#include <cstddef>
#include <functional>

#include "tools/swarm_report.hpp"

namespace kadnet::tools {

// Completes one operation: whether it succeeded and, when the system reports it, its lookup
// rounds (a negative count: not reported). May be called from any thread, once.
using batch_done = std::function<void(bool ok, int rounds)>;
// Starts operation k (0 <= k < count) and arranges for `done` to be called when it completes.
using batch_issue = std::function<void(std::size_t k, batch_done done)>;

// Runs operations 0..count-1, `in_flight` at a time, and returns when all have completed or
// after `limit`, whichever is first. Operations still running at the limit count as failed;
// their completions arrive later and are ignored (no operation is started after the return).
batch run_batch(std::size_t count, const batch_issue& issue, int in_flight = 64,
                std::chrono::seconds limit = std::chrono::seconds(600));

}  // namespace kadnet::tools
