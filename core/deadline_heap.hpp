#pragma once
// The deadlines of many keys (sessions) in one min-heap over a vector. Filing a deadline is a
// push; a key's older entries are not searched for and erased but skipped when they come up,
// because the owner keeps each key's current deadline and says which entries still are current.
// A std::set of (deadline, key) cost a tree erase and an insert, a cache miss per level, every
// time a session's deadline moved: most of the engine's time outside the AEAD in a busy swarm.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

namespace kadnet::core {

using time_point = std::chrono::steady_clock::time_point;

template <class Key>
class deadline_heap {
 public:
  void file(time_point at, Key key) {
    entries_.emplace_back(at, key);
    std::push_heap(entries_.begin(), entries_.end(), later);
  }

  // The earliest entry, current or not: waking early for a stale one is harmless, since
  // take_due then drops it.
  std::optional<time_point> earliest() const {
    if (entries_.empty()) return std::nullopt;
    return entries_.front().first;
  }

  // Removes every entry due at `now` and returns the keys of those that `claim(key, at)`
  // accepts as current (claiming one should make any duplicate of it stale).
  template <class Claim>
  std::vector<Key> take_due(time_point now, Claim claim) {
    std::vector<Key> due;
    while (!entries_.empty() && entries_.front().first <= now) {
      std::pop_heap(entries_.begin(), entries_.end(), later);
      auto [at, key] = entries_.back();
      entries_.pop_back();
      if (claim(key, at)) due.push_back(key);
    }
    return due;
  }

  // Drops the entries `current(key, at)` rejects. The owner calls it when stale entries may
  // outnumber current ones, which bounds the heap by the number of keys.
  template <class Current>
  void compact(Current current) {
    std::erase_if(entries_, [&](const auto& e) { return !current(e.second, e.first); });
    std::make_heap(entries_.begin(), entries_.end(), later);
  }

  std::size_t size() const { return entries_.size(); }

 private:
  static bool later(const std::pair<time_point, Key>& a, const std::pair<time_point, Key>& b) {
    return a.first > b.first;
  }

  std::vector<std::pair<time_point, Key>> entries_;
};

}  // namespace kadnet::core
