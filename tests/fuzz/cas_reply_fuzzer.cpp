// libFuzzer target: the compare-and-swap reply decoders (dht/cas_codec.hpp) and the acceptor
// (dht/cas_acceptor.hpp) fed a STORE decoded from the same bytes. A reply that decodes re-encodes
// to the same bytes; the acceptor never throws and keeps within its limits.
#include <cstdlib>

#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/cas_acceptor.hpp"
#include "kadnet/dht/cas_codec.hpp"
#include "kadnet/dht/memory_store.hpp"

namespace {

template <typename T, typename Decode, typename Encode>
void round_trip(kadnet::byte_span in, Decode decode, Encode encode) {
  T value{};
  if (decode(in, value)) return;
  kadnet::byte_vector again;
  encode(value, again);
  if (again != kadnet::byte_vector(in.begin(), in.end())) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kadnet;
  byte_span in(data, size);
  constexpr std::size_t max_value = 64 * 1024;
  round_trip<dht::cas_promise>(
      in, [](byte_span b, dht::cas_promise& p) { return dht::decode_promise(b, p, max_value); },
      [](const dht::cas_promise& p, byte_vector& out) { dht::encode_promise(p, out); });
  round_trip<dht::cas_conflict>(
      in, [](byte_span b, dht::cas_conflict& c) { return dht::decode_conflict(b, c, max_value); },
      [](const dht::cas_conflict& c, byte_vector& out) { dht::encode_conflict(c, out); });
  round_trip<dht::ballot>(in, [](byte_span b, dht::ballot& x) { return dht::decode_ballot(b, x); },
                          [](const dht::ballot& x, byte_vector& out) { dht::encode_ballot(x, out); });

  // The same bytes as a message: a consensus STORE goes to an acceptor, twice (a retransmission).
  core::wire::message m;
  if (core::wire::decode(in, m)) return 0;
  const auto* s = std::get_if<core::wire::store>(&m.body);
  if (!s || !s->consensus) return 0;
  dht::memory_store store;
  dht::cas_acceptor acceptor(store, dht::cas_acceptor_limits{.max_keys = 2});
  const auto now = core::time_point{} + std::chrono::hours(1);
  acceptor.handle(*s, now);
  acceptor.handle(*s, now);
  if (acceptor.keys() > 2 || store.size() > 1) std::abort();
  return 0;
}
