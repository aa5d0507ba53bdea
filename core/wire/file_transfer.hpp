#pragma once
// The frames of a file transfer on one byte stream (docs/PROTOCOL.md 9.7; seed 001's file offer,
// accept, reject and chunks), sans-I/O.
//
// Every frame is   type (1) | type again (1) | length (2) | body (length bytes)
// with integers big-endian, as seed 001 frames its messages. The conversation:
//
//   sender                                   receiver
//   offer (name, size, BLAKE2b-256)   -->
//                                     <--    accept (resume offset, BLAKE2b-256 of that prefix)
//                                            or reject (code, text), and the stream ends
//   start (offset: the accepted one, or 0)
//   chunk, chunk, ... then FIN        -->
//                                     <--    verdict (ok, or why not), then FIN
//
// A reader takes the 4-byte header first (decode_header: is it a frame, and how long is the
// body), then exactly `length` bytes of body (decode_body). decode() does both on one whole
// frame. Decoders never throw, never read past their input and never allocate more than the
// input holds. Each malformed input maps to one errc:
//   truncated            the input ends before the header or before `length` bytes of body
//   trailing_bytes       decode(): bytes left after the frame; decode_body(): a body longer than
//                        the header said
//   bad_field            the two type bytes differ; a reject text that is not UTF-8
//   unknown_packet_type  a frame type this version does not define
//   bad_length           a length outside the range of its frame type (see frame_length_range)
// Values the codec cannot judge decode as they are: the offered name (check_file_name says whether
// a receiver may use it), reject and verdict codes it does not know, an offset beyond the size.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"

namespace kadnet::core::wire {

// The stream protocol (9.6) of a file transfer: a node with an inbox serves it.
inline constexpr std::string_view file_stream_protocol = "kadnet/file";

// BLAKE2b-256 (libsodium crypto_generichash, 32 bytes, no key) of a whole file or a prefix of it.
using file_digest = std::array<std::uint8_t, 32>;

inline constexpr std::size_t file_frame_header_size = 4;
inline constexpr std::size_t max_file_name = 255;     // bytes of UTF-8
inline constexpr std::size_t max_reject_text = 255;   // bytes of UTF-8
inline constexpr std::size_t max_file_chunk = 65532;  // bytes of file in one chunk frame (seed 001)

enum class file_frame : std::uint8_t {
  offer = 0x50,    // sender: size (8) | digest (32) | name (1..255)
  accept = 0x51,   // receiver: offset (8) | prefix digest (32)
  reject = 0x52,   // receiver: code (1) | text (0..255)
  chunk = 0x53,    // sender: file bytes (1..65532)
  start = 0x54,    // sender: offset (8)
  verdict = 0x55,  // receiver: code (1)
};

// Why a receiver rejects an offer (reject frame). Codes this version does not know decode as
// they are and mean "unspecified".
enum class file_reject_code : std::uint8_t {
  unspecified = 0,    // no reason given; the text may say more
  declined = 1,       // the receiver does not want this file
  bad_name = 2,       // the name is not one the receiver can store (check_file_name)
  too_large = 3,      // the size exceeds the receiver's limit
  not_accepting = 4,  // the receiver takes no files at all
  exists = 5,         // a file of that name is already there
  busy = 6,           // too many transfers at once, or one of the same name in progress
  io_error = 7,       // the receiver cannot create or write the file
  malformed = 8,      // the offer did not decode
};

// The receiver's last word (verdict frame), after it has read the sender's FIN.
enum class file_verdict_code : std::uint8_t {
  ok = 0,               // the file is complete, verified and stored under its name
  size_mismatch = 1,    // the stream ended before `size` bytes arrived
  digest_mismatch = 2,  // the BLAKE2b-256 of the bytes differs from the offer's
  io_error = 3,         // the receiver could not write or store the file
};

struct file_offer {
  std::uint64_t size = 0;
  file_digest digest{};  // of the whole file
  std::string name;      // 1..255 bytes; see check_file_name
  friend bool operator==(const file_offer&, const file_offer&) = default;
};

struct file_accept {
  std::uint64_t offset = 0;     // bytes the receiver holds already (0..size): send from here
  file_digest prefix_digest{};  // of those `offset` bytes (of nothing when 0)
  friend bool operator==(const file_accept&, const file_accept&) = default;
};

struct file_reject {
  file_reject_code code = file_reject_code::unspecified;
  std::string text;  // UTF-8 for people, at most 255 bytes
  friend bool operator==(const file_reject&, const file_reject&) = default;
};

struct file_chunk {
  byte_vector data;  // 1..65532 bytes
  friend bool operator==(const file_chunk&, const file_chunk&) = default;
};

// Where the sender's chunks begin: the accepted offset when its prefix digest matches the
// sender's file, 0 when it does not (the receiver then starts afresh).
struct file_start {
  std::uint64_t offset = 0;
  friend bool operator==(const file_start&, const file_start&) = default;
};

struct file_verdict {
  file_verdict_code code = file_verdict_code::ok;
  friend bool operator==(const file_verdict&, const file_verdict&) = default;
};

using file_message = std::variant<file_offer, file_accept, file_reject, file_chunk, file_start, file_verdict>;

struct file_frame_header {
  file_frame type = file_frame::offer;
  std::uint16_t length = 0;  // of the body
  friend bool operator==(const file_frame_header&, const file_frame_header&) = default;
};

// The body lengths a frame type allows, inclusive.
std::pair<std::size_t, std::size_t> frame_length_range(file_frame type);
file_frame frame_type(const file_message& m);

// Appends the whole frame of `m`. Local misuse (a name or text of the wrong length, an empty or
// oversized chunk) is an assertion failure.
void encode(const file_message& m, byte_vector& out);
// Appends just the header of a chunk of `length` (1..max_file_chunk) bytes, for a sender that
// reads the file straight into the frame.
void encode_chunk_header(std::size_t length, byte_vector& out);

// Parses the first 4 bytes of `in` (more are ignored). On error `out` is untouched.
boost::system::error_code decode_header(byte_span in, file_frame_header& out);
// Parses a body read after `header`. On error `out` is untouched.
boost::system::error_code decode_body(const file_frame_header& header, byte_span body, file_message& out);
// Parses exactly one whole frame filling `in`.
boost::system::error_code decode(byte_span in, file_message& out);

// Whether a receiver may store a file under `name` inside its directory. Refused: empty names,
// more than 255 bytes, not UTF-8, a path separator ('/' or '\\'), a NUL or other control character
// (below 0x20, or 0x7f), ".", and anything starting with ".." (".." itself included), and names
// ending in ".part" (receivers keep partial files as NAME.part).
enum class file_name_problem {
  none,
  empty,
  too_long,
  not_utf8,
  separator,
  nul,
  control,
  dot,
  partial_suffix,
};
file_name_problem check_file_name(std::string_view name);
// A phrase for people: "contains a path separator", ...
const char* describe(file_name_problem problem);

}  // namespace kadnet::core::wire
