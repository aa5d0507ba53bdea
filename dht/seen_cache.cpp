#include "kadnet/dht/seen_cache.hpp"

#include <cstring>

namespace kadnet::dht {

std::size_t message_name_hash::operator()(const message_name& n) const {
  // Origins are public keys: their bytes are already well mixed.
  std::size_t h;
  std::memcpy(&h, n.origin.bytes().data(), sizeof h);
  return h ^ std::hash<std::uint64_t>{}(n.sequence);
}

bool seen_cache::insert(const core::node_id& origin, std::uint64_t sequence, core::time_point now) {
  expire(now);
  message_name key{origin, sequence};
  auto forget = now + lifetime_;
  if (!forget_at_.emplace(key, forget).second) return false;
  order_.emplace_back(key, forget);
  expire(now);  // over capacity: the oldest name goes
  return true;
}

bool seen_cache::contains(const core::node_id& origin, std::uint64_t sequence, core::time_point now) const {
  auto it = forget_at_.find(message_name{origin, sequence});
  return it != forget_at_.end() && it->second > now;
}

void seen_cache::expire(core::time_point now) {
  while (!order_.empty() && (order_.front().second <= now || order_.size() > capacity_)) {
    forget_at_.erase(order_.front().first);
    order_.pop_front();
  }
}

}  // namespace kadnet::dht
