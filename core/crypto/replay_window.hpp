#pragma once
// Anti-replay state of one receiving direction of a session (docs/PROTOCOL.md 3.4): a sliding
// bitmap over packet counters, as in RFC 6479 and WireGuard.
//
// A counter is acceptable when it is above the highest accepted so far, or at most `window_size`
// (2,048) below it and not accepted before. check() only asks; accept() records a counter and must
// be called only after the packet authenticated, so that forged packets cannot move the window.
// Memory is constant (264 bytes of bitmap); every operation is O(1) except a jump forward, which
// clears at most the whole ring once.
#include <array>
#include <cstddef>
#include <cstdint>

namespace kadnet::core::crypto {

class replay_window {
 public:
  // The largest distance below the highest accepted counter that is still accepted.
  static constexpr std::uint64_t window_size = 2048;

  // Whether `counter` would be accepted now.
  bool check(std::uint64_t counter) const;
  // Records `counter` as seen (advancing the window when it is the new highest). A counter that
  // check() would refuse is ignored.
  void accept(std::uint64_t counter);
  // check() then accept(); returns what check() said.
  bool check_and_accept(std::uint64_t counter) {
    if (!check(counter)) return false;
    accept(counter);
    return true;
  }

  // The highest counter accepted so far; meaningful only when any_accepted().
  std::uint64_t highest() const { return highest_; }
  bool any_accepted() const { return any_; }

 private:
  static constexpr std::size_t word_bits = 64;
  // One word more than the window so that advancing never clears bits still inside it.
  static constexpr std::size_t ring_words = window_size / word_bits + 1;

  bool seen(std::uint64_t counter) const {
    return (ring_[(counter / word_bits) % ring_words] >> (counter % word_bits)) & 1;
  }

  std::array<std::uint64_t, ring_words> ring_{};
  std::uint64_t highest_ = 0;
  bool any_ = false;
};

}  // namespace kadnet::core::crypto
