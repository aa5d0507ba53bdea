// (a) The payload through one kadnet::stream between two nodes of this process on 127.0.0.1,
// over their UDP session. Each node runs on an io_context and a thread of its own, as two
// processes would: the sending node and the receiving node each have a core, and neither's
// handlers migrate between cores. The application's reads and writes run on their node's strand,
// as completions do by default.
#include <arpa/inet.h>

#include <atomic>
#include <iomanip>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include "benchmarks/stream/impair_relay.hpp"
#include "benchmarks/stream/memory.hpp"
#include "benchmarks/stream/payload.hpp"
#include "benchmarks/stream/text.hpp"
#include "benchmarks/stream/transfer.hpp"
#include "kadnet/transports/node.hpp"

namespace kadnet::bench {
namespace {
namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;
constexpr std::size_t chunk = 256 * 1024;  // one write (kadnet::stream takes at most this at once)

transports::udp_impairment node_impairment(const impairment& path, std::uint64_t seed) {
  transports::udp_impairment i;
  i.loss = path.loss;
  i.reorder = path.reorder;
  i.reorder_delay = path.reorder_delay;
  i.seed = seed;
  return i;
}

// The writer's and the reader's state; each half is touched only on its node's strand.
struct transfer_job {
  transfer_settings settings;
  stream out, in;
  std::vector<std::uint8_t> write_buffer = std::vector<std::uint8_t>(chunk);
  std::vector<std::uint8_t> read_buffer = std::vector<std::uint8_t>(chunk);
  std::uint64_t sent = 0;
  payload_hash hash;
  std::atomic<std::uint64_t> received{0};
  clock_type::time_point started, all_arrived;
  std::array<std::uint8_t, 32> digest{};
  std::promise<boost::system::error_code> done;  // eof (the clean end) or the first failure
  std::atomic<bool> finished{false};

  void finish(boost::system::error_code ec) {
    if (!finished.exchange(true)) done.set_value(ec);
  }
};

void write_next(const std::shared_ptr<transfer_job>& job) {
  if (job->sent == job->settings.bytes) {
    job->out.shutdown_send();
    return;
  }
  std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, job->settings.bytes - job->sent));
  fill_payload(job->settings.content_seed, job->sent, std::span(job->write_buffer.data(), n));
  asio::async_write(job->out, asio::buffer(job->write_buffer.data(), n),
                    [job](boost::system::error_code ec, std::size_t written) {
                      job->sent += written;
                      if (ec) return job->finish(ec);
                      write_next(job);
                    });
}

void read_next(const std::shared_ptr<transfer_job>& job) {
  job->in.async_read_some(asio::buffer(job->read_buffer), [job](boost::system::error_code ec, std::size_t n) {
    job->hash.update(std::span(job->read_buffer.data(), n));
    std::uint64_t total = job->received.fetch_add(n) + n;
    if (n > 0 && total >= job->settings.bytes && job->all_arrived == clock_type::time_point{})
      job->all_arrived = clock_type::now();
    if (ec) {
      job->digest = job->hash.final();
      return job->finish(ec);
    }
    read_next(job);
  });
}

