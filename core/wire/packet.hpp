#pragma once
// The outer packet of seed 000: version (1) | type (1) | length (2, big-endian) | payload.
//
// Stream transports (TCP, WebSocket) send packets back to back; the UDP transport sends one per
// datagram. docs/PROTOCOL.md, "Outer packet", lists every type.
#include <cstddef>
#include <cstdint>
#include <optional>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"

namespace kadnet::core::wire {

inline constexpr std::uint8_t protocol_version = 1;
inline constexpr std::size_t packet_header_size = 4;
inline constexpr std::size_t max_stream_payload = 0xffff;
inline constexpr std::size_t max_datagram_size = 1200;

enum class packet_type : std::uint8_t {
  hello = 0,                 // handshake, plaintext, signed
  cookie = 1,                // cookie challenge from a loaded responder (seed 000 "ping")
  reliable_data = 2,         // sealed; UDP transport
  unreliable_data = 3,       // sealed; UDP transport
  unreliable_data_ack = 4,   // sealed; UDP transport
  peers_list_request = 5,    // sealed
  punch = 6,                 // plaintext, empty, UDP only: opens the sender's NAT (INTRODUCE)
  introduction = 7,          // sealed; unused: introductions are the INTRODUCE opcode
  introduction_ack = 8,      // sealed; unused, as 7
  refuse = 9,                // plaintext: the handshake is refused (version, load, identity)
  stream_data = 10,          // sealed; message fragments on stream transports
  stream = 11,               // sealed; UDP transport: a frame of one of the session's byte streams
};
inline constexpr std::uint8_t max_packet_type = 11;

// Whether packets of this type are AEAD-sealed (everything after the handshake is).
constexpr bool is_sealed(packet_type t) {
  return t != packet_type::hello && t != packet_type::cookie && t != packet_type::refuse &&
         t != packet_type::punch;
}

struct packet_view {
  std::uint8_t version = protocol_version;
  packet_type type = packet_type::hello;
  byte_span header;   // the 4 header bytes (authenticated data of sealed packets)
  byte_span payload;
};

// Appends a header and the payload; payload.size() must be <= max_stream_payload.
void append_packet(byte_vector& out, packet_type type, byte_span payload,
                   std::uint8_t version = protocol_version);
// Writes only the header (for callers that write the payload in place afterwards).
void append_packet_header(byte_vector& out, packet_type type, std::size_t payload_size,
                          std::uint8_t version = protocol_version);

// Parses exactly one packet that fills `datagram` (UDP). Errors: truncated, bad_length,
// unknown_packet_type. A foreign version is returned as-is so the caller can refuse it politely.
boost::system::error_code parse_packet(byte_span datagram, packet_view& out);

// Splits a byte stream into packets. feed() appends received bytes; next() yields complete
// packets in order. Memory is bounded: at most one maximal packet is buffered.
class stream_packet_reader {
 public:
  void feed(byte_span bytes);
  // Returns the next complete packet (valid until the next feed/next call), nullopt when more
  // bytes are needed, or sets `ec` on an unparseable header (the stream is then unusable).
  std::optional<packet_view> next(boost::system::error_code& ec);
  std::size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  byte_vector buffer_;
  std::size_t consumed_ = 0;
};

}  // namespace kadnet::core::wire
