// libFuzzer target for the reliable channel's frames (core/reliable_channel.cpp, PROTOCOL.md 9).
//
// The input is a sequence of frames: a type byte (its low bit picks reliable_data or
// unreliable_data_ack), a length byte, then that many bytes of plaintext. A channel that has
// sent a few units takes them all. It must never crash or hang, every malformed frame is
// counted, what it delivers is only units that arrived, in sequence, and its memory stays within
// its receive window.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kadnet/core/reliable_channel.hpp"

using namespace kadnet;
using namespace kadnet::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  reliable_config config;
  config.receive_window = 16;
  config.lossless = size % 2 == 1;  // a stream session's channel half the time (PROTOCOL.md 9.6)
  time_point now{};
  reliable_channel channel(config, now);
  for (std::uint8_t i = 0; i < 8; ++i) channel.queue(byte_vector(3, i));
  while (channel.poll_transmit(now)) {
  }
  std::size_t frames = 0, errors = 0, delivered = 0;
  for (std::size_t pos = 0; pos + 2 <= size;) {
    auto type = (data[pos] & 1) ? wire::packet_type::reliable_data : wire::packet_type::unreliable_data_ack;
    std::size_t length = std::min<std::size_t>(data[pos + 1], size - pos - 2);
    now += std::chrono::milliseconds(data[pos] >> 1);
    if (channel.on_frame(type, byte_span(data + pos + 2, length), now)) ++errors;
    ++frames;
    pos += 2 + length;
    channel.handle_timeout(now);
    while (channel.poll_transmit(now)) {
    }
    while (channel.poll_delivered()) {
      ++delivered;
      channel.release(1);
    }
  }
  if (channel.counters().malformed != errors) std::abort();
  if (delivered > frames) std::abort();
  if (channel.in_flight() > 8) std::abort();
  return 0;
}
