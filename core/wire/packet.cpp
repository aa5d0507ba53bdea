#include "kadnet/core/wire/packet.hpp"

#include <cassert>

#include "kadnet/core/errors.hpp"

namespace kadnet::core::wire {

void append_packet_header(byte_vector& out, packet_type type, std::size_t payload_size,
                          std::uint8_t version) {
  assert(payload_size <= max_stream_payload);
  byte_writer w(out);
  w.u8(version);
  w.u8(static_cast<std::uint8_t>(type));
  w.u16(static_cast<std::uint16_t>(payload_size));
}

void append_packet(byte_vector& out, packet_type type, byte_span payload, std::uint8_t version) {
  append_packet_header(out, type, payload.size(), version);
  out.insert(out.end(), payload.begin(), payload.end());
}

static boost::system::error_code parse_header(byte_span bytes, packet_view& out,
                                              std::uint16_t& length) {
  byte_reader r(bytes);
  std::uint8_t version = 0, type = 0;
  if (!r.u8(version) || !r.u8(type) || !r.u16(length)) return errc::truncated;
  if (type > max_packet_type) return errc::unknown_packet_type;
  out.version = version;
  out.type = static_cast<packet_type>(type);
  out.header = bytes.first(packet_header_size);
  return {};
}

boost::system::error_code parse_packet(byte_span datagram, packet_view& out) {
  std::uint16_t length = 0;
  if (auto ec = parse_header(datagram, out, length)) return ec;
  if (datagram.size() - packet_header_size != length) {
    return datagram.size() - packet_header_size < length ? errc::truncated : errc::bad_length;
  }
  out.payload = datagram.subspan(packet_header_size, length);
  return {};
}

void stream_packet_reader::feed(byte_span bytes) {
  if (consumed_ > 0 && consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  } else if (consumed_ > buffer_.size() / 2) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(consumed_));
    consumed_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

std::optional<packet_view> stream_packet_reader::next(boost::system::error_code& ec) {
  byte_span pending = byte_span(buffer_).subspan(consumed_);
  if (pending.size() < packet_header_size) return std::nullopt;
  packet_view p;
  std::uint16_t length = 0;
  if ((ec = parse_header(pending, p, length))) return std::nullopt;
  if (pending.size() < packet_header_size + length) return std::nullopt;
  p.payload = pending.subspan(packet_header_size, length);
  consumed_ += packet_header_size + length;
  return p;
}

}  // namespace kadnet::core::wire
