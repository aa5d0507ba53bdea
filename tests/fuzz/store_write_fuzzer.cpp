// libFuzzer target for a replica's write path (dht/store_write.cpp): patched STOREs from a peer.
//
// The first input byte picks the length of the value held at version 1; the rest is used twice:
// as the diff of a patched STORE of version 2 for that key, and as a whole message that, if it
// decodes to a STORE without consensus, is written too. Nothing may crash, and a diff is either
// refused with the held value untouched or stored as exactly what apply_patch makes of the base.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/memory_store.hpp"
#include "kadnet/dht/store_write.hpp"

using namespace kadnet;
using namespace kadnet::dht;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const core::time_point now = core::time_point{} + std::chrono::hours(1);
  core::node_id::bytes_type kb{};
  kb.fill(0x42);
  const core::node_id key(kb);

  memory_store store(store_limits{.max_value_size = 4096});
  patch_limits limits{.max_splices = 64, .max_value = 4096};
  stored_value base;
  base.key = key;
  base.version = 1;
  base.value.resize(static_cast<std::size_t>(data[0]) * 8);
  for (std::size_t i = 0; i < base.value.size(); ++i) base.value[i] = static_cast<std::uint8_t>(i * 13 + 1);
  base.expires = now + std::chrono::seconds(60);
  if (store.put(base, now) != put_result::stored) std::abort();

  byte_span rest(data + 1, size - 1);
  core::wire::store s{key, 2, 60, std::nullopt, byte_vector(rest.begin(), rest.end())};
  s.patch = true;
  store_write w = write_store(store, s, limits, now);
  auto held = store.get(key, now);
  if (!held) std::abort();
  if (w.result == put_result::stored) {
    value_patch p;
    byte_vector expected;
    if (decode_patch(rest, limits, p) || apply_patch(base.value, p, limits, expected)) std::abort();
    if (held->version != 2 || held->value != expected || !w.diff || *w.diff != p) std::abort();
  } else if (held->version != 1 || held->value != base.value || w.diff) {
    std::abort();
  }

  core::wire::message m;
  if (core::wire::decode(rest, m)) return 0;
  if (auto* st = std::get_if<core::wire::store>(&m.body); st && !st->consensus) write_store(store, *st, limits, now);
  return 0;
}
