// libFuzzer target for byte-stream frames (core/stream_mux.cpp, PROTOCOL.md 9.6).
//
// The input is a sequence of frames, each a length byte and that many bytes of a stream packet's
// plaintext, fed to a stream_mux that has opened a few streams of its own; between frames it
// reads every stream and lets time pass. The input's size picks the role and whether the
// channels are lossless (a stream session's). It must never crash or hang, must count every frame
// it refuses, and must stay within its stream limit whatever ids the frames name.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kadnet/core/stream_mux.hpp"

using namespace kadnet;
using namespace kadnet::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  stream_limits limits;
  limits.max_streams = 8;
  limits.window_units = 16;
  // The size also picks the lossless channels of a stream session (PROTOCOL.md 9.6).
  stream_mux mux(/*dialer=*/size % 2 == 0, limits, /*lossless=*/size % 4 >= 2);
  time_point now{};
  for (int i = 0; i < 3; ++i) {
    auto id = mux.open(now);
    if (id) mux.write(*id, byte_span(data, std::min<std::size_t>(size, 3000)));
  }
  std::uint8_t buffer[2048];
  for (std::size_t pos = 0; pos < size;) {
    std::size_t length = std::min<std::size_t>(data[pos], size - pos - 1);
    mux.on_frame(byte_span(data + pos + 1, length), now);
    pos += 1 + length;
    now += std::chrono::milliseconds(length);
    mux.handle_timeout(now);
    while (mux.poll_transmit(now)) {
    }
    while (auto e = mux.poll_event()) {
      while (mux.read(e->stream, buffer) > 0) {
      }
    }
    if (mux.size() > limits.max_streams) std::abort();
  }
  return 0;
}
