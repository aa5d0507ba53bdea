// libFuzzer target for a subscriber's notification path (dht/key_watches.cpp, PROTOCOL.md 8.10).
//
// A watch of one key has delivered version 1 (a base whose length the first input byte picks)
// and is registered at one replica. The rest of the input is used twice: as the diff of a
// notification of version 2, and as a whole message that, if it decodes to a STORE, is handed
// over as a notification from that replica. Nothing may crash; every reply is an ACK or NACK;
// deliveries come in strictly increasing versions, and a diff delivered is exactly what
// apply_patch makes of the version before it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/key_watches.hpp"

using namespace kadnet;
using namespace kadnet::dht;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const core::time_point now = core::time_point{} + std::chrono::hours(1);
  core::node_id::bytes_type kb{}, rb{};
  kb.fill(0x42);
  rb.fill(0x24);
  const core::node_id key(kb), replica(rb);
  const patch_limits limits{.max_splices = 64, .max_value = 4096};

  key_watches watches(limits);
  watches.add(key, 1, now + std::chrono::seconds(60)).replicas[replica] = now + std::chrono::seconds(180);
  core::wire::store base{key, 1, 60, std::nullopt, byte_vector(static_cast<std::size_t>(data[0]) * 8)};
  for (std::size_t i = 0; i < base.value.size(); ++i) base.value[i] = static_cast<std::uint8_t>(i * 13 + 1);
  base.notify = true;
  watches.on_notify(replica, base, now);

  byte_span rest(data + 1, size - 1);
  core::wire::store diff{key, 2, 60, std::nullopt, byte_vector(rest.begin(), rest.end())};
  diff.notify = true;
  diff.patch = true;
  watches.on_notify(replica, diff, now);
  core::wire::message m;
  if (!core::wire::decode(rest, m))
    if (auto* st = std::get_if<core::wire::store>(&m.body)) watches.on_notify(replica, *st, now);

  std::optional<listen_delivery> previous;
  while (auto d = watches.poll()) {
    if (previous && d->value.version <= previous->value.version) std::abort();
    if (d->diff) {
      byte_vector expected;
      if (!previous || previous->value.version + 1 != d->value.version ||
          apply_patch(previous->value.value, *d->diff, limits, expected) || expected != d->value.value)
        std::abort();
    }
    previous = std::move(d);
  }
  return 0;
}
