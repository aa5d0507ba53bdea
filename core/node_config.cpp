#include "kadnet/core/node_config.hpp"

#include <stdexcept>
#include <string>

namespace kadnet::core {

std::vector<compression::codec_id> default_compression_methods() {
  return {compression::codec_id::zstd, compression::codec_id::snappy, compression::codec_id::zlib};
}

void node_config::validate() const {
  auto bad = [](const std::string& what) { throw std::invalid_argument("bad node config: " + what); };
  auto check_timeout = [&](const char* name, std::chrono::milliseconds t) {
    if (t.count() <= 0 || t > max_timeout)
      bad(std::string(name) + " " + std::to_string(t.count()) + " ms must be from 1 ms to " +
          std::to_string(max_timeout.count()) + " ms (24 hours)");
  };
  check_timeout("request_timeout", request_timeout);
  check_timeout("handshake_timeout", handshake_timeout);
  check_timeout("handler_timeout", handler_timeout);
  check_timeout("punched_dial_timeout", punched_dial_timeout);
  if (max_message_size < 1024 || max_message_size > (64u << 20))
    bad("max_message_size " + std::to_string(max_message_size) + " must be 1 KiB .. 64 MiB");
  if (max_inbound_requests_per_peer == 0) bad("max_inbound_requests_per_peer must be at least 1");
  if (max_outbound_sessions == 0) bad("max_outbound_sessions (ℓ) must be at least 1");
  if (max_outbound_datagram_sessions == 0) bad("max_outbound_datagram_sessions (ℓ for UDP) must be at least 1");
  if (max_queued_bytes_per_peer < max_message_size)
    bad("max_queued_bytes_per_peer " + std::to_string(max_queued_bytes_per_peer) +
        " must be at least max_message_size");
  const auto& streams = datagram.streams;
  if (streams.max_streams == 0) bad("datagram.streams.max_streams must be at least 1");
  // A stream with no window could never send a byte; the window field is 24 bits (PROTOCOL.md 9.6).
  if (streams.window_units == 0 || streams.window_units >= (1u << 24))
    bad("datagram.streams.window_units " + std::to_string(streams.window_units) + " must be 1 .. 16,777,215");
  if (streams.unaccepted_window_units == 0)
    bad("datagram.streams.unaccepted_window_units must be at least 1");
  codec_set seen;
  for (auto c : compression) {
    auto n = static_cast<unsigned>(c);
    if (n >= compression::codec_count) bad("compression method " + std::to_string(n) + " unknown");
    if (seen.test(n)) bad("compression method " + std::string(compression::codec_name(c)) + " listed twice");
    seen.set(n);
  }
}

}  // namespace kadnet::core
