#include "kadnet/dht/store_rules.hpp"

#include <algorithm>

namespace kadnet::dht {

put_result check_put(const stored_value* held, const stored_value& incoming,
                     const store_limits& limits, store_usage usage, core::time_point now) {
  // The signature first: a forged value must not learn anything about what is held.
  if (incoming.signed_value() && !verify_owner_signature(incoming)) return put_result::bad_signature;

  const stored_value* current = held && held->live(now) ? held : nullptr;
  if (current) {
    // The first owner of a live key keeps it; an unowned one stays unowned while it lives (else
    // anyone could sign a higher version of a free lock or a compare-and-swap key and shut every
    // other writer out).
    if (incoming.owner != current->owner) return put_result::owner_mismatch;
    if (incoming.version < current->version) return put_result::version_conflict;
    if (incoming.version == current->version) {
      // Same version, same bytes (and, when owned, the same owner, checked above): a refresh.
      // The held signature stays; the incoming one verified over the same bytes.
      return incoming.value == current->value ? put_result::refreshed : put_result::version_conflict;
    }
  }

  if (incoming.value.size() > limits.max_value_size) return put_result::too_large;

  // Quota after the write: a held key (live or expired) is replaced, not added.
  std::size_t values = usage.values + (held ? 0 : 1);
  std::size_t bytes = usage.bytes - (held ? std::min(held->value.size(), usage.bytes) : 0) +
                      incoming.value.size();
  if (values > limits.max_values || bytes > limits.max_bytes) return put_result::quota_full;
  return put_result::stored;
}

core::time_point clamp_expiry(core::time_point expires, core::time_point now,
                              const store_limits& limits) {
  return std::min(expires, now + limits.max_ttl);
}

}  // namespace kadnet::dht
