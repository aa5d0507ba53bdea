#pragma once
// The acceptance rules of a value store, in one place for every backend (OpenDHT's store policy
// of value.h, with BEP 44's rules for mutable items). A backend looks up what it holds for the
// key, asks check_put, and then writes (stored), extends the TTL (refreshed) or changes nothing.
//
// In order:
//   1. a signed value (owner or sig set) must verify           else bad_signature
//   2. a key held with an owner takes only that owner's values, and a key held unowned only
//      unowned values                                            else owner_mismatch
//   3. versions strictly increase: a higher version replaces; the same version with the same
//      bytes is refreshed; anything else                       is version_conflict
//   4. value.size() <= max_value_size                           else too_large
//   5. the values and bytes held after the write are within max_values and max_bytes, counting a
//      replaced value as gone                                   else quota_full
// An expired value still held (expire() not yet run) counts as absent for rules 2 and 3, and as
// replaced for rule 5.
#include <chrono>
#include <cstddef>

#include "kadnet/core/rpc_tracker.hpp"
#include "kadnet/dht/constants.hpp"
#include "kadnet/dht/stored_value.hpp"
#include "kadnet/dht/value_store.hpp"

namespace kadnet::dht {

struct store_limits {
  std::size_t max_value_size = default_max_value_size;
  std::size_t max_values = 100000;
  std::size_t max_bytes = 256u << 20;  // value bytes summed over every value held
  std::chrono::seconds max_ttl{default_value_ttl};  // longer TTLs are clamped to it
};

// What a store holds now, expired values included.
struct store_usage {
  std::size_t values = 0;
  std::size_t bytes = 0;
};

// The rules above. `held` is what the store holds for incoming.key (expired or not), or null.
// Returns stored, refreshed or a refusal; never storage_failed.
put_result check_put(const stored_value* held, const stored_value& incoming,
                     const store_limits& limits, store_usage usage, core::time_point now);

// The expiry a store keeps: at most max_ttl after now.
core::time_point clamp_expiry(core::time_point expires, core::time_point now,
                              const store_limits& limits);

}  // namespace kadnet::dht
