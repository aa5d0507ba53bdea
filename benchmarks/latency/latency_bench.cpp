// kadnet_bench_latency: the reliable-message latency test of the KCP project (skywind3000/kcp,
// test.cpp) on kadnet's UDP-style datagram sessions, on the simulated network (transports/sim).
//
// Two node engines (core::node_engine) hold one datagram session (dial_datagram / on_datagram)
// over a link that loses 10 % of a round trip (5 % each way) and delays each datagram uniformly
// in [30, 62.5] ms (RTT 60–125 ms), as KCP's LatencySimulator does. The dialer sends 1,000
// messages of 8 bytes, one every 20 ms of virtual time, each as a plugin request (opcode 64);
// the receiver's handler records the arrival time and answers with the same 8 bytes, so the ACK
// is the echo that KCP's test sends back. Two latencies per message:
//   one-way    = arrival at the receiver's handler − when the sender issued the request;
//   round trip = the ACK (echo) back at the sender − when it issued the request: the figure
//                KCP's test prints as avgrtt / maxrtt (fast mode: 138 / 392 ms).
// Everything runs on virtual time, so a seed fixes the run (the trace hash repeats).
//
//   kadnet_bench_latency [--messages 1000] [--interval-ms 20] [--size 8] [--loss 0.10]
//                        [--rtt-min-ms 60] [--rtt-max-ms 125] [--in-order] [--seed S]
//                        [--warmup-ms 1000] [--request-timeout-ms 120000]
//                        [--min-rto-ms N] [--initial-rto-ms N] [--ack-delay-ms N]
//                        [--max-rto-ms N] [--trace] [--json]
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "benchmarks/common/number_args.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/core/node_engine.hpp"
#include "kadnet/core/wire/packet.hpp"
#include "kadnet/transports/sim/network.hpp"

