#include "kadnet/dht/memory_store.hpp"

#include <algorithm>

namespace kadnet::dht {

put_result memory_store::check(const entry* held, const stored_value& v,
                               core::time_point now) const {
  return check_put(held ? &held->value : nullptr, v, limits_, {values_.size(), bytes_}, now);
}

put_result memory_store::put(stored_value v, core::time_point now) {
  v.expires = clamp_expiry(v.expires, now, limits_);
  auto it = values_.find(v.key);
  put_result r = check(it == values_.end() ? nullptr : &it->second, v, now);
  if (r == put_result::quota_full && expire(now) > 0) {
    // Expired values made room, or took the held one with them.
    it = values_.find(v.key);
    r = check(it == values_.end() ? nullptr : &it->second, v, now);
  }
  if (r == put_result::refreshed) {
    entry& e = it->second;
    e.value.original = e.value.original || v.original;
    if (v.expires > e.value.expires) {
      e.value.expires = v.expires;
      expiries_.erase(e.expiry);
      e.expiry = expiries_.emplace(v.expires, v.key);
    }
    return r;
  }
  if (r != put_result::stored) return r;

  if (it != values_.end()) {
    bytes_ -= it->second.value.value.size();
    expiries_.erase(it->second.expiry);
    values_.erase(it);
  }
  bytes_ += v.value.size();
  auto index = expiries_.emplace(v.expires, v.key);
  values_.emplace(v.key, entry{std::move(v), index});
  return r;
}

std::optional<stored_value> memory_store::get(const core::node_id& key,
                                              core::time_point now) const {
  auto it = values_.find(key);
  if (it == values_.end() || !it->second.value.live(now)) return std::nullopt;
  return it->second.value;
}

std::size_t memory_store::expire(core::time_point now) {
  std::size_t removed = 0;
  while (!expiries_.empty() && expiries_.begin()->first <= now) {
    auto it = values_.find(expiries_.begin()->second);
    bytes_ -= it->second.value.value.size();
    values_.erase(it);
    expiries_.erase(expiries_.begin());
    ++removed;
  }
  return removed;
}

std::vector<stored_value> memory_store::all(core::time_point now) const {
  std::vector<stored_value> out;
  out.reserve(values_.size());
  for (const auto& [key, e] : values_)
    if (e.value.live(now)) out.push_back(e.value);
  // Key order, as the SQLite backend gives: replication is then the same on every run.
  std::sort(out.begin(), out.end(),
            [](const stored_value& a, const stored_value& b) { return a.key < b.key; });
  return out;
}

std::optional<core::time_point> memory_store::next_expiry() const {
  if (expiries_.empty()) return std::nullopt;
  return expiries_.begin()->first;
}

}  // namespace kadnet::dht
