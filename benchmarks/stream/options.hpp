#pragma once
// Command line of kadnet_bench_stream (./run.sh bench stream).
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>

namespace kadnet::bench {

struct options {
  std::uint64_t bytes = 256ull << 20;
  double loss = 0;               // per datagram, each way
  std::optional<double> reorder; // per datagram, each way, held back 1 ms; default: = loss
  std::uint64_t seed = 1;        // impairment seeds (seed, seed + 1); the payload's too
  std::chrono::seconds time_limit{120};
  std::optional<std::uint32_t> window;  // kadnet streams' window in units (node_config default: 256)
  bool json = false;
  std::set<std::string> only;    // empty: every transport
  bool wants(const std::string& transport) const { return only.empty() || only.count(transport) != 0; }
};

// Parses argv; on a bad or unknown argument returns nullopt with `problem` set. `help` is set
// for -h/--help.
std::optional<options> parse_options(int argc, char** argv, std::string& problem, bool& help);
extern const char* const usage_text;

}  // namespace kadnet::bench
