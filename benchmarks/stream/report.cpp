#include "benchmarks/stream/report.hpp"

#include <cstdio>
#include <string>

#include "benchmarks/stream/text.hpp"

namespace kadnet::bench {
namespace {

// Goodput of what arrived: for a transfer that ran out of time, what arrived within the limit
// over the limit (the report says it did not finish).
std::optional<double> goodput(const std::optional<transfer_result>& r) {
  if (!r || !r->available || r->seconds <= 0 || r->delivered == 0) return std::nullopt;
  return r->mbps();
}
double reorder_of(const options& o) { return o.reorder.value_or(o.loss); }
bool impaired(const options& o) { return o.loss > 0 || reorder_of(o) > 0; }
// The raw UDP ceiling: the faster of the two batchings that deliver datagram by datagram.
std::optional<double> raw_ceiling(const bench_run& run) {
  const auto a = goodput(run.raw_udp), b = goodput(run.raw_udp_gso);
  if (a && b) return std::max(*a, *b);
  return a ? a : b;
}
// The process's peak RSS (ru_maxrss) once the last transfer that ran was done.
long peak_rss_kib(const bench_run& run) {
  long peak = 0;
  for (const auto* r : {&run.kadnet, &run.kadnet_relay, &run.kadnet_lossless, &run.kadnet_tcp, &run.udt, &run.tcp, &run.raw_udp,
                        &run.raw_udp_gso, &run.raw_udp_gso_gro})
    if (*r) peak = std::max(peak, (*r)->peak_rss_after_kib);
  return peak;
}
std::optional<double> ratio(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b <= 0) return std::nullopt;
  return *a / *b;
}

struct ratios {
  // kadnet / UDT like for like: both through the relay when the path is impaired, both direct
  // when it is not.
  std::optional<double> udt;
  // kadnet with its nodes' own impairment / UDT through the relay (loss > 0 only).
  std::optional<double> udt_native;
  std::optional<double> raw_udp;          // against the ceiling
  std::optional<double> raw_udp_gso_gro;  // against GSO and GRO, which loopback never cuts up
  std::optional<double> lossless;  // kadnet at this loss / kadnet at 0 % (loss > 0 only)
};

ratios ratios_of(const bench_run& run) {
  ratios x;
  const bool lossy = impaired(run.opts);
  x.udt = ratio(goodput(lossy ? run.kadnet_relay : run.kadnet), goodput(run.udt));
  if (lossy) {
    x.udt_native = ratio(goodput(run.kadnet), goodput(run.udt));
    x.lossless = ratio(goodput(run.kadnet), goodput(run.kadnet_lossless));
  }
  x.raw_udp = ratio(goodput(run.kadnet), raw_ceiling(run));
  x.raw_udp_gso_gro = ratio(goodput(run.kadnet), goodput(run.raw_udp_gso_gro));
  return x;
}

std::string fixed(double v, int places) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", places, v);
  return buf;
}
std::string or_dash(std::optional<double> v, int places) { return v ? fixed(*v, places) : "-"; }
std::string json_number(std::optional<double> v, int places) { return v ? fixed(*v, places) : "null"; }
std::string percent(double p) { return fixed(100 * p, p < 0.01 && p > 0 ? 2 : 1) + " %"; }

}  // namespace

bool all_intact(const bench_run& run) {
  // Every kadnet stream must have arrived whole and unaltered; UDT, when it finished, unaltered
  // (at high loss it may run out of time: its goodput then counts what arrived).
  for (const auto* r : {&run.kadnet, &run.kadnet_relay, &run.kadnet_lossless, &run.kadnet_tcp})
    if (*r && (!(*r)->completed || (*r)->intact != true)) return false;
  if (run.udt && run.udt->available && run.udt->completed && run.udt->intact != true) return false;
  return true;
}

namespace {

long rss_growth(const transfer_result& k) { return std::max(k.rss_high_kib, k.rss_after_kib) - k.rss_before_kib; }

}  // namespace

