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

}  // namespace kadnet::dht