namespace kadnet::bench {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

constexpr std::uint8_t opcode = 64;  // the plugin RPC every message is sent as

struct options {
  std::size_t messages = 1000;
  milliseconds interval{20};
  std::size_t size = 8;          // payload bytes; at least 4 (the message's index)
  double loss = 0.10;            // per round trip; each way loses half of it, as in KCP's test
  double rtt_min_ms = 60, rtt_max_ms = 125;  // each one-way delay is uniform in [min/2, max/2]
  bool in_order = false;         // links deliver in sending order (KCP's simulator is a FIFO)
  milliseconds warmup{1000};     // after the handshake, before the first message
  milliseconds request_timeout{120000};  // long: a late message is measured, not failed
  std::uint64_t seed = 1;
  std::optional<milliseconds> min_rto, initial_rto, ack_delay, max_rto;
  std::optional<std::uint32_t> min_window;
  bool trace = false;
  bool json = false;
};

const char* const usage_text =
    "usage: kadnet_bench_latency [--messages 1000] [--interval-ms 20] [--size 8] [--loss 0.10]\n"
    "                            [--rtt-min-ms 60] [--rtt-max-ms 125] [--in-order] [--seed S]\n"
    "                            [--warmup-ms 1000] [--request-timeout-ms 120000]\n"
    "                            [--min-rto-ms N] [--initial-rto-ms N] [--ack-delay-ms N]\n"
    "                            [--max-rto-ms N] [--trace] [--json]\n"
    "  --loss P      round-trip loss; each direction loses P/2 (KCP's LatencySimulator)\n"
    "  --in-order    links never reorder: a datagram waits for the one sent before it, as in\n"
    "                KCP's LatencySimulator (default: each datagram's delay is independent)\n"
    "  --warmup-ms   virtual time between the handshake and the first message, so that the\n"
    "                session's own start-up exchange (compression options) is over\n"
    "  --*-rto-ms, --ack-delay-ms   override node_config::datagram.channel on both nodes\n"
    "  --trace       one line per message: index, issued (ms), one-way, round trip (ms)\n";

options parse_options(int argc, char** argv) {
  options o;
  for (flag_walker args(argc, argv); args.next();) {
    const std::string& a = args.flag();
    auto value = [&]() -> const std::string& { return args.value(); };
    auto ms = [&] { return milliseconds(parse_number(a, value())); };
    if (a == "--json") o.json = true;
    else if (a == "--trace") o.trace = true;
    else if (a == "--in-order") o.in_order = true;
    else if (a == "--messages") o.messages = parse_number(a, value());
    else if (a == "--interval-ms") o.interval = ms();
    else if (a == "--size") o.size = parse_number(a, value());
    else if (a == "--loss") o.loss = parse_real(a, value());
    else if (a == "--rtt-min-ms") o.rtt_min_ms = parse_real(a, value());
    else if (a == "--rtt-max-ms") o.rtt_max_ms = parse_real(a, value());
    else if (a == "--seed") o.seed = parse_number(a, value());
    else if (a == "--warmup-ms") o.warmup = ms();
    else if (a == "--request-timeout-ms") o.request_timeout = ms();
    else if (a == "--min-rto-ms") o.min_rto = ms();
    else if (a == "--initial-rto-ms") o.initial_rto = ms();
    else if (a == "--ack-delay-ms") o.ack_delay = ms();
    else if (a == "--max-rto-ms") o.max_rto = ms();
    else if (a == "--min-window") o.min_window = static_cast<std::uint32_t>(parse_number(a, value()));
    else {
      args.help_or_unknown(usage_text);
    }
  }
  if (o.messages == 0) throw std::invalid_argument("--messages: must be at least 1");
  if (o.size < 4 || o.size > 1000) throw std::invalid_argument("--size: must be 4..1000 bytes");
  if (o.loss >= 1) throw std::invalid_argument("--loss: must be below 1");
  if (o.rtt_max_ms < o.rtt_min_ms) throw std::invalid_argument("--rtt-max-ms must not be below --rtt-min-ms");
  return o;
}

// The engine's address for a sim endpoint: ::ffff:10.0.x.y, port 4000, where x.y is the id.
byte_vector address_of(sim::endpoint_id ep) {
  byte_vector a(18, 0);
  a[10] = a[11] = 0xff;
  a[12] = 10;
  a[14] = static_cast<std::uint8_t>(ep >> 8);
  a[15] = static_cast<std::uint8_t>(ep);
  a[16] = 0x0f;
  a[17] = 0xa0;
  return a;
}
sim::endpoint_id endpoint_of(byte_span a) { return (sim::endpoint_id{a[14]} << 8) | a[15]; }

double to_ms(sim::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// One node: an engine on a sim endpoint, pumped as node_engine.hpp's driver contract says.
struct node {
  std::unique_ptr<core::identity> id;
  std::unique_ptr<core::node_engine> engine;
  sim::endpoint_id ep = 0;
  std::optional<sim::timer_id> timer;
  sim::time_point timer_at{};
  std::uint64_t datagrams_out = 0, data_packets_out = 0;  // data: reliable_data packets
};

class latency_run {
 public:
  explicit latency_run(const options& o)
      : o_(o), net_(o.seed), rng_(o.seed ^ 0x6c6174656e6379ull /* "latency" */),
        issued_(o.messages), arrived_(o.messages), echoed_(o.messages) {
    // One-way loss and delay as KCP's LatencySimulator: half the round-trip loss each way,
    // delay uniform in [rtt_min / 2, rtt_max / 2].
    const auto lo = std::chrono::duration_cast<sim::duration>(std::chrono::duration<double, std::milli>(o.rtt_min_ms / 2));
    const auto hi = std::chrono::duration_cast<sim::duration>(std::chrono::duration<double, std::milli>(o.rtt_max_ms / 2));
    link_.latency = (lo + hi) / 2;
    link_.jitter = (hi - lo) / 2;
    link_.loss = o.loss / 2;
    // In order: the driver draws loss and delay itself and hands each datagram to a perfect
    // link when its time (and that of the datagram before it) has come.
    net_.set_default_link(o.in_order ? sim::link_config{} : link_);

    core::node_config config;
    config.ask_observed_address = false;  // KCP's two endpoints: no ANNOUNCE before the messages
    auto& ch = config.datagram.channel;
    if (o.min_rto) ch.min_rto = *o.min_rto;
    if (o.initial_rto) ch.initial_rto = *o.initial_rto;
    if (o.ack_delay) ch.ack_delay = *o.ack_delay;
    if (o.max_rto) ch.max_rto = *o.max_rto;
    if (o.min_window) ch.min_window = *o.min_window;
    for (int i = 0; i < 2; ++i) {
      node& n = nodes_[i];
      std::array<std::uint8_t, 32> seed{};
      for (std::size_t b = 0; b < seed.size(); ++b) seed[b] = static_cast<std::uint8_t>(rng_());
      n.id = std::make_unique<core::identity>(core::identity::from_seed(seed));
      auto source = std::make_shared<std::mt19937_64>(rng_());
      n.engine = std::make_unique<core::node_engine>(*n.id, config, [source](mutable_byte_span out) {
        for (auto& b : out) b = static_cast<std::uint8_t>((*source)());
      });
      n.ep = net_.add_endpoint([this, i](sim::endpoint_id from, byte_span bytes, sim::time_point now) {
        nodes_[i].engine->on_datagram(now, address_of(from), bytes);
        pump(i);
      });
    }
    // The receiver: record the arrival, echo the payload back in the ACK.
    nodes_[1].engine->plugins().add(opcode, [this](const core::node_id&, byte_span payload, core::plugin_reply reply) {
      if (payload.size() < 4) return reply(core::plugin_error{core::wire::nack_code::bad_request, "short payload"});
      std::uint32_t k = 0;
      for (int b = 0; b < 4; ++b) k = (k << 8) | payload[b];
      if (k < arrived_.size() && !arrived_[k]) {
        arrived_[k] = net_.now();
        ++arrivals_;
        if (k < next_expected_) ++out_of_order_;
        next_expected_ = std::max(next_expected_, k + 1);
      }
      reply(byte_vector(payload.begin(), payload.end()));
    });
  }

  void run() {
    start_ = net_.now();
    conn_ = nodes_[0].engine->dial_datagram(net_.now(), nodes_[1].id->id(), address_of(nodes_[1].ep));
    pump(0);
    const sim::time_point limit = start_ + 60s + o_.warmup + o_.interval * o_.messages + o_.request_timeout + 10s;
    net_.run_until([&] { return echoes_ + failed_ == o_.messages && arrivals_ >= echoes_; }, limit);
    end_ = net_.now();
  }

  void report(std::ostream& out) const;

 private:
  // Sends what the engine queued, hands its events over, re-arms its timer.
  void pump(int i) {
    node& n = nodes_[i];
    for (bool moved = true; moved;) {
      moved = false;
      for (auto c : n.engine->take_dirty()) {
        byte_vector packets = n.engine->take_transmit(c);
        const sim::endpoint_id to = endpoint_of(n.engine->transport_address(c));
        for (std::size_t off = 0; off + 4 <= packets.size();) {
          const std::size_t len = 4 + ((std::size_t{packets[off + 2]} << 8) | packets[off + 3]);
          ++n.datagrams_out;
          if (packets[off + 1] == static_cast<std::uint8_t>(core::wire::packet_type::reliable_data)) ++n.data_packets_out;
          transmit(i, to, byte_vector(packets.begin() + static_cast<std::ptrdiff_t>(off),
                                      packets.begin() + static_cast<std::ptrdiff_t>(off + len)));
          off += len;
        }
        if (n.engine->wants_close(c)) n.engine->on_transport_closed(c, {});
        moved = true;
      }
      while (auto ev = n.engine->poll_event()) {
        on_event(i, *ev);
        moved = true;
      }
    }
    const auto deadline = n.engine->next_deadline();
    if (n.timer && (!deadline || *deadline != n.timer_at)) {
      net_.cancel(*n.timer);
      n.timer.reset();
    }
    if (deadline && !n.timer) {
      n.timer_at = *deadline;
      n.timer = net_.schedule(*deadline, [this, i] {
        nodes_[i].timer.reset();
        nodes_[i].engine->handle_timeout(net_.now());
        pump(i);
      });
    }
  }

  void transmit(int from, sim::endpoint_id to, byte_vector datagram) {
    const sim::endpoint_id src = nodes_[from].ep;
    if (!o_.in_order) return net_.send(src, to, datagram);
    // KCP's LatencySimulator: lost at once, else queued behind the datagrams sent before it.
    if (uniform() < link_.loss) {
      ++in_order_lost_;
      return;
    }
    const auto span = static_cast<std::uint64_t>(link_.jitter.count()) * 2 + 1;
    const sim::duration delay = link_.latency + sim::duration(static_cast<sim::duration::rep>(rng_() % span) - link_.jitter.count());
    sim::time_point& tail = fifo_tail_[from];
    tail = std::max(tail, net_.now() + delay);
    net_.schedule(tail, [this, src, to, d = std::move(datagram)] { net_.send(src, to, d); });
  }

  double uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

  void on_event(int i, const core::node_engine::event& ev) {
    if (i != 0) return;
    if (const auto* c = std::get_if<core::node_engine::connected>(&ev)) {
      connected_at_ = net_.now();
      conn_ = c->connection;
      // After the warm-up, as KCP's test: the first message one interval after the start,
      // then one per interval.
      first_at_ = net_.now() + o_.warmup + o_.interval;
      for (std::size_t k = 0; k < o_.messages; ++k)
        net_.schedule(first_at_ + o_.interval * k, [this, k] { send(k); });
    } else if (const auto* d = std::get_if<core::node_engine::request_done>(&ev)) {
      auto it = pending_.find(d->request);
      if (it == pending_.end()) return;
      const std::size_t k = it->second;
      pending_.erase(it);
      if (d->result.ec) {
        ++failed_;
        return;
      }
      echoed_[k] = net_.now();
      ++echoes_;
    }
  }

  void send(std::size_t k) {
    byte_vector payload(o_.size, 0);
    for (int b = 0; b < 4; ++b) payload[b] = static_cast<std::uint8_t>(k >> (24 - 8 * b));
    issued_[k] = net_.now();
    const core::request_id r = nodes_[0].engine->request(net_.now(), conn_, opcode, core::wire::plugin_call{std::move(payload)},
                                                         o_.request_timeout);
    pending_.emplace(r, k);
    pump(0);
  }

  options o_;
  sim::network net_;
  sim::link_config link_;
  std::mt19937_64 rng_;
  std::array<node, 2> nodes_;
  std::array<sim::time_point, 2> fifo_tail_{};
  std::uint64_t in_order_lost_ = 0;
  core::connection_id conn_ = 0;
  sim::time_point start_{}, connected_at_{}, first_at_{}, end_{};
  std::vector<sim::time_point> issued_;
  std::vector<std::optional<sim::time_point>> arrived_, echoed_;
  std::unordered_map<core::request_id, std::size_t> pending_;
  std::size_t arrivals_ = 0, echoes_ = 0, failed_ = 0, out_of_order_ = 0;
  std::uint32_t next_expected_ = 0;
};

struct summary {
  std::size_t count = 0;
  double avg = 0, p50 = 0, p99 = 0, max = 0;
};

// Nearest-rank percentiles.
summary summarize(std::vector<double> v) {
  summary s;
  s.count = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  auto rank = [&](double p) { return v[static_cast<std::size_t>(std::max(1.0, std::ceil(p * static_cast<double>(v.size())))) - 1]; };
  s.avg = sum / static_cast<double>(v.size());
  s.p50 = rank(0.50);
  s.p99 = rank(0.99);
  s.max = v.back();
  return s;
}

std::string fixed(double v, int decimals = 1) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(decimals) << v;
  return s.str();
}

std::string hex(const std::array<std::uint8_t, 32>& h, std::size_t bytes = 8) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) out += digits[h[i] >> 4], out += digits[h[i] & 15];
  return out;
}

