// Round trips between two real nodes over TCP loopback, with a fixed number of requests in flight.
#include <benchmark/benchmark.h>

#include <atomic>
#include <future>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "kadnet/transports/node.hpp"

namespace {

using namespace kadnet;

// Keeps `in_flight` requests outstanding until `total` completed; returns when all are done.
template <typename Issue>
void run_window(std::size_t total, std::size_t in_flight, Issue issue) {
  std::atomic<std::size_t> started{0}, finished{0}, failed{0};
  std::promise<void> done;
  std::function<void()> next = [&] {
    if (started.fetch_add(1) >= total) return;
    issue([&](bool ok) {
      if (!ok) failed.fetch_add(1);
      if (finished.fetch_add(1) + 1 == total) done.set_value();
      else next();
    });
  };
  for (std::size_t i = 0; i < in_flight; ++i) next();
  done.get_future().wait();
  if (failed.load() != 0) throw std::runtime_error("requests failed in the benchmark");
}

struct two_nodes {
  boost::asio::io_context io{2};
  node a{io.get_executor()}, b{io.get_executor()};
  uri b_address;
  std::vector<std::thread> threads;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};

  two_nodes() {
    b.add_handler(64, [](const node_id&, byte_span in) { return byte_vector(in.begin(), in.end()); });
    b_address = b.listen(*transports::parse_uri("tcp://127.0.0.1:0"));
    for (int i = 0; i < 2; ++i) threads.emplace_back([this] { io.run(); });
    std::promise<void> up;
    a.async_ping(b_address, [&](boost::system::error_code, std::chrono::microseconds) { up.set_value(); });
    up.get_future().wait();
  }
  ~two_nodes() {
    a.stop();
    b.stop();
    work.reset();
    io.stop();
    for (auto& t : threads) t.join();
  }
};

void BM_ping_round_trips_tcp(benchmark::State& state) {
  two_nodes net;
  const std::size_t in_flight = static_cast<std::size_t>(state.range(0));
  const std::size_t batch = 20000;
  for (auto _ : state) {
    run_window(batch, in_flight, [&](auto complete) {
      net.a.async_ping(net.b.id(), [complete](boost::system::error_code ec, std::chrono::microseconds) {
        complete(!ec);
      });
    });
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
  state.counters["in_flight"] = static_cast<double>(in_flight);
}
BENCHMARK(BM_ping_round_trips_tcp)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_plugin_call_1k_tcp(benchmark::State& state) {
  two_nodes net;
  const std::size_t batch = 10000;
  byte_vector payload(1024, 0x42);
  for (auto _ : state) {
    run_window(batch, 64, [&](auto complete) {
      net.a.async_call(net.b.id(), 64, payload, [complete](boost::system::error_code ec, reply) { complete(!ec); });
    });
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch * payload.size()));
}
BENCHMARK(BM_plugin_call_1k_tcp)->Unit(benchmark::kMillisecond)->UseRealTime();

// Full handshakes over TCP loopback: a fresh initiator node dials the same responder.
void BM_tcp_connect_and_handshake(benchmark::State& state) {
  two_nodes net;
  for (auto _ : state) {
    node fresh(net.io.get_executor());
    std::promise<boost::system::error_code> up;
    fresh.async_connect(net.b_address, std::nullopt,
                        [&](boost::system::error_code ec, node_id) { up.set_value(ec); });
    if (up.get_future().get()) state.SkipWithError("handshake failed");
    fresh.stop();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_tcp_connect_and_handshake)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
