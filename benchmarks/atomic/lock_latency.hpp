#pragma once
// Lock latency for kadnet_bench_atomic: dht_node::lock and unlock (PROTOCOL.md 8.9) on a swarm
// of the simulated network, timed in virtual time. Both runs keep every lease their clients
// counted on and check the history with lock_history_violations: no two grants' leases overlap,
// tokens grow in grant order.
//
//   measure_lock_cycles      one client on one node locks a key and unlocks it at once, `cycles`
//                            times in a row: the latency of each lock and each unlock.
//   measure_lock_contention  `clients` on distinct nodes each take one key's lock `rounds` times:
//                            lock (after a refusal or a failure, again after a random pause),
//                            hold it for `hold`, unlock, pause, want it again. The wait is from
//                            first wanting the lock to holding it.
//
// Each runs the network until its clients are done, for at most an hour of virtual time
// (`finished` says whether they were).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "benchmarks/sim/dht_swarm.hpp"

namespace kadnet::bench {

struct lock_plan {
  std::chrono::milliseconds lease{10'000};  // long enough that no lease runs out while held
  std::chrono::milliseconds hold{100};      // contention: how long a holder keeps the lock
  // Contention: a client refused (or failed) tries again after a random pause in this range, and
  // pauses as long after an unlock (a releaser that wanted the lock again at once would beat
  // those already waiting).
  std::chrono::milliseconds retry_pause_min{50}, retry_pause_max{150};
  std::size_t cycles = 50;                  // uncontended lock → unlock cycles
  std::size_t clients = 8, rounds = 10;     // contention: clients, grants each wants
  // The swarm's cas.max_attempts: a lock that failed having used them all gave up.
  std::size_t max_attempts = dht::cas_config{}.max_attempts;
};

struct lock_cycles_result {
  std::size_t cycles = 0, acquired = 0, released = 0, failed = 0;
  std::size_t operations = 0, messages = 0;  // locks and unlocks, and the requests they sent
  std::vector<double> acquire_ms, release_ms;
  std::vector<std::string> violations;  // of the lock history; empty: valid
  bool finished = false;
};

struct lock_contention_result {
  std::size_t clients = 0, rounds = 0, acquired = 0;
  std::size_t lock_calls = 0;        // lock operations started, retries included
  std::size_t refusals = 0;          // lock operations that ended `locked`
  std::size_t failures = 0;          // lock operations that ended with another error
  std::size_t gave_up = 0;           // of those, no_quorum after every attempt was used
  std::size_t unlock_failures = 0;   // unlocks that failed (the lease then runs out)
  std::size_t most_attempts = 0;     // the most reads and prepare rounds of one lock operation
  std::size_t messages = 0;          // requests sent by every lock and unlock
  double seconds = 0;                // virtual, from the first wish to the last unlock's end
  std::vector<double> wait_ms;       // from wanting the lock to holding it, per grant
  std::vector<std::string> violations;
  bool finished = false;
};

lock_cycles_result measure_lock_cycles(dht_swarm& swarm, std::uint32_t node, const lock_plan& plan);
lock_contention_result measure_lock_contention(dht_swarm& swarm, const std::vector<std::uint32_t>& nodes,
                                               const lock_plan& plan);

}  // namespace kadnet::bench