void print_table(const bench_run& run, std::ostream& out) {
  const auto& o = run.opts;
  const bool lossy = impaired(o);
  out << "kadnet_bench_stream: " << with_commas(o.bytes) << " bytes (" << fixed(static_cast<double>(o.bytes) / (1 << 20), 1)
      << " MiB) of pseudo-random payload over 127.0.0.1, loss " << percent(o.loss) << " each way\n";
  if (lossy) {
    out << "injected: every datagram, either way, lost with p = " << fixed(o.loss, 4) << ", else held back 1 ms with p = "
        << fixed(reorder_of(o), 4) << " (later ones overtake it); mt19937_64 seeds " << o.seed << " (a->b) and " << o.seed + 1
        << " (b->a), retransmissions and acknowledgements included\n"
        << "  kadnet stream: both nodes' set_udp_impairment (applied in their UDP socket's send path)\n"
        << "  kadnet through the relay, UDT: an in-process UDP relay applying the same rule (UDT has no loss injection)\n";
  } else {
    out << "injected: nothing (every transport direct, no relay)\n";
  }
  out << "\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-44s %10s %9s %9s %7s %6s %7s\n", "transport", "MB/s", "seconds", "finished",
                "intact", "cores", "CPU ns/B");
  out << line;
  struct row {
    const char* name;
    const std::optional<transfer_result>* result;
  };
  const std::string udt_name = lossy ? "UDT4 through the relay" : "UDT4";
  const row rows[] = {
      {"kadnet stream", &run.kadnet},
      {"kadnet stream through the relay", &run.kadnet_relay},
      {"kadnet stream at 0 % loss (baseline)", &run.kadnet_lossless},
      {"kadnet stream over a TCP session (no loss)", &run.kadnet_tcp},
      {udt_name.c_str(), &run.udt},
      {"TCP, kernel (no loss)", &run.tcp},
      {"raw UDP, sendmmsg (no loss)", &run.raw_udp},
      {"raw UDP, GSO (no loss)", &run.raw_udp_gso},
      {"raw UDP, GSO and GRO (no loss)", &run.raw_udp_gso_gro},
  };
  for (const auto& [name, result] : rows) {
    if (!*result) continue;
    const auto& r = **result;
    std::string mbps = !r.available ? "n/a" : or_dash(goodput(*result), 1);
    std::string intact = !r.intact ? "-" : *r.intact ? "yes" : "NO";
    std::string finished = !r.available ? "-" : r.completed ? "yes" : "NO";
    std::string cores = r.available && r.wall_seconds > 0 ? fixed(r.cpu_seconds / r.wall_seconds, 2) : "-";
    std::string per_byte = r.available && r.delivered > 0 ? fixed(r.cpu_seconds * 1e9 / static_cast<double>(r.delivered), 2) : "-";
    std::snprintf(line, sizeof line, "%-44s %10s %9s %9s %7s %6s %7s\n", name, mbps.c_str(),
                  r.available && r.seconds > 0 ? fixed(r.seconds, 3).c_str() : "-", finished.c_str(), intact.c_str(),
                  cores.c_str(), per_byte.c_str());
    out << line;
  }
  out << "(MB/s: 10^6 payload bytes delivered per second; a transfer that did not finish counts what\n"
         " arrived within its time limit; raw UDP counts the datagrams that arrived, and the faster of\n"
         " sendmmsg and GSO is the ceiling (with GSO and GRO, loopback carries each batch whole, never\n"
         " cut into datagrams: context, not a ceiling); cores:\n"
         " the process's CPU time over wall time while the transfer ran, of 2 cores; CPU ns/B: that CPU\n"
         " time per payload byte delivered, which other load on the machine does not change much)\n";
  out << "\nnotes:\n";
  for (const auto& [name, result] : rows) {
    if (!*result || ((*result)->note.empty() && !(*result)->kernel_udp_drops)) continue;
    out << "  " << name << ": " << (*result)->note;
    if (auto drops = (*result)->kernel_udp_drops)
      out << ((*result)->note.empty() ? "" : "; ") << "kernel UDP receive-buffer drops meanwhile: " << with_commas(*drops);
    out << "\n";
  }

  const auto x = ratios_of(run);
  out << "\nratios: kadnet / UDT " << or_dash(x.udt, 2)
      << (lossy ? " (both through the relay; kadnet with set_udp_impairment / UDT through the relay: " +
                      or_dash(x.udt_native, 2) + ")"
                : "")
      << ", kadnet / raw UDP " << or_dash(x.raw_udp, 2);
  if (x.raw_udp_gso_gro) out << " (/ raw UDP with GSO and GRO " << or_dash(x.raw_udp_gso_gro, 2) << ")";
  if (run.udt && run.udt->available && !run.udt->completed)
    out << " (UDT did not finish: its goodput is what arrived within " << o.time_limit.count() << " s)";
  if (lossy) out << ", kadnet at " << percent(o.loss) << " / kadnet at 0 %: " << or_dash(x.lossless, 2);
  out << "\n";
  if (run.kadnet) {
    const auto& k = *run.kadnet;
    out << "memory: peak RSS " << with_commas(static_cast<std::uint64_t>(k.peak_rss_after_kib))
        << " KiB (ru_maxrss) after the kadnet transfer; during it RSS went from "
        << with_commas(static_cast<std::uint64_t>(k.rss_before_kib)) << " to at most "
        << with_commas(static_cast<std::uint64_t>(std::max(k.rss_high_kib, k.rss_after_kib))) << " KiB (+"
        << with_commas(static_cast<std::uint64_t>(std::max(0L, rss_growth(k)))) << " KiB, sampled every 50 ms)\n";
  }
  if (run.udt && run.udt->available)
    out << "        during UDT's transfer RSS went from " << with_commas(static_cast<std::uint64_t>(run.udt->rss_before_kib))
        << " to at most " << with_commas(static_cast<std::uint64_t>(std::max(run.udt->rss_high_kib, run.udt->rss_after_kib)))
        << " KiB (+" << with_commas(static_cast<std::uint64_t>(std::max(0L, rss_growth(*run.udt)))) << " KiB)\n";
  const long peak = peak_rss_kib(run);
  out << "peak RSS of the whole run: " << with_commas(static_cast<std::uint64_t>(peak)) << " KiB\n";
  out << "BLAKE2b alone on this machine: " << fixed(run.blake2b_mbps, 0)
      << " MB/s (kadnet's, UDT's and TCP's receivers hash all they read)\n";

  out << "\n";
  std::snprintf(line, sizeof line, "%-58s %10s %9s  %s\n", "target", "measured", "goal", "met");
  out << line;
  auto target = [&](const std::string& what, std::optional<double> v, double goal, const char* goal_text) {
    std::snprintf(line, sizeof line, "%-58s %10s %9s  %s\n", what.c_str(), or_dash(v, 2).c_str(), goal_text,
                  !v ? "not measured" : *v >= goal ? "yes" : "no");
    out << line;
  };
  if (!lossy) {
    target("kadnet / raw UDP ceiling at 0 % loss", x.raw_udp, 0.6, ">= 0.60");
    target("kadnet / UDT at 0 % loss", x.udt, 1.0, ">= 1.00");
  } else {
    target("kadnet at " + percent(o.loss) + " / kadnet at 0 %", x.lossless, 0.5, ">= 0.50");
    target("kadnet / UDT at " + percent(o.loss) + " (both through the relay)", x.udt, 1.5, ">= 1.50");
  }
  out << "kadnet's streams whole and intact (and UDT's, if it finished): " << (all_intact(run) ? "yes" : "NO") << "\n";
}

