#include "kadnet/dht/listener_registry.hpp"

#include <algorithm>

namespace kadnet::dht {

listener_registry::subscribe_result listener_registry::subscribe(const core::node_id& key,
                                                                 const core::node_id& subscriber,
                                                                 const core::wire::listen_request& request,
                                                                 core::time_point now) {
  if (request.lease_seconds == 0) {
    remove(key, subscriber);
    return subscribe_result::cancelled;
  }
  auto lease = std::min(std::chrono::seconds(request.lease_seconds), limits_.max_lease);
  if (listener* l = find(key, subscriber)) {
    l->expires = now + lease;
    l->known_version = request.known_version;
    l->failures = 0;
    return subscribe_result::listening;
  }
  auto full = [&] {
    auto mine = per_subscriber_.find(subscriber);
    return size_ >= limits_.max_listeners ||
           (mine != per_subscriber_.end() && mine->second >= limits_.max_per_subscriber);
  };
  if (full()) sweep(now);
  if (full()) return subscribe_result::full;
  by_key_[key].push_back(listener{subscriber, now + lease, request.known_version, 0});
  ++per_subscriber_[subscriber];
  ++size_;
  return subscribe_result::listening;
}

std::span<listener> listener_registry::live(const core::node_id& key, core::time_point now) {
  erase_if_expired(key, now);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return {};
  return it->second;
}

void listener_registry::acknowledged(const core::node_id& key, const core::node_id& subscriber,
                                     std::uint64_t version) {
  if (listener* l = find(key, subscriber)) {
    l->known_version = std::max(l->known_version, version);
    l->failures = 0;
  }
}

void listener_registry::failed(const core::node_id& key, const core::node_id& subscriber) {
  listener* l = find(key, subscriber);
  if (l && ++l->failures >= limits_.max_failures) remove(key, subscriber);
}

void listener_registry::remove(const core::node_id& key, const core::node_id& subscriber) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  auto removed = std::erase_if(it->second, [&](const listener& l) { return l.subscriber == subscriber; });
  if (removed == 0) return;
  drop_count(subscriber);
  if (it->second.empty()) by_key_.erase(it);
}

listener* listener_registry::find(const core::node_id& key, const core::node_id& subscriber) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return nullptr;
  auto l = std::ranges::find(it->second, subscriber, &listener::subscriber);
  return l == it->second.end() ? nullptr : &*l;
}

void listener_registry::erase_if_expired(const core::node_id& key, core::time_point now) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  std::erase_if(it->second, [&](const listener& l) {
    if (now < l.expires) return false;
    drop_count(l.subscriber);
    return true;
  });
  if (it->second.empty()) by_key_.erase(it);
}

void listener_registry::sweep(core::time_point now) {
  std::vector<core::node_id> keys;
  keys.reserve(by_key_.size());
  for (const auto& entry : by_key_) keys.push_back(entry.first);
  for (const auto& key : keys) erase_if_expired(key, now);
}

void listener_registry::drop_count(const core::node_id& subscriber) {
  --size_;
  auto it = per_subscriber_.find(subscriber);
  if (it != per_subscriber_.end() && --it->second == 0) per_subscriber_.erase(it);
}

}  // namespace kadnet::dht
