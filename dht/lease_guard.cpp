#include "kadnet/dht/lease_guard.hpp"

#include <algorithm>

#include "kadnet/dht/lock_record.hpp"

namespace kadnet::dht {

lease_guard::lease_guard(std::size_t max_keys) : max_keys_(std::max<std::size_t>(max_keys, 1)) {}

void lease_guard::observe(const std::optional<stored_value>& held, core::time_point now) {
  if (!held) return;
  lock_record rec;
  if (decode_lock_record(held->value, rec)) return;  // not a lock: nothing to date
  auto it = seen_.find(held->key);
  if (it != seen_.end() && it->second.version == held->version && now < it->second.value_expires) {
    it->second.value_expires = std::max(it->second.value_expires, held->expires);  // refreshed
    return;  // dated already
  }
  if (it == seen_.end() && seen_.size() >= max_keys_) make_room(now);
  seen_[held->key] = seen{held->version, now, now + (rec.held ? rec.lease : std::chrono::milliseconds(0)), held->expires};
}

std::optional<core::wire::nack> lease_guard::check(const core::node_id& writer,
                                                   const std::optional<stored_value>& held,
                                                   core::time_point now) {
  if (!held) return std::nullopt;
  lock_record rec;
  if (decode_lock_record(held->value, rec) || !rec.held || rec.holder == writer) return std::nullopt;
  observe(held, now);
  const seen& s = seen_.at(held->key);
  if (now >= s.until) return std::nullopt;
  core::wire::nack n{static_cast<std::uint8_t>(core::wire::opcode::store), core::wire::nack_code::locked,
                     "the key is locked by another node", {}};
  encode_lock_refusal(lock_refusal{rec.holder, rec.token,
                                   std::chrono::ceil<std::chrono::milliseconds>(s.until - now)},
                      n.data);
  return n;
}

void lease_guard::make_room(core::time_point now) {
  auto over = std::find_if(seen_.begin(), seen_.end(), [&](const auto& e) { return e.second.until <= now; });
  seen_.erase(over != seen_.end() ? over : seen_.begin());
}

}  // namespace kadnet::dht
