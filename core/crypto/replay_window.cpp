#include "core/crypto/replay_window.hpp"

#include <algorithm>

namespace kadnet::core::crypto {

bool replay_window::check(std::uint64_t counter) const {
  if (!any_ || counter > highest_) return true;
  if (highest_ - counter > window_size) return false;
  return !seen(counter);
}

void replay_window::accept(std::uint64_t counter) {
  if (!check(counter)) return;
  if (!any_) {
    any_ = true;
    highest_ = counter;
  } else if (counter > highest_) {
    // Clear the words the window slides over; beyond a whole ring every word is stale anyway.
    const std::uint64_t old_word = highest_ / word_bits;
    const std::uint64_t new_word = counter / word_bits;
    const std::uint64_t to_clear = std::min<std::uint64_t>(new_word - old_word, ring_words);
    for (std::uint64_t i = 1; i <= to_clear; ++i) ring_[(old_word + i) % ring_words] = 0;
    highest_ = counter;
  }
  ring_[(counter / word_bits) % ring_words] |= std::uint64_t{1} << (counter % word_bits);
}

}  // namespace kadnet::core::crypto
