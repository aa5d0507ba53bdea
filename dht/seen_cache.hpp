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

// The names seen, each with a `Note` the caller keeps about it (what a SHOUT's receiver has
// covered, say).
template <typename Note>
class seen_map {
 public:
  seen_map(std::size_t capacity, std::chrono::milliseconds lifetime) : capacity_(capacity), lifetime_(lifetime) {}

  // Records the name with `note`; false (and the note left as it was) when it was already
  // recorded and not yet forgotten.
  bool insert(const message_name& name, Note note, core::time_point now) {
    expire(now);
    const auto forget = now + lifetime_;
    if (!entries_.try_emplace(name, entry{forget, std::move(note)}).second) return false;
    order_.emplace_back(name, forget);
    expire(now);  // over capacity: the oldest name goes
    return true;
  }
  // The note of a name recorded and not yet forgotten; null otherwise.
  Note* find(const message_name& name, core::time_point now) {
    auto it = entries_.find(name);
    return it != entries_.end() && it->second.forget_at > now ? &it->second.note : nullptr;
  }
  std::size_t size() const { return order_.size(); }
  std::size_t capacity() const { return capacity_; }
  // The name recorded longest ago (the next to go); null when empty.
  const message_name* oldest() const { return order_.empty() ? nullptr : &order_.front().first; }

 private:
  struct entry {
    core::time_point forget_at;
    Note note;
  };
  // Drops names past their lifetime, and the oldest beyond capacity.
  void expire(core::time_point now) {
    while (!order_.empty() && (order_.front().second <= now || order_.size() > capacity_)) {
      entries_.erase(order_.front().first);
      order_.pop_front();
    }
  }

  std::size_t capacity_;
  std::chrono::milliseconds lifetime_;
  std::unordered_map<message_name, entry, message_name_hash> entries_;
  core::fifo<std::pair<message_name, core::time_point>> order_;  // insertion order = expiry order
};

// Names only.
class seen_cache {
 public:
  seen_cache(std::size_t capacity, std::chrono::milliseconds lifetime) : names_(capacity, lifetime) {}

  // Records the name; false when it was already recorded (and not yet forgotten).
  bool insert(const core::node_id& origin, std::uint64_t sequence, core::time_point now) {
    return names_.insert(message_name{origin, sequence}, nothing{}, now);
  }
  bool contains(const core::node_id& origin, std::uint64_t sequence, core::time_point now) {
    return names_.find(message_name{origin, sequence}, now) != nullptr;
  }
  std::size_t size() const { return names_.size(); }

 private:
  struct nothing {};
  seen_map<nothing> names_;
};

}  // namespace kadnet::dht
