#pragma once
// The message envelope (PROTOCOL.md 4.2): one encoding byte, then the opcode message either
// plain (0xFF) or compressed with a negotiated codec behind its original size.
#include <bitset>
#include <optional>

#include <boost/system/error_code.hpp>

#include "kadnet/compression/codec.hpp"
#include "kadnet/core/bytes.hpp"

namespace kadnet::core {

inline constexpr std::uint8_t envelope_plain = 0xFF;
// Messages shorter than this are never compressed: the saving would not pay for the work.
inline constexpr std::size_t default_compression_threshold = 256;

// Set of codecs, indexed by wire number.
using codec_set = std::bitset<compression::codec_count>;

// Appends the envelope of `message` to out, compressed with `method` when given and the message
// is at least `threshold` bytes long and compression actually makes it smaller.
void encode_envelope(byte_span message, std::optional<compression::codec_id> method,
                     std::size_t threshold, byte_vector& out);

// Unwraps an envelope into `message`. Only codecs in `accepted` are decoded (others: errc::
// option_refused); the output is capped at max_message_size (compression::errc::
// output_limit_exceeded). `message` may alias nothing in `envelope`.
boost::system::error_code decode_envelope(byte_span envelope, const codec_set& accepted,
                                          std::size_t max_message_size, byte_vector& message);

}  // namespace kadnet::core
