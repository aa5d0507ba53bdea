// Compression codecs (compression/*_codec.cpp): compress and decompress of a 64 KiB English-like
// text and a 64 KiB binary sample, per codec. Bytes/s counts uncompressed bytes in both
// directions, so the numbers compare directly; "ratio" is uncompressed / compressed size.
#include <benchmark/benchmark.h>

#include <array>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kadnet/compression/codec.hpp"

namespace {

namespace kc = kadnet::compression;
using bytes = std::vector<std::uint8_t>;

constexpr std::size_t sample_size = 64 * 1024;

// Words drawn with a fixed seed: the same bytes on every run and machine.
bytes text_sample() {
  static constexpr std::array<std::string_view, 32> words{
      "the",     "node",   "sends",   "a",      "lookup", "to",       "its",   "closest",
      "peers",   "and",    "each",    "answer", "brings", "nodes",    "nearer", "the",
      "target",  "value",  "is",      "stored", "under",  "key",      "of",    "bucket",
      "refresh", "ping",   "distance", "with",  "in",     "network", "record", "expires"};
  std::mt19937 rng(42);
  bytes out;
  while (out.size() < sample_size) {
    auto word = words[rng() % words.size()];
    out.insert(out.end(), word.begin(), word.end());
    out.push_back(rng() % 11 == 0 ? '.' : ' ');
  }
  out.resize(sample_size);
  return out;
}

// Binary with some structure, like serialised records: 64-byte records whose id and length
// fields repeat in pattern, with a random 32-byte payload.
bytes binary_sample() {
  std::mt19937 rng(7);
  bytes out;
  for (std::uint32_t record = 0; out.size() < sample_size; ++record) {
    const std::uint8_t header[] = {0x4b, 0x44, 0x01, static_cast<std::uint8_t>(record),
                                   static_cast<std::uint8_t>(record >> 8), 0x00, 0x20, 0x00};
    out.insert(out.end(), std::begin(header), std::end(header));
    for (int i = 0; i < 32; ++i) out.push_back(static_cast<std::uint8_t>(rng()));
    out.insert(out.end(), 24, static_cast<std::uint8_t>(record % 4));
  }
  out.resize(sample_size);
  return out;
}

double ratio(const bytes& input, const bytes& packed) {
  return static_cast<double>(input.size()) / static_cast<double>(packed.size());
}

void bench_compress(benchmark::State& state, kc::codec_id id, const bytes& input) {
  const kc::codec& codec = kc::get_codec(id);
  bytes out;
  for (auto _ : state) {
    out.clear();  // keeps the capacity: measures the codec, not the vector
    if (codec.compress(input, out)) {
      state.SkipWithError("compress failed");
      break;
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
  state.counters["ratio"] = ratio(input, out);
}

void bench_decompress(benchmark::State& state, kc::codec_id id, const bytes& input) {
  const kc::codec& codec = kc::get_codec(id);
  bytes packed, out;
  if (codec.compress(input, packed)) {
    state.SkipWithError("compress failed");
    return;
  }
  for (auto _ : state) {
    out.clear();
    if (codec.decompress(packed, input.size(), out)) {
      state.SkipWithError("decompress failed");
      break;
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  if (out != input) state.SkipWithError("decompress does not round-trip");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
  state.counters["ratio"] = ratio(input, packed);
}

// One registration per codec, sample and direction, named compress/<codec>/<sample>.
[[maybe_unused]] const bool registered = [] {
  static const bytes text = text_sample();
  static const bytes binary = binary_sample();
  for (kc::codec_id id : kc::all_codecs()) {
    const std::string codec(kc::codec_name(id));
    for (const auto& [name, sample] :
         {std::pair{"text_64KiB", &text}, std::pair{"binary_64KiB", &binary}}) {
      benchmark::RegisterBenchmark(
          ("compress/" + codec + "/" + name).c_str(),
          [id, sample](benchmark::State& s) { bench_compress(s, id, *sample); });
      benchmark::RegisterBenchmark(
          ("decompress/" + codec + "/" + name).c_str(),
          [id, sample](benchmark::State& s) { bench_decompress(s, id, *sample); });
    }
  }
  return true;
}();

}  // namespace
