#include "kadnet/dht/store_write.hpp"

#include <cassert>

#include "kadnet/core/errors.hpp"

namespace kadnet::dht {

store_write write_store(value_store& store, const core::wire::store& s, const patch_limits& limits,
                        core::time_point now) {
  assert(!s.consensus);
  store_write w;
  auto held = store.get(s.key, now);
  if (held) w.held_version = held->version;
  if (!s.patch) {
    w.result = store.put(from_store(s, now), now);
    return w;
  }

  // The cheap refusal first: a diff against a version this replica does not hold is not read.
  if (!held || s.version == 0 || held->version != s.version - 1) {
    w.result = put_result::version_conflict;
    return w;
  }
  value_patch diff;
  if (decode_patch(s.value, limits, diff)) {
    // A diff that claims more inserted bytes than a value may hold says too_large when decoded;
    // the sender learns the same as for any diff that does not fit.
    w.result = put_result::bad_patch;
    return w;
  }
  byte_vector whole;
  if (auto ec = apply_patch(held->value, diff, limits, whole)) {
    w.result = ec == core::errc::too_large ? put_result::too_large : put_result::bad_patch;
    return w;
  }
  stored_value v = from_store(s, now);
  v.value = std::move(whole);
  w.result = store.put(std::move(v), now);
  if (w.result == put_result::stored) w.diff = std::move(diff);
  return w;
}

}  // namespace kadnet::dht
