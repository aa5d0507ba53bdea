// kadnet_bench_session_memory: what a node and a datagram session cost in heap. Builds a swarm of
// full nodes on the simulated network (transports/sim/swarm: engines, sealed datagram sessions,
// DHT), joins every node through a random earlier one, and reads glibc's count of bytes in use
// (mallinfo2) before the nodes exist, once they exist, and after the joins. RSS (what `kadnet
// swarm` reports) also counts freed memory the allocator keeps; this counts only live blocks.
//
//   kadnet_bench_session_memory [--nodes N] [--seed S]
//
// "per session" is the heap the joins added divided by the sessions then established: it also
// carries the routing-table contacts the joins taught each node.
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kadnet/transports/sim/swarm.hpp"

namespace {

using namespace std::chrono_literals;

std::size_t heap_in_use() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;  // small blocks in use, and blocks of their own (mmap)
}

int usage() {
  std::fprintf(stderr, "usage: kadnet_bench_session_memory [--nodes N] [--seed S]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t nodes = 1000;
  std::uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return usage();
    char* end = nullptr;
    const unsigned long long value = std::strtoull(argv[++i], &end, 10);
    if (*end != '\0') return usage();
    if (arg == "--nodes" && value >= 2) nodes = value;
    else if (arg == "--seed") seed = value;
    else return usage();
  }

  const std::size_t at_start = heap_in_use();
  kadnet::sim::swarm_settings settings;
  settings.seed = seed;
  settings.link = kadnet::sim::link_config{.latency = 20ms, .jitter = 5ms};  // as `kadnet swarm --transport sim`
  settings.node.request_timeout = 2000ms;
  kadnet::sim::swarm swarm(settings);
  swarm.add_nodes(nodes);
  const std::size_t with_nodes = heap_in_use();
  const auto joined = swarm.join_all(kadnet::sim::join_via::random_earlier);
  const std::size_t after_joins = heap_in_use();

  std::size_t sessions = 0;
  for (std::size_t i = 0; i < nodes; ++i) sessions += swarm.stats(i).sessions;
  const double n = static_cast<double>(nodes);
  std::printf("kadnet_bench_session_memory: %zu nodes on the simulated network, seed %llu\n", nodes,
              static_cast<unsigned long long>(seed));
  std::printf("  joins               %zu ok, %zu failed\n", joined.ok, joined.failed);
  std::printf("  sessions            %.1f per node\n", static_cast<double>(sessions) / n);
  std::printf("  heap per node       %.2f KiB before any join, %.2f KiB after the joins\n",
              static_cast<double>(with_nodes - at_start) / n / 1024,
              static_cast<double>(after_joins - at_start) / n / 1024);
  std::printf("  heap per session    %.0f bytes\n",
              sessions ? static_cast<double>(after_joins - with_nodes) / static_cast<double>(sessions) : 0.0);
  return joined.failed == 0 ? 0 : 1;
}
