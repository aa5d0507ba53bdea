// Opcode-message codec (core/wire/message.cpp): encode and decode of a PING, a 1 KiB plugin
// call and a 64 KiB owner-signed STORE. Bytes/s counts wire bytes; items/s counts messages.
#include <benchmark/benchmark.h>

#include "kadnet/core/wire/message.hpp"

namespace {

using namespace kadnet;
using namespace kadnet::core::wire;

message ping_message() { return make_message(1, ping{}); }

message plugin_message() { return make_plugin_call(64, 2, byte_vector(1024, 0x42)); }

message store_message() {
  store s;
  s.key = core::node_id::hash_of(as_bytes("bench/key"));
  s.version = 1;
  s.ttl_seconds = 3600;
  s.owner = store_owner{core::node_id::hash_of(as_bytes("bench/owner")), {}};
  s.value.assign(64 * 1024, 0x17);
  return make_message(3, std::move(s));
}

void bench_encode(benchmark::State& state, const message& m) {
  byte_vector out;
  for (auto _ : state) {
    out.clear();  // keeps the capacity: measures encoding, not allocation
    encode(m, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
  state.SetItemsProcessed(state.iterations());
}

void bench_decode(benchmark::State& state, const message& m) {
  byte_vector wire;
  encode(m, wire);
  message out;
  for (auto _ : state) {
    auto ec = decode(wire, out);
    benchmark::DoNotOptimize(ec);
    benchmark::DoNotOptimize(out);
  }
  if (out != m) state.SkipWithError("decode does not round-trip");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * wire.size()));
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK_CAPTURE(bench_encode, ping, ping_message());
BENCHMARK_CAPTURE(bench_decode, ping, ping_message());
BENCHMARK_CAPTURE(bench_encode, plugin_call_1KiB, plugin_message());
BENCHMARK_CAPTURE(bench_decode, plugin_call_1KiB, plugin_message());
BENCHMARK_CAPTURE(bench_encode, store_64KiB, store_message());
BENCHMARK_CAPTURE(bench_decode, store_64KiB, store_message());

}  // namespace