void latency_run::report(std::ostream& out) const {
  constexpr double target_avg = 140, target_max = 400;
  std::vector<double> one_way, round_trip;
  std::size_t late = 0;  // one-way beyond the link's largest delay: held up by a loss
  const double link_max = to_ms(link_.latency + link_.jitter);
  for (std::size_t k = 0; k < o_.messages; ++k) {
    if (arrived_[k]) {
      one_way.push_back(to_ms(*arrived_[k] - issued_[k]));
      if (one_way.back() > link_max) ++late;
    }
    if (echoed_[k]) round_trip.push_back(to_ms(*echoed_[k] - issued_[k]));
  }
  const summary ow = summarize(one_way), rt = summarize(round_trip);
  // Retransmissions: every reliable_data packet a node sent beyond its messages (each message
  // here is one unit) — the session's units_sent + retransmits, minus units_sent.
  std::array<std::uint64_t, 2> resent{}, messages_out{};
  for (int i = 0; i < 2; ++i) {
    messages_out[i] = nodes_[i].engine->stats().sessions.messages_out;
    // Exact once every echo came back (every message then left its sender at least once).
    resent[i] = nodes_[i].data_packets_out - std::min(nodes_[i].data_packets_out, messages_out[i]);
  }
  const auto& nc = net_.counters();
  const std::uint64_t datagrams = nodes_[0].datagrams_out + nodes_[1].datagrams_out;
  const std::uint64_t lost = o_.in_order ? in_order_lost_ : nc.lost;
  const std::string trace = hex(net_.trace_hash());
  const bool complete = ow.count == o_.messages && rt.count == o_.messages;
  auto yes = [&](bool met) { return complete && met ? "true" : "false"; };

  if (o_.trace)
    for (std::size_t k = 0; k < o_.messages; ++k)
      std::cerr << "msg " << k << " issued " << fixed(to_ms(issued_[k] - first_at_), 3) << " one_way "
                << (arrived_[k] ? fixed(to_ms(*arrived_[k] - issued_[k]), 3) : "-") << " rtt "
                << (echoed_[k] ? fixed(to_ms(*echoed_[k] - issued_[k]), 3) : "-") << "\n";

  if (o_.json) {
    out << "{\"bench\":\"latency\",\"messages\":" << o_.messages << ",\"size\":" << o_.size
        << ",\"interval_ms\":" << o_.interval.count() << ",\"loss\":" << fixed(o_.loss, 3)
        << ",\"rtt_min_ms\":" << fixed(o_.rtt_min_ms) << ",\"rtt_max_ms\":" << fixed(o_.rtt_max_ms)
        << ",\"in_order\":" << (o_.in_order ? "true" : "false") << ",\"warmup_ms\":" << o_.warmup.count()
        << ",\"seed\":" << o_.seed
        << ",\"delivered\":" << ow.count << ",\"avg_ms\":" << fixed(ow.avg, 2) << ",\"p50_ms\":" << fixed(ow.p50, 2)
        << ",\"p99_ms\":" << fixed(ow.p99, 2) << ",\"max_ms\":" << fixed(ow.max, 2) << ",\"late\":" << late
        << ",\"out_of_order\":" << out_of_order_ << ",\"echoed\":" << rt.count << ",\"rtt_avg_ms\":" << fixed(rt.avg, 2)
        << ",\"rtt_p50_ms\":" << fixed(rt.p50, 2) << ",\"rtt_p99_ms\":" << fixed(rt.p99, 2)
        << ",\"rtt_max_ms\":" << fixed(rt.max, 2) << ",\"failed\":" << failed_
        << ",\"retransmits\":" << resent[0] + resent[1] << ",\"retransmits_sender\":" << resent[0]
        << ",\"retransmits_receiver\":" << resent[1] << ",\"units_sender\":" << messages_out[0]
        << ",\"units_receiver\":" << messages_out[1] << ",\"datagrams\":" << datagrams << ",\"datagrams_lost\":" << lost
        << ",\"handshake_ms\":" << fixed(to_ms(connected_at_ - start_), 2)
        << ",\"virtual_s\":" << fixed(std::chrono::duration<double>(end_ - start_).count(), 3)
        << ",\"avg_target_met\":" << yes(ow.avg <= target_avg) << ",\"max_target_met\":" << yes(ow.max <= target_max)
        << ",\"rtt_avg_target_met\":" << yes(rt.avg <= target_avg) << ",\"rtt_max_target_met\":" << yes(rt.max <= target_max)
        << ",\"trace\":\"" << trace << "\"}\n";
    return;
  }
  out << "kadnet_bench_latency: " << o_.messages << " messages of " << o_.size << " bytes, one per "
      << o_.interval.count() << " ms, RTT " << fixed(o_.rtt_min_ms, 0) << "-" << fixed(o_.rtt_max_ms, 0)
      << " ms, loss " << fixed(o_.loss * 100, 0) << " % per round trip (" << fixed(o_.loss * 50, 1)
      << " % each way), " << (o_.in_order ? "in-order links" : "independent delays (reordering)")
      << ", seed " << o_.seed << "\n\n";
  out << std::left << std::setw(36) << "latency (ms)" << std::right << std::setw(10) << "delivered"
      << std::setw(9) << "avg" << std::setw(9) << "p50" << std::setw(9) << "p99" << std::setw(9) << "max" << "\n";
  auto row = [&](const char* label, const summary& s) {
    out << std::left << std::setw(36) << label << std::right << std::setw(10) << s.count << std::setw(9)
        << fixed(s.avg) << std::setw(9) << fixed(s.p50) << std::setw(9) << fixed(s.p99) << std::setw(9)
        << fixed(s.max) << "\n";
  };
  row("one-way (issued -> handler)", ow);
  row("round trip (issued -> echo back)", rt);
  out << "\nlate one-way (beyond the link's " << fixed(link_max, 1) << " ms): " << late
      << "; delivered out of order: " << out_of_order_ << "; failed requests: " << failed_ << "\n";
  out << "retransmits: " << resent[0] + resent[1] << " (sender " << resent[0] << " of " << messages_out[0]
      << " units, receiver " << resent[1] << " of " << messages_out[1] << " units); datagrams " << datagrams
      << ", lost " << lost << "\n";
  out << "handshake " << fixed(to_ms(connected_at_ - start_)) << " ms; virtual time "
      << fixed(std::chrono::duration<double>(end_ - start_).count(), 2) << " s; trace " << trace << "\n\n";
  out << std::left << std::setw(52) << "target: avg <= 140 ms, max <= 400 ms" << std::right << std::setw(9) << "avg"
      << std::setw(9) << "max" << "   met\n";
  auto target_row = [&](const char* label, const summary& s) {
    out << std::left << std::setw(52) << label << std::right << std::setw(9) << fixed(s.avg) << std::setw(9)
        << fixed(s.max) << "   " << (complete && s.avg <= target_avg ? "yes" : "no") << " / "
        << (complete && s.max <= target_max ? "yes" : "no") << "\n";
  };
  target_row("one-way (avg_ms, max_ms)", ow);
  target_row("round trip (KCP fast mode's avgrtt 138, maxrtt 392)", rt);
}

}  // namespace
}  // namespace kadnet::bench

int main(int argc, char** argv) {
  using namespace kadnet::bench;
  const options o = parse_or_exit("kadnet_bench_latency", usage_text, [&] { return parse_options(argc, argv); });
  latency_run run(o);
  run.run();
  run.report(std::cout);
  return 0;
}
