#pragma once
// What every transfer of the stream benchmark takes and reports (benchmarks/stream/).
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace kadnet::bench {

// The path impairment of a lossy run: each datagram is lost with probability `loss`, else held
// back `reorder_delay` with probability `reorder` (later ones overtake it). The same rule as
// transports::udp_impairment, drawn from a std::mt19937_64 seeded `seed` (one direction) and
// `seed + 1` (the other).
struct impairment {
  double loss = 0, reorder = 0;
  std::chrono::microseconds reorder_delay{1000};
  std::uint64_t seed = 1;
  bool active() const { return loss > 0 || reorder > 0; }
};

struct transfer_settings {
  std::uint64_t bytes = 256ull << 20;
  impairment path;
  std::chrono::seconds time_limit{120};  // each transfer fails after this long
  std::uint64_t content_seed = 1;
  std::array<std::uint8_t, 32> expected_hash{};  // BLAKE2b of the payload's `bytes` bytes
  std::optional<std::uint32_t> kadnet_window;     // node_config.datagram.streams.window_units
};

struct transfer_result {
  bool available = true;       // false: this transport could not run here (note says why)
  bool completed = false;      // every byte arrived within the time limit
  std::uint64_t delivered = 0;  // payload bytes that arrived (in order, for the streams)
  double seconds = 0;          // first byte sent .. last byte received
  std::optional<bool> intact;  // the received bytes' BLAKE2b equals the sent bytes'
  std::string note;            // what went wrong, or what was measured besides
  // CPU time (user + system) of the whole process while it ran (set-up included), and the wall
  // time of the same span, seconds: cpu / wall is how many cores it kept busy.
  double cpu_seconds = 0, wall_seconds = 0;
  // UDP datagrams the kernel dropped at a full receive buffer while it ran (system-wide).
  std::optional<std::uint64_t> kernel_udp_drops;
  // Memory: RSS (KiB) when the transfer began and ended, and the process's peak (ru_maxrss)
  // once it ended.
  // rss_high_kib: the highest RSS sampled (every 50 ms) while it ran.
  long rss_before_kib = 0, rss_after_kib = 0, rss_high_kib = 0, peak_rss_after_kib = 0;

  // Goodput in MB/s (10^6 bytes of payload delivered per second); 0 when nothing was measured.
  double mbps() const { return seconds > 0 ? static_cast<double>(delivered) / seconds / 1e6 : 0; }
};

// (a) one kadnet::stream between two nodes on 127.0.0.1, each with set_udp_impairment(path),
//     or, with `via_relay`, through an impair_relay instead (the same relay UDT runs through).
transfer_result run_kadnet(const transfer_settings& settings, bool via_relay);
// (a') one kadnet::stream over a tcp:// session (lossless stream channels; TCP's own congestion
//      control). The path is never impaired.
transfer_result run_kadnet_over_tcp(const transfer_settings& settings);
// (b) UDT4 (libudt) through an impair_relay when the path is impaired, directly otherwise.
transfer_result run_udt(const transfer_settings& settings);
// (c) one kernel TCP connection over loopback; the path is never impaired.
transfer_result run_tcp(const transfer_settings& settings);
// (d) 1,200-byte datagrams sent as fast as they go, no acknowledgement; the receiver counts what
//     arrives (delivered may be below settings.bytes). Batched as sendmmsg of single datagrams
//     or with GSO, each received datagram by datagram (the faster of these two is the ceiling),
//     or with GSO on send and GRO on receive (context: loopback carries such a batch whole).
enum class raw_batching { sendmmsg, gso, gso_gro };
transfer_result run_raw_udp(const transfer_settings& settings, raw_batching batching);

}  // namespace kadnet::bench
