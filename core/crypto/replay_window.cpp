#include "kadnet/core/crypto/replay_window.hpp"

#include <algorithm>

namespace kadnet::core::crypto {

replay_window::replay_window(const replay_window& other)
    : highest_(other.highest_),
      lowest_(other.lowest_),
      ring_(other.ring_ ? std::make_unique<ring>(*other.ring_) : nullptr),
      gaps_(other.gaps_),
      gap_count_(other.gap_count_),
      any_(other.any_) {}

replay_window& replay_window::operator=(const replay_window& other) {
  if (this != &other) *this = replay_window(other);
  return *this;
}

bool replay_window::check(std::uint64_t counter) const {
  if (!any_ || counter > highest_) return true;
  if (highest_ - counter > window_size) return false;
  return !seen(counter);
}

bool replay_window::seen(std::uint64_t counter) const {
  if (ring_) return ((*ring_)[(counter / word_bits) % ring_words] >> (counter % word_bits)) & 1;
  return counter >= lowest_ && !is_gap(counter);
}

bool replay_window::is_gap(std::uint64_t counter) const {
  const auto low = static_cast<std::uint16_t>(counter);
  return std::find(gaps_.begin(), gaps_.begin() + gap_count_, low) != gaps_.begin() + gap_count_;
}

bool replay_window::add_gaps(std::uint64_t first, std::uint64_t last) {
  if (last - first >= max_gaps - gap_count_) return false;
  for (std::uint64_t c = first;; ++c) {
    gaps_[gap_count_++] = static_cast<std::uint16_t>(c);
    if (c == last) return true;
  }
}

void replay_window::accept(std::uint64_t counter) {
  if (!check(counter)) return;
  if (!any_) {
    any_ = true;
    highest_ = lowest_ = counter;
    return;
  }
  if (ring_) return accept_in_ring(counter);
  if (counter > highest_) {
    // The counters skipped over are missing; what falls out of the window is forgotten.
    const std::uint64_t floor = floor_of(counter);
    const std::uint64_t first_missing = std::max(highest_ + 1, floor);
    const auto kept = static_cast<std::size_t>(
        std::count_if(gaps_.begin(), gaps_.begin() + gap_count_, [&](std::uint16_t g) { return gap_counter(g) >= floor; }));
    if (counter - first_missing > max_gaps - kept) {
      build_ring();
      return accept_in_ring(counter);
    }
    gap_count_ = static_cast<std::uint8_t>(
        std::remove_if(gaps_.begin(), gaps_.begin() + gap_count_, [&](std::uint16_t g) { return gap_counter(g) < floor; }) -
        gaps_.begin());
    if (counter > first_missing) add_gaps(first_missing, counter - 1);
    lowest_ = std::max(lowest_, floor);
    highest_ = counter;
  } else if (counter >= lowest_) {
    // A missing counter came late (check() said it was not seen).
    auto* end = gaps_.begin() + gap_count_;
    std::remove(gaps_.begin(), end, static_cast<std::uint16_t>(counter));
    --gap_count_;
  } else {
    // Below everything accepted so far, inside the window: the counters in between are missing.
    if (counter + 1 < lowest_ && !add_gaps(counter + 1, lowest_ - 1)) {
      build_ring();
      return accept_in_ring(counter);
    }
    lowest_ = counter;
  }
}

void replay_window::build_ring() {
  ring_ = std::make_unique<ring>();
  for (std::uint64_t c = std::max(lowest_, floor_of(highest_));; ++c) {
    if (!is_gap(c)) (*ring_)[(c / word_bits) % ring_words] |= std::uint64_t{1} << (c % word_bits);
    if (c == highest_) break;
  }
}

void replay_window::accept_in_ring(std::uint64_t counter) {
  auto& words = *ring_;
  if (counter > highest_) {
    // Clear the words the window slides over; beyond a whole ring every word is stale anyway.
    const std::uint64_t old_word = highest_ / word_bits;
    const std::uint64_t new_word = counter / word_bits;
    const std::uint64_t to_clear = std::min<std::uint64_t>(new_word - old_word, ring_words);
    for (std::uint64_t i = 1; i <= to_clear; ++i) words[(old_word + i) % ring_words] = 0;
    highest_ = counter;
  }
  words[(counter / word_bits) % ring_words] |= std::uint64_t{1} << (counter % word_bits);
}

}  // namespace kadnet::core::crypto
