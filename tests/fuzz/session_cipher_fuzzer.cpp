// libFuzzer target for packet_sealer and packet_opener across key epochs
// (core/crypto/session_cipher.cpp, PROTOCOL.md 3.4).
//
// Input: one control byte (bit 0: AES-256-GCM where the CPU has it; bits 1-2: which epoch
// boundary to start below), two bytes for how far below it the sealer starts, then (op, arg)
// byte pairs: seal a packet, deliver a sealed packet (any of them, again or out of order),
// deliver one with a bit flipped, or make the sealer jump ahead (possibly to just below the next
// epoch; the jumps use the test-only factory, so counters stay unique).
//
// Checks: a genuine packet opens exactly when the documented rule says (replay window, then
// epoch e, e + 1, or e - 1 while the previous key is held), with its plaintext; a packet opens
// at most once; an altered packet never opens and moves nothing (epoch, window, kept key); the
// epoch never goes back and is that of the highest accepted counter; the previous key is held
// only while the window can still accept some of its epoch.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <vector>

#include "kadnet/core/crypto/session_cipher.hpp"
#include "kadnet/core/wire/packet.hpp"

using namespace kadnet;
using namespace kadnet::core::crypto;
namespace wire = kadnet::core::wire;

namespace {

constexpr std::uint64_t S = std::uint64_t{1} << epoch_bits;

void check(bool ok) {
  if (!ok) std::abort();
}

struct sealed {
  std::uint64_t counter;
  byte_vector plaintext;
  byte_vector packet;
};

// What replay_window accepts (its documented rule).
bool window_accepts(const replay_window& w, const std::set<std::uint64_t>& opened,
                    std::uint64_t c) {
  if (!w.any_accepted() || c > w.highest()) return true;
  return w.highest() - c <= replay_window::window_size && !opened.contains(c);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const aead cipher =
      (data[0] & 1) && aes256_gcm_available() ? aead::aes256_gcm : aead::chacha20_poly1305;
  const std::uint64_t boundary = (1 + ((data[0] >> 1) & 3)) * S;
  const std::uint64_t below = 1 + ((std::uint64_t{data[1]} << 8 | data[2]) % 4096);
  key k0{};
  for (std::size_t i = 0; i < k0.size(); ++i) k0[i] = static_cast<std::uint8_t>(i * 7 + 1);

  auto sealer = packet_sealer::for_testing_at(k0, cipher, boundary - below);
  auto opener = packet_opener::for_testing_after(k0, cipher, boundary - below - 1);
  std::set<std::uint64_t> opened = {boundary - below - 1};
  std::vector<sealed> queue;

  for (std::size_t at = 3; at + 1 < size; at += 2) {
    const std::uint8_t op = data[at] % 4, arg = data[at + 1];
    if (op == 0) {
      if (queue.size() >= 512) continue;
      sealed s;
      s.counter = sealer.next_counter();
      s.plaintext.assign(arg % 48, static_cast<std::uint8_t>(s.counter));
      sealer.seal(wire::packet_type::stream_data, s.plaintext, s.packet);
      queue.push_back(std::move(s));
    } else if (op == 3) {
      const std::uint64_t next = sealer.next_counter();
      const std::uint64_t to =
          arg & 0x80 ? std::max(next, epoch_start(epoch_of(next) + 1) - (arg & 0x7f))
                     : next + std::uint64_t{arg} * 37;
      sealer = packet_sealer::for_testing_at(k0, cipher, to);
    } else if (!queue.empty()) {
      const sealed& s = queue[arg % queue.size()];
      wire::packet_view p;
      byte_vector packet = s.packet;
      if (op == 2) packet[(arg * 13u) % packet.size()] ^= static_cast<std::uint8_t>(1u << (arg % 8));
      if (wire::parse_packet(packet, p)) continue;  // a flipped length byte: not a packet at all

      const std::uint64_t epoch = opener.epoch(), highest = opener.window().highest();
      const bool kept = opener.holds_previous_key();
      const std::uint64_t pe = epoch_of(s.counter);
      const bool expected = window_accepts(opener.window(), opened, s.counter) &&
                            (pe == epoch || pe == epoch + 1 || (pe + 1 == epoch && kept));
      byte_vector plain;
      const auto ec = opener.open(p, plain);
      if (op == 2) {
        check(ec.failed());
        check(opener.epoch() == epoch && opener.window().highest() == highest &&
              opener.holds_previous_key() == kept);
      } else {
        check(ec.failed() != expected);
        if (!ec.failed()) {
          check(!opened.contains(s.counter));
          check(plain == s.plaintext);
          opened.insert(s.counter);
        }
      }
    }
    // Invariants after every step.
    check(opener.epoch() == epoch_of(opener.window().highest()));
    check(!opener.holds_previous_key() ||
          opener.window().highest() - epoch_start(opener.epoch()) < replay_window::window_size);
  }
  return 0;
}
