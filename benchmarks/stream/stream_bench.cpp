// kadnet_bench_stream (./run.sh bench stream): the same N bytes over 127.0.0.1 through
//  (a) one kadnet::stream between two nodes of this process (udp://127.0.0.1:0),
//  (a') the same over a tcp:// session (no loss, for context: the stream on a TCP transport),
//  (b) UDT4 (Debian's libudt), through an impairing relay when the path is lossy,
//  (c) one kernel TCP connection (no loss, for context),
//  (d) raw 1,200-byte UDP datagrams blasted with sendmmsg and with GSO (the faster is the
//      ceiling), and with GSO and GRO (for context: loopback then carries a batch whole),
// with the goodput of each, kadnet's ratios to UDT and to raw UDP, whether the streams' bytes
// arrived intact (BLAKE2b), and the process's memory. With a loss rate, kadnet also runs through
// the relay (like for like with UDT) and at 0 % (for its own ratio). Each transfer fails after
// --timeout seconds. See docs/BENCHMARKS.md.
#include <chrono>
#include <iostream>

#include "benchmarks/stream/memory.hpp"
#include "benchmarks/stream/options.hpp"
#include "benchmarks/stream/payload.hpp"
#include "benchmarks/stream/report.hpp"
#include "benchmarks/stream/socket_util.hpp"
#include "benchmarks/stream/transfer.hpp"

using namespace kadnet::bench;

int main(int argc, char** argv) {
  std::string problem;
  bool help = false;
  auto opts = parse_options(argc, argv, problem, help);
  if (help) {
    std::cout << usage_text;
    return 0;
  }
  if (!opts) {
    std::cerr << "kadnet_bench_stream: " << problem << "\n" << usage_text;
    return 2;
  }

  bench_run run;
  run.opts = *opts;
  transfer_settings settings;
  settings.bytes = opts->bytes;
  settings.time_limit = opts->time_limit;
  settings.content_seed = opts->seed;
  settings.path.loss = opts->loss;
  settings.path.reorder = opts->reorder.value_or(opts->loss);
  settings.path.reorder_delay = std::chrono::milliseconds(1);
  settings.path.seed = opts->seed;
  auto expected = hash_payload(settings.content_seed, settings.bytes);
  settings.expected_hash = expected.hash;
  settings.kadnet_window = opts->window;
  run.blake2b_mbps = expected.blake2b_mbps;
  transfer_settings lossless = settings;
  lossless.path = impairment{};

  auto progress = [&](const char* what) {
    if (!opts->json) std::cerr << "kadnet_bench_stream: " << what << "...\n";
  };
  // Runs one transfer and counts the kernel's UDP receive-buffer drops meanwhile.
  auto measure = [](auto transfer) {
    auto before = udp_receive_buffer_drops();
    double cpu_before = process_cpu_seconds();
    auto wall_before = std::chrono::steady_clock::now();
    transfer_result r = transfer();
    r.cpu_seconds = process_cpu_seconds() - cpu_before;
    r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_before).count();
    auto after = udp_receive_buffer_drops();
    if (before && after && r.available) r.kernel_udp_drops = *after - *before;
    return r;
  };
  try {
    // kadnet first, so that the process's peak RSS after it is kadnet's.
    if (opts->wants("kadnet")) {
      progress("kadnet stream");
      run.kadnet = measure([&] { return run_kadnet(settings, false); });
      if (settings.path.active()) {
        progress("kadnet stream through the relay");
        run.kadnet_relay = measure([&] { return run_kadnet(settings, true); });
        progress("kadnet stream at 0 % loss");
        run.kadnet_lossless = measure([&] { return run_kadnet(lossless, false); });
      }
    }
    if (opts->wants("kadnet_tcp")) {
      progress("kadnet stream over TCP");
      run.kadnet_tcp = measure([&] { return run_kadnet_over_tcp(lossless); });
      run.kadnet_tcp->kernel_udp_drops.reset();  // no UDP there
    }
    if (opts->wants("udt")) {
      progress("UDT");
      run.udt = measure([&] { return run_udt(settings); });
    }
    if (opts->wants("tcp")) {
      progress("TCP");
      run.tcp = measure([&] { return run_tcp(lossless); });
      run.tcp->kernel_udp_drops.reset();  // no UDP there
    }
    if (opts->wants("raw")) {
      progress("raw UDP");
      run.raw_udp = measure([&] { return run_raw_udp(lossless, raw_batching::sendmmsg); });
      progress("raw UDP with GSO");
      run.raw_udp_gso = measure([&] { return run_raw_udp(lossless, raw_batching::gso); });
      progress("raw UDP with GSO and GRO");
      run.raw_udp_gso_gro = measure([&] { return run_raw_udp(lossless, raw_batching::gso_gro); });
    }
  } catch (const std::exception& e) {
    std::cerr << "kadnet_bench_stream: " << e.what() << "\n";
    return 1;
  }

  if (opts->json) print_json(run, std::cout);
  else print_table(run, std::cout);
  // A kadnet stream that failed, or any stream that arrived altered, fails the run.
  return all_intact(run) ? 0 : 1;
}
