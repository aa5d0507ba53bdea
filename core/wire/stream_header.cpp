#include "kadnet/core/wire/stream_header.hpp"

#include <algorithm>
#include <stdexcept>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/wire/utf8.hpp"

namespace kadnet::core::wire {

bool valid_stream_protocol(std::string_view name) {
  if (name.size() > max_stream_protocol) return false;
  const byte_span bytes(reinterpret_cast<const std::uint8_t*>(name.data()), name.size());
  return valid_utf8(bytes) &&
         std::none_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b < 0x20 || b == 0x7f; });
}

void check_stream_protocol(std::string_view name) {
  if (name.size() > max_stream_protocol)
    throw std::invalid_argument("a stream protocol is at most 255 bytes, not " + std::to_string(name.size()));
  if (!valid_stream_protocol(name))
    throw std::invalid_argument("a stream protocol is UTF-8 without control characters");
}

byte_vector encode_stream_header(std::string_view protocol) {
  check_stream_protocol(protocol);
  byte_vector out;
  out.reserve(1 + protocol.size());
  out.push_back(static_cast<std::uint8_t>(protocol.size()));
  out.insert(out.end(), protocol.begin(), protocol.end());
  return out;
}

std::size_t stream_header_reader::wanted() const {
  switch (state_) {
    case state::length: return 1;
    case state::name: return length_ - name_.size();
    default: return 0;
  }
}

boost::system::error_code stream_header_reader::feed(byte_span bytes) {
  if (state_ == state::failed) return errc::bad_field;
  if (state_ == state::length && !bytes.empty()) {
    length_ = bytes[0];
    bytes = bytes.subspan(1);
    state_ = state::name;
  }
  if (state_ == state::name) {
    const std::size_t take = std::min(bytes.size(), length_ - name_.size());
    name_.append(reinterpret_cast<const char*>(bytes.data()), take);
    if (name_.size() == length_) state_ = valid_stream_protocol(name_) ? state::done : state::failed;
  }
  return state_ == state::failed ? make_error_code(errc::bad_field) : boost::system::error_code{};
}

}  // namespace kadnet::core::wire
