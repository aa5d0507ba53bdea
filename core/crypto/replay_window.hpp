#pragma once
// Anti-replay state of one receiving direction of a session (docs/PROTOCOL.md 3.4): a sliding
// bitmap over packet counters, as in RFC 6479 and WireGuard.
//
// A counter is acceptable when it is above the highest accepted so far, or at most `window_size`
// (2,048) below it and not accepted before. check() only asks; accept() records a counter and must
// be called only after the packet authenticated, so that forged packets cannot move the window.
//
// Most paths lose and reorder little, so the window starts compact (64 bytes): every counter from
// the lowest to the highest accepted was accepted except at most `max_gaps` missing ones, each
// kept as its low 16 bits (all lie within the window, 2,049 counters wide). The first time more
// counters are missing at once, it switches for good to the bitmap (264 bytes on the heap). Both forms answer exactly the same. Every operation is O(1) except a jump forward,
// which clears at most the whole ring once, and the switch, which fills the bitmap once.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace kadnet::core::crypto {

class replay_window {
 public:
  // The largest distance below the highest accepted counter that is still accepted.
  static constexpr std::uint64_t window_size = 2048;
  // Missing counters the compact form tracks before it needs the bitmap.
  static constexpr std::size_t max_gaps = 16;

  replay_window() = default;
  replay_window(const replay_window& other);
  replay_window& operator=(const replay_window& other);
  replay_window(replay_window&&) noexcept = default;
  replay_window& operator=(replay_window&&) noexcept = default;

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
  // Heap bytes held: 0 while the window is compact.
  std::size_t heap_bytes() const { return ring_ ? sizeof(ring) : 0; }

 private:
  static constexpr std::size_t word_bits = 64;
  // One word more than the window so that advancing never clears bits still inside it.
  static constexpr std::size_t ring_words = window_size / word_bits + 1;
  using ring = std::array<std::uint64_t, ring_words>;

  // The lowest counter still inside the window whose top is `top`.
  static std::uint64_t floor_of(std::uint64_t top) { return top > window_size ? top - window_size : 0; }
  // For a counter inside the window, at most highest_.
  bool seen(std::uint64_t counter) const;
  // The whole counter of a gap, which lies at most window_size below highest_.
  std::uint64_t gap_counter(std::uint16_t gap) const {
    return highest_ - static_cast<std::uint16_t>(static_cast<std::uint16_t>(highest_) - gap);
  }
  bool is_gap(std::uint64_t counter) const;
  // Records the counters first..last (inclusive, first <= last) as missing; false when they do
  // not fit, and then nothing changed.
  bool add_gaps(std::uint64_t first, std::uint64_t last);
  void accept_in_ring(std::uint64_t counter);
  // Switches to the bitmap, holding what the compact form held.
  void build_ring();

  std::uint64_t highest_ = 0;
  // Compact form: every counter from lowest_ to highest_ was accepted except gaps_[0..gap_count_).
  std::uint64_t lowest_ = 0;
  std::unique_ptr<ring> ring_;  // the bitmap, once built; the compact fields are then unused
  std::array<std::uint16_t, max_gaps> gaps_{};  // low 16 bits of each missing counter
  // The two bytes last, so that the 6 bytes of padding after them are tail padding, which a
  // [[no_unique_address]] owner (packet_opener) may reuse for its own small fields.
  std::uint8_t gap_count_ = 0;
  bool any_ = false;
};

}  // namespace kadnet::core::crypto
