#pragma once
// A first-in, first-out queue that holds no memory while it is empty.
//
// std::deque allocates a block (512 bytes in libstdc++) and its map when it is constructed,
// empty or not; a datagram session kept six of them, most of its idle cost (docs/BENCHMARKS.md,
// "Where the memory goes"). fifo is a std::vector and the index of its first live element:
//  * pop_front() moves the index and resets the popped slot to T{}, so what the element owned
//    (a unit's bytes) is freed at once rather than when the slot is reclaimed;
//  * the consumed prefix is reclaimed when an append would make the vector grow and at least
//    half of it is consumed: the live elements move to the front (each pop pays for at most one
//    move, so every operation is amortised O(1));
//  * when the last element is popped the storage is released, so an idle queue costs nothing
//    and a burst does not pin memory. A burst followed by a trickle that never drains is given
//    back at the next reclaim, when the live elements fill under a quarter of the slots.
//
// T must be default-constructible and move-assignable. Iterators and references are invalidated
// by push_back, emplace_back, pop_front and clear.
#include <cstddef>
#include <iterator>
#include <utility>
#include <vector>

namespace kadnet::core {

template <typename T>
class fifo {
 public:
  using value_type = T;
  using iterator = typename std::vector<T>::iterator;
  using const_iterator = typename std::vector<T>::const_iterator;

  bool empty() const { return head_ == items_.size(); }
  std::size_t size() const { return items_.size() - head_; }
  // Slots held, live or consumed (for tests and memory accounting).
  std::size_t capacity() const { return items_.capacity(); }

  T& front() { return items_[head_]; }
  const T& front() const { return items_[head_]; }
  T& back() { return items_.back(); }
  const T& back() const { return items_.back(); }
  T& operator[](std::size_t i) { return items_[head_ + i]; }
  const T& operator[](std::size_t i) const { return items_[head_ + i]; }

  iterator begin() { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  iterator end() { return items_.end(); }
  const_iterator begin() const { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  const_iterator end() const { return items_.end(); }

  void push_back(const T& value) { emplace_back(value); }
  void push_back(T&& value) { emplace_back(std::move(value)); }
  template <typename... Args>
  T& emplace_back(Args&&... args) {
    if (items_.size() == items_.capacity() && head_ != 0 && head_ * 2 >= items_.size()) reclaim();
    return items_.emplace_back(std::forward<Args>(args)...);
  }

  void pop_front() {
    if (head_ + 1 == items_.size()) return clear();
    items_[head_++] = T{};
  }

  // Drops every element and releases the storage.
  void clear() {
    std::vector<T>().swap(items_);
    head_ = 0;
  }

 private:
  // Before an append into a full vector that is at least half consumed: moves the live elements
  // to the front (into a smaller vector when they fill under a quarter of it) instead of letting
  // the append reallocate to twice the size.
  void reclaim() {
    const auto first_live = items_.begin() + static_cast<std::ptrdiff_t>(head_);
    if (size() * 4 < items_.capacity()) {
      std::vector<T> smaller;
      smaller.reserve(size() * 2);
      smaller.insert(smaller.end(), std::make_move_iterator(first_live), std::make_move_iterator(items_.end()));
      items_.swap(smaller);
    } else {
      items_.erase(items_.begin(), first_live);
    }
    head_ = 0;
  }

  std::vector<T> items_;
  std::size_t head_ = 0;  // index of the front element; items_[0, head_) are consumed
};

}  // namespace kadnet::core
