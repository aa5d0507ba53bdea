#include "kadnet/core/envelope.hpp"

#include "kadnet/core/errors.hpp"

namespace kadnet::core {

void encode_envelope(byte_span message, std::optional<compression::codec_id> method,
                     std::size_t threshold, byte_vector& out) {
  std::size_t start = out.size();
  if (method && message.size() >= threshold && message.size() <= 0xffffffffu) {
    byte_writer w(out);
    w.u8(static_cast<std::uint8_t>(*method));
    w.u32(static_cast<std::uint32_t>(message.size()));
    // Fall back to plain when the codec fails or does not shrink the message (random data).
    if (!compression::get_codec(*method).compress(message, out) &&
        out.size() - start < message.size() + 1) {
      return;
    }
    out.resize(start);
  }
  out.push_back(envelope_plain);
  out.insert(out.end(), message.begin(), message.end());
}

boost::system::error_code decode_envelope(byte_span envelope, const codec_set& accepted,
                                          std::size_t max_message_size, byte_vector& message) {
  byte_reader r(envelope);
  std::uint8_t encoding = 0;
  if (!r.u8(encoding)) return errc::truncated;
  message.clear();
  if (encoding == envelope_plain) {
    byte_span body = r.rest();
    if (body.size() > max_message_size) return errc::too_large;
    message.assign(body.begin(), body.end());
    return {};
  }
  if (encoding >= compression::codec_count || !accepted.test(encoding)) return errc::option_refused;
  std::uint32_t original_size = 0;
  if (!r.u32(original_size)) return errc::truncated;
  if (original_size > max_message_size) return errc::too_large;
  const auto* codec = compression::find_codec(encoding);
  // The cap is the announced size (already within the limit): more output means the size lied.
  if (auto ec = codec->decompress(r.rest(), original_size, message)) {
    if (ec == compression::errc::output_limit_exceeded) return errc::bad_length;
    return ec;
  }
  if (message.size() != original_size) return errc::bad_length;
  return {};
}

}  // namespace kadnet::core
