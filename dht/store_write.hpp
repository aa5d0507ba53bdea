#pragma once
// A replica's write path for a STORE that is not a compare-and-swap phase (PROTOCOL.md 5.10,
// 8.3, 8.8): a plain STORE goes to the value_store as it is; a patched one (flags bit 2, its
// value a diff of dht/value_patch.hpp) is first turned into the whole value it describes.
//
// A patch applies only to a live held value of exactly version `s.version - 1` (otherwise
// version_conflict, and held_version tells the sender what is held); a diff that does not decode
// or does not fit that base is bad_patch; a result over limits.max_value is too_large. The
// result then goes through the store's own rules like any value: an owner signature is checked
// over the whole result (BEP 44: what a replica holds is always a signed whole value), then
// owner, versions, size and quota.
//
// Work is bounded whatever the diff claims: the version is compared before the diff is read;
// decoding costs O(diff bytes) and refuses more than limits.max_splices splices or more inserted
// bytes than limits.max_value before allocating; applying checks every splice against the base
// first and then costs O(base + result), each at most the value limit; one signature check, as
// for a plain STORE.
#include <cstdint>
#include <optional>

#include "kadnet/core/rpc_tracker.hpp"
#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/value_patch.hpp"
#include "kadnet/dht/value_store.hpp"

namespace kadnet::dht {

struct store_write {
  put_result result = put_result::stored;
  std::uint64_t held_version = 0;   // the live version held before the write (0: none)
  // For a patched STORE that was stored: the diff it applied, so that what follows a write
  // (listeners, seed 003 goal 6.4) can pass the change on instead of the whole value.
  std::optional<value_patch> diff;
};

// Writes `s` (consensus unset) into `store`. Never throws on peer input.
store_write write_store(value_store& store, const core::wire::store& s, const patch_limits& limits,
                        core::time_point now);

}  // namespace kadnet::dht
