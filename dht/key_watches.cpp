#include "kadnet/dht/key_watches.hpp"

#include <algorithm>

#include "kadnet/dht/cas_codec.hpp"
#include "kadnet/dht/store_rules.hpp"

namespace kadnet::dht {

namespace wire = core::wire;

namespace {

wire::message_body refuse(wire::nack_code code, std::string text, byte_vector data = {}) {
  return wire::nack{static_cast<std::uint8_t>(wire::opcode::store), code, std::move(text), std::move(data)};
}

}  // namespace

key_watch& key_watches::add(const core::node_id& key, subscription_id subscription, core::time_point next_refresh) {
  auto [it, fresh] = by_key_.try_emplace(key);
  key_watch& w = it->second;
  if (fresh) {
    w.key = key;
    w.next_refresh = next_refresh;
  }
  w.subscriptions.push_back(subscription);
  key_of_[subscription] = key;
  if (w.latest) deliveries_.push_back(listen_delivery{subscription, *w.latest, std::nullopt});
  return w;
}

std::optional<key_watches::removed> key_watches::remove(subscription_id subscription) {
  auto k = key_of_.find(subscription);
  if (k == key_of_.end()) return std::nullopt;
  auto it = by_key_.find(k->second);
  key_of_.erase(k);
  key_watch& w = it->second;
  std::erase(w.subscriptions, subscription);
  auto waiting = deliveries_.begin() + static_cast<std::ptrdiff_t>(next_delivery_);
  deliveries_.erase(std::remove_if(waiting, deliveries_.end(),
                                   [&](const listen_delivery& d) { return d.subscription == subscription; }),
                    deliveries_.end());
  if (!w.subscriptions.empty()) return std::nullopt;
  removed gone{w.key, {}};
  for (const auto& replica : w.replicas) gone.replicas.push_back(replica.first);
  by_key_.erase(it);
  return gone;
}

key_watch* key_watches::find(const core::node_id& key) {
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : &it->second;
}

put_result key_watches::offer(key_watch& w, stored_value v, std::optional<value_patch> diff, core::time_point now) {
  // The store's rules judge "newer" (and keep an owned key's owner); limits play no part here:
  // the value already passed them where it came from, and a delivery is not kept twice.
  store_limits unlimited{.max_value_size = SIZE_MAX, .max_values = SIZE_MAX, .max_bytes = SIZE_MAX};
  put_result verdict = check_put(w.latest ? &*w.latest : nullptr, v, unlimited, store_usage{}, now);
  if (verdict != put_result::stored) return verdict;
  if (diff && !(w.latest && w.latest->version + 1 == v.version)) diff.reset();
  v.original = false;
  for (subscription_id s : w.subscriptions) deliveries_.push_back(listen_delivery{s, v, diff});
  w.latest = std::move(v);
  return verdict;
}

wire::message_body key_watches::on_notify(const core::node_id& from, const wire::store& s, core::time_point now) {
  key_watch* w = find(s.key);
  if (!w || !w->replicas.contains(from)) return refuse(wire::nack_code::not_found, "not listening to this key here");
  if (s.version == 0) return refuse(wire::nack_code::bad_request, "a notification names no version");
  stored_value v = from_store(s, now);
  std::optional<value_patch> diff;
  if (s.patch) {
    if (!w->latest || w->latest->version + 1 != s.version) {
      byte_vector held;
      encode_version(w->latest ? w->latest->version : 0, held);
      return refuse(wire::nack_code::version_conflict, "the diff's base is not the version held", std::move(held));
    }
    value_patch decoded;
    byte_vector whole;
    if (decode_patch(s.value, limits_, decoded) || apply_patch(w->latest->value, decoded, limits_, whole))
      return refuse(wire::nack_code::bad_request, "diff does not apply to the version held");
    v.value = std::move(whole);
    diff = std::move(decoded);
  }
  put_result verdict = offer(*w, std::move(v), std::move(diff), now);
  if (verdict == put_result::bad_signature || verdict == put_result::owner_mismatch)
    return refuse(wire::nack_code::bad_request, std::string(nack_text(verdict)));
  // Stored, or not newer than what was delivered: either way the replica has nothing to fix.
  return wire::ack{static_cast<std::uint8_t>(wire::opcode::store), {}};
}

std::optional<listen_delivery> key_watches::poll() {
  if (next_delivery_ == deliveries_.size()) return std::nullopt;
  std::optional<listen_delivery> d(std::in_place);
  std::swap(*d, deliveries_[next_delivery_++]);
  if (next_delivery_ == deliveries_.size()) {
    deliveries_.clear();
    next_delivery_ = 0;
  }
  return d;
}

std::vector<core::node_id> key_watches::due(core::time_point now, std::chrono::seconds every) {
  std::vector<core::node_id> keys;
  for (auto& [key, w] : by_key_) {
    if (w.next_refresh > now) continue;
    w.next_refresh = now + every;
    std::erase_if(w.replicas, [&](const auto& r) { return r.second <= now; });
    keys.push_back(key);
  }
  return keys;
}

std::optional<core::time_point> key_watches::next_refresh() const {
  std::optional<core::time_point> t;
  for (const auto& entry : by_key_)
    if (!t || entry.second.next_refresh < *t) t = entry.second.next_refresh;
  return t;
}

}  // namespace kadnet::dht
