#pragma once
// Which broadcast messages (SHOUT, SPEAK) a node has already seen, named by (origin, sequence):
// bounded in count and in time, so a flood of fresh names costs a fixed amount of memory and an
// old name is forgotten after `lifetime`. Sans-I/O: `now` is a parameter.
#include <chrono>
#include <cstdint>
#include <unordered_map>
#include <utility>

#include "kadnet/core/fifo.hpp"
#include "kadnet/core/node_id.hpp"
#include "kadnet/core/rpc_tracker.hpp"

namespace kadnet::dht {

// A broadcast message's name: its origin and the origin's sequence number.
struct message_name {
  core::node_id origin;
  std::uint64_t sequence = 0;
  bool operator==(const message_name&) const = default;
};
struct message_name_hash {
  std::size_t operator()(const message_name& n) const;
};

class seen_cache {
 public:
  seen_cache(std::size_t capacity, std::chrono::milliseconds lifetime) : capacity_(capacity), lifetime_(lifetime) {}

  // Records the name; false when it was already recorded (and not yet forgotten).
  bool insert(const core::node_id& origin, std::uint64_t sequence, core::time_point now);
  bool contains(const core::node_id& origin, std::uint64_t sequence, core::time_point now) const;
  std::size_t size() const { return forget_at_.size(); }

 private:
  // Drops names past their lifetime, and the oldest beyond capacity.
  void expire(core::time_point now);

  std::size_t capacity_;
  std::chrono::milliseconds lifetime_;
  std::unordered_map<message_name, core::time_point, message_name_hash> forget_at_;
  core::fifo<std::pair<message_name, core::time_point>> order_;  // insertion order = expiry order
};

}  // namespace kadnet::dht
