#pragma once
// The first bytes of every byte stream (PROTOCOL.md 9.6): the protocol the opener speaks on it,
// so that the accepting node hands the stream to whoever serves that protocol — a file transfer
// to the inbox, an application's own protocol to its acceptor — or refuses it.
//
//   length (1) ‖ protocol (length bytes)
//
// A protocol is 0–255 bytes of UTF-8 without control characters ("" is the default one).
#include <cstddef>
#include <string>
#include <string_view>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"

namespace kadnet::core::wire {

inline constexpr std::size_t max_stream_protocol = 255;

// Whether `name` can name a stream protocol.
bool valid_stream_protocol(std::string_view name);
// Throws std::invalid_argument saying why when `name` cannot name a stream protocol.
void check_stream_protocol(std::string_view name);

// The header naming `protocol`; throws as check_stream_protocol.
byte_vector encode_stream_header(std::string_view protocol);

// Reads a header as the stream's bytes arrive. Take exactly wanted() bytes from the stream each
// time (what follows the header is the application's), until done() or failed().
class stream_header_reader {
 public:
  // Bytes still needed: the length byte first, then the rest of the name. 0 once done or failed.
  std::size_t wanted() const;
  // Feeds bytes that arrived: at most wanted(), any more are not taken. Returns errc::bad_field
  // (and stays failed) once the whole name is there and is not a valid protocol.
  boost::system::error_code feed(byte_span bytes);
  bool done() const { return state_ == state::done; }
  bool failed() const { return state_ == state::failed; }
  // The protocol, once done().
  const std::string& protocol() const { return name_; }

 private:
  enum class state : std::uint8_t { length, name, done, failed };
  state state_ = state::length;
  std::size_t length_ = 0;
  std::string name_;
};

}  // namespace kadnet::core::wire
