#include "kadnet/core/node_id.hpp"

#include <bit>

#include <sodium.h>

namespace kadnet::core {

std::optional<node_id> node_id::from_bytes(byte_span bytes) {
  if (bytes.size() != node_id_size) return std::nullopt;
  bytes_type b;
  std::memcpy(b.data(), bytes.data(), node_id_size);
  return node_id(b);
}

std::optional<node_id> node_id::from_hex(std::string_view text) {
  byte_vector raw;
  if (text.size() != 2 * node_id_size || !kadnet::from_hex(text, raw)) return std::nullopt;
  return from_bytes(raw);
}

node_id node_id::hash_of(byte_span data) {
  bytes_type out;
  crypto_generichash(out.data(), out.size(), data.data(), data.size(), nullptr, 0);
  return node_id(out);
}

std::string node_id::to_hex() const { return kadnet::to_hex(bytes_); }

node_id node_id::distance(const node_id& other) const {
  bytes_type d;
  for (std::size_t i = 0; i < node_id_size; ++i) d[i] = bytes_[i] ^ other.bytes_[i];
  return node_id(d);
}

int node_id::common_prefix_length(const node_id& other) const {
  for (std::size_t i = 0; i < node_id_size; ++i) {
    std::uint8_t x = bytes_[i] ^ other.bytes_[i];
    if (x != 0) return static_cast<int>(i * 8) + std::countl_zero(x);
  }
  return id_bits;
}

int node_id::bucket_index(const node_id& other) const {
  int cpl = common_prefix_length(other);
  return cpl == id_bits ? -1 : id_bits - 1 - cpl;
}

}  // namespace kadnet::core
