// libFuzzer target: the lock record and lock refusal decoders (dht/lock_record.hpp), the lock
// rules over whatever the bytes are, and a replica's lease guard judging them. A record or
// refusal that decodes re-encodes to the same bytes; a rule's record always decodes.
#include <chrono>
#include <cstdlib>

#include "kadnet/dht/lease_guard.hpp"
#include "kadnet/dht/lock_record.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kadnet;
  using namespace std::chrono_literals;
  byte_span in(data, size);
  byte_vector bytes(in.begin(), in.end());

  dht::lock_record rec;
  if (!dht::decode_lock_record(in, rec) && dht::lock_record_bytes(rec) != bytes) std::abort();
  dht::lock_refusal refusal;
  if (!dht::decode_lock_refusal(in, refusal)) {
    byte_vector again;
    dht::encode_lock_refusal(refusal, again);
    if (again != bytes) std::abort();
  }

  const auto self = core::node_id::hash_of(as_bytes("self"));
  const auto other = core::node_id::hash_of(as_bytes("other"));
  const std::optional<byte_vector> current(bytes);
  for (const dht::lock_step& step : {dht::acquire_step(current, self, 1s), dht::renew_step(current, self, rec.token, 1s),
                                     dht::release_step(current, self, rec.token)}) {
    dht::lock_record next;
    if (const auto* r = std::get_if<dht::lock_record>(&step))
      if (dht::decode_lock_record(dht::lock_record_bytes(*r), next) || next != *r) std::abort();
  }

  dht::stored_value held;
  held.key = other;
  held.version = 1;
  held.value = bytes;
  const auto now = core::time_point{} + std::chrono::hours(1);
  held.expires = now + std::chrono::hours(1);
  dht::lease_guard guard(1);
  guard.observe(held, now);
  guard.check(self, held, now);
  guard.check(other, held, now + 1s);
  if (guard.dated() > 1) std::abort();
  return 0;
}
