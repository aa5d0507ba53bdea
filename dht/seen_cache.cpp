#include "kadnet/dht/seen_cache.hpp"

#include <sodium.h>

#include <array>
#include <cstring>

namespace kadnet::dht {

std::size_t message_name_hash::operator()(const message_name& n) const {
  // Keyed (SipHash-2-4, a key drawn once per process): a sender picks both the origin and the
  // sequence, and with an unkeyed mix it could pick names that all fall into one bucket, making
  // every lookup, which runs before a shout's signature is checked, walk all of them. The maps
  // hashed this way are only searched, never iterated, so runs stay reproducible.
  static const auto key = [] {
    std::array<unsigned char, crypto_shorthash_KEYBYTES> k;
    randombytes_buf(k.data(), k.size());
    return k;
  }();
  std::array<unsigned char, core::node_id_size + sizeof n.sequence> in;
  std::memcpy(in.data(), n.origin.bytes().data(), core::node_id_size);
  std::memcpy(in.data() + core::node_id_size, &n.sequence, sizeof n.sequence);
  std::array<unsigned char, crypto_shorthash_BYTES> out;
  crypto_shorthash(out.data(), in.data(), in.size(), key.data());
  std::size_t h;
  std::memcpy(&h, out.data(), sizeof h);
  return h;
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
