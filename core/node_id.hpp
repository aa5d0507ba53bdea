#pragma once
// NodeId: a node's address, which is its Ed25519 public key (32 bytes, τ = 256 bits), compared
// with Kademlia's XOR metric.
#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "kadnet/core/bytes.hpp"

namespace kadnet::core {

inline constexpr std::size_t node_id_size = 32;
inline constexpr int id_bits = 256;  // τ

class node_id {
 public:
  using bytes_type = std::array<std::uint8_t, node_id_size>;

  node_id() = default;  // all zero
  explicit node_id(const bytes_type& bytes) : bytes_(bytes) {}
  // From a span of exactly 32 bytes; nullopt otherwise.
  static std::optional<node_id> from_bytes(byte_span bytes);
  // From 64 hex digits (either case); nullopt otherwise.
  static std::optional<node_id> from_hex(std::string_view text);
  // BLAKE2b-256 of text: how DHT text keys become 32-byte keys.
  static node_id hash_of(byte_span data);

  const bytes_type& bytes() const { return bytes_; }
  byte_span span() const { return bytes_; }
  std::string to_hex() const;
  std::string short_hex() const { return to_hex().substr(0, 12); }

  // XOR distance to another id, itself a 256-bit number compared big-endian.
  node_id distance(const node_id& other) const;
  // Number of leading bits this id shares with other (256 when equal).
  int common_prefix_length(const node_id& other) const;
  // Index of the k-bucket `other` falls in: bucket i holds ids at XOR distance in
  // [2^i, 2^(i+1)), so i = 255 - common_prefix_length. -1 when other == *this.
  int bucket_index(const node_id& other) const;
  bool bit(int i) const { return (bytes_[i / 8] >> (7 - i % 8)) & 1; }  // bit 0 = most significant

  friend auto operator<=>(const node_id&, const node_id&) = default;
  friend bool operator==(const node_id&, const node_id&) = default;

 private:
  bytes_type bytes_{};
};

// Orders ids by XOR distance to a fixed target: closer first.
class closer_to {
 public:
  explicit closer_to(const node_id& target) : target_(target) {}
  bool operator()(const node_id& a, const node_id& b) const {
    return a.distance(target_) < b.distance(target_);
  }

 private:
  node_id target_;
};

}  // namespace kadnet::core

template <>
struct std::hash<kadnet::core::node_id> {
  std::size_t operator()(const kadnet::core::node_id& id) const noexcept {
    std::size_t h;
    std::memcpy(&h, id.bytes().data(), sizeof h);  // ids are uniformly random public keys
    return h;
  }
};