void print_json(const bench_run& run, std::ostream& out) {
  const auto& o = run.opts;
  const auto x = ratios_of(run);
  auto mbps = [](const std::optional<transfer_result>& r) { return json_number(goodput(r), 2); };
  auto intact = [](const std::optional<transfer_result>& r) -> std::string {
    if (!r || !r->available || !r->intact) return "null";
    return *r->intact ? "true" : "false";
  };
  const long peak = peak_rss_kib(run);
  auto finished = [](const std::optional<transfer_result>& r) -> std::string {
    if (!r || !r->available) return "null";
    return r->completed ? "true" : "false";
  };
  out << "{\"bench\":\"stream\",\"loss\":" << o.loss << ",\"reorder\":" << reorder_of(o) << ",\"bytes\":" << o.bytes << ",\"seed\":" << o.seed
      << ",\"kadnet_MBps\":" << mbps(run.kadnet) << ",\"kadnet_relay_MBps\":" << mbps(run.kadnet_relay)
      << ",\"kadnet_lossless_MBps\":" << mbps(run.kadnet_lossless) << ",\"kadnet_tcp_MBps\":" << mbps(run.kadnet_tcp)
      << ",\"udt_MBps\":" << mbps(run.udt)
      << ",\"tcp_MBps\":" << mbps(run.tcp) << ",\"raw_udp_MBps\":" << json_number(raw_ceiling(run), 2)
      << ",\"raw_udp_sendmmsg_MBps\":" << mbps(run.raw_udp) << ",\"raw_udp_gso_MBps\":" << mbps(run.raw_udp_gso)
      << ",\"raw_udp_gso_gro_MBps\":" << mbps(run.raw_udp_gso_gro)
      << ",\"ratio_udt\":" << json_number(x.udt, 3) << ",\"ratio_udt_native\":" << json_number(x.udt_native, 3)
      << ",\"ratio_raw_udp\":" << json_number(x.raw_udp, 3)
      << ",\"ratio_raw_udp_gso_gro\":" << json_number(x.raw_udp_gso_gro, 3) << ",\"ratio_lossless\":" << json_number(x.lossless, 3)
      << ",\"intact\":" << (all_intact(run) ? "true" : "false") << ",\"kadnet_intact\":" << intact(run.kadnet)
      << ",\"udt_intact\":" << intact(run.udt)
      << ",\"kadnet_finished\":" << finished(run.kadnet) << ",\"udt_finished\":" << finished(run.udt)
      << ",\"udt_available\":" << (run.udt && run.udt->available ? "true" : "false")
      << ",\"peak_rss_kib\":" << peak;
  if (run.kadnet)
    out << ",\"kadnet_rss_before_kib\":" << run.kadnet->rss_before_kib
        << ",\"kadnet_rss_growth_kib\":" << rss_growth(*run.kadnet);
  out << ",\"blake2b_MBps\":" << fixed(run.blake2b_mbps, 0) << "}\n";
}

}  // namespace kadnet::bench
