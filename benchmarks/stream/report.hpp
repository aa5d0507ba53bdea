#pragma once
// The stream benchmark's output: a table for people, or one JSON object (--json).
#include <optional>
#include <ostream>

#include "benchmarks/stream/options.hpp"
#include "benchmarks/stream/transfer.hpp"

namespace kadnet::bench {

struct bench_run {
  options opts;
  double blake2b_mbps = 0;
  std::optional<transfer_result> kadnet;           // (a), impaired by the nodes' sockets
  std::optional<transfer_result> kadnet_relay;     // (a) through the relay UDT uses (loss > 0)
  std::optional<transfer_result> kadnet_lossless;  // (a) at 0 % loss, for the loss run's own ratio
  std::optional<transfer_result> kadnet_tcp;       // (a') over a TCP session, never impaired
  std::optional<transfer_result> udt, tcp;
  // (d) batched with sendmmsg, with GSO (the faster of the two is the ceiling), and with GSO and
  // GRO (context).
  std::optional<transfer_result> raw_udp, raw_udp_gso, raw_udp_gso_gro;
};

// Every kadnet stream arrived whole and intact, and UDT's did too if it finished.
bool all_intact(const bench_run& run);
void print_table(const bench_run& run, std::ostream& out);
void print_json(const bench_run& run, std::ostream& out);

}  // namespace kadnet::bench