// Session counters of each node's one peer (on its strand).
core::session_counters counters_of(node& n) {
  auto peers = n.async_peers(asio::use_future);
  if (peers.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return {};
  core::session_counters total;
  for (const auto& p : peers.get()) total += p.counters;
  return total;
}

// One stream between two nodes listening on `scheme`://127.0.0.1 (udp or tcp).
transfer_result run_stream(const transfer_settings& settings, bool via_relay, const std::string& scheme) {
  transfer_result r;
  r.rss_before_kib = current_rss_kib();

  asio::io_context io_a, io_b;
  auto work_a = asio::make_work_guard(io_a), work_b = asio::make_work_guard(io_b);
  std::vector<std::thread> threads;
  threads.emplace_back([&io_a] { io_a.run(); });
  threads.emplace_back([&io_b] { io_b.run(); });

  transports::dht_settings no_dht;
  no_dht.enabled = false;  // a bare transport: no routing-table work beside the stream
  core::node_config config;
  if (settings.kadnet_window) config.datagram.streams.window_units = *settings.kadnet_window;
  auto a = std::make_unique<node>(io_a.get_executor(), core::identity::generate(), config, no_dht);
  auto b = std::make_unique<node>(io_b.get_executor(), core::identity::generate(), config, no_dht);
  std::unique_ptr<impair_relay> relay;
  auto job = std::make_shared<transfer_job>();
  job->settings = settings;
  auto teardown = [&] {
    // Streams first (on their strands), then the nodes, then the threads.
    auto closed_a = std::make_shared<std::promise<void>>(), closed_b = std::make_shared<std::promise<void>>();
    asio::dispatch(a->get_executor(), [job, closed_a] { stream gone = std::move(job->out); closed_a->set_value(); });
    asio::dispatch(b->get_executor(), [job, closed_b] { stream gone = std::move(job->in); closed_b->set_value(); });
    closed_a->get_future().wait_for(std::chrono::seconds(5));
    closed_b->get_future().wait_for(std::chrono::seconds(5));
    a->stop();
    b->stop();
    a.reset();
    b.reset();
    if (relay) relay->stop();
    work_a.reset();
    work_b.reset();
    io_a.stop();
    io_b.stop();
    for (auto& t : threads) t.join();
  };

  uri target;
  try {
    const auto here = *transports::parse_uri(scheme + "://127.0.0.1:0");
    a->listen(here);
    target = b->listen(here);
    if (settings.path.active()) {
      if (via_relay) {
        sockaddr_in server{};
        server.sin_family = AF_INET;
        server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        server.sin_port = htons(target.port);
        relay = std::make_unique<impair_relay>(server, settings.path);
        relay->start();
        target.port = relay->client_port();
      } else {
        a->set_udp_impairment(node_impairment(settings.path, settings.path.seed));
        b->set_udp_impairment(node_impairment(settings.path, settings.path.seed + 1));
      }
    }
  } catch (const std::exception& e) {
    r.note = std::string("set-up failed: ") + e.what();
    teardown();
    return r;
  }

  auto accepted = b->async_accept_stream(asio::use_future);
  auto opened = a->async_open_stream(target, asio::use_future);
  try {
    if (opened.wait_for(std::chrono::seconds(10)) != std::future_status::ready ||
        accepted.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      r.note = "the stream did not open within 10 s";
      teardown();
      return r;
    }
    job->out = opened.get();
    job->in = accepted.get();
  } catch (const std::exception& e) {
    r.note = std::string("the stream did not open: ") + e.what();
    teardown();
    return r;
  }

  auto done = job->done.get_future();
  job->started = clock_type::now();
  asio::dispatch(a->get_executor(), [job] { write_next(job); });
  asio::dispatch(b->get_executor(), [job] { read_next(job); });
  const auto deadline = job->started + settings.time_limit;
  long rss_high = r.rss_before_kib;
  while (done.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready && clock_type::now() < deadline)
    rss_high = std::max(rss_high, current_rss_kib());
  rss_high = std::max(rss_high, current_rss_kib());

  if (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    r.delivered = job->received.load();
    r.seconds = std::chrono::duration<double>(clock_type::now() - job->started).count();
    r.note = "did not finish within " + std::to_string(settings.time_limit.count()) + " s: " +
             with_commas(r.delivered) + " of " + with_commas(settings.bytes) + " bytes arrived";
  } else {
    auto ec = done.get();
    r.delivered = job->received.load();
    if (ec != asio::error::eof) {
      r.note = "the stream failed: " + ec.message();
    } else {
      r.completed = r.delivered == settings.bytes;
      if (r.completed) {
        r.seconds = std::chrono::duration<double>(job->all_arrived - job->started).count();
        r.intact = job->digest == settings.expected_hash;
      } else {
        r.note = "the stream ended after " + with_commas(r.delivered) + " of " + with_commas(settings.bytes) + " bytes";
      }
    }
  }
  if (!r.completed && r.seconds == 0) r.seconds = std::chrono::duration<double>(clock_type::now() - job->started).count();

  // What the sessions sent and received (packets: over UDP datagrams handed to the socket; impairment drops
  // happen below that count), and what the relay saw.
  auto ca = counters_of(*a), cb = counters_of(*b);
  std::ostringstream note;
  if (!r.note.empty()) note << r.note << "; ";
  note << "a->b " << with_commas(ca.packets_out) << " packets, " << with_commas(cb.packets_in) << " arrived";
  if (ca.packets_out > 0)
    note << " (" << std::fixed << std::setprecision(2) << (100.0 * static_cast<double>(ca.packets_out - std::min(cb.packets_in, ca.packets_out)) /
                     static_cast<double>(ca.packets_out))
         << " % lost)";
  note << "; b->a " << with_commas(cb.packets_out) << ", " << with_commas(ca.packets_in) << " arrived";
  r.rss_after_kib = current_rss_kib();
  r.peak_rss_after_kib = peak_rss_kib();
  r.rss_high_kib = rss_high;
  teardown();
  if (relay) {
    const auto& s = relay->to_server();
    const auto& c = relay->to_client();
    note << "; relay a->b: " << with_commas(s.in) << " in, " << with_commas(s.lost) << " dropped, "
         << with_commas(s.reordered) << " held, " << with_commas(s.send_drops) << " unsendable; b->a: " << with_commas(c.in) << " in, " << with_commas(c.lost)
         << " dropped, " << with_commas(c.reordered) << " held, " << with_commas(c.send_drops) << " unsendable";
  }
  r.note = note.str();
  return r;
}

}  // namespace

transfer_result run_kadnet(const transfer_settings& settings, bool via_relay) {
  return run_stream(settings, via_relay, "udp");
}

transfer_result run_kadnet_over_tcp(const transfer_settings& settings) {
  return run_stream(settings, false, "tcp");
}

}  // namespace kadnet::bench
