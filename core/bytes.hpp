#pragma once
// Byte buffers and bounds-checked big-endian reading and writing.
//
// Every decoder in kadnet reads peer input through byte_reader: each read checks the remaining
// length first and reports failure instead of reading past the end, so a lying length field can
// never cause an over-read or an oversized allocation (callers check lengths against their own
// limits before asking for a span).
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kadnet {

using byte_vector = std::vector<std::uint8_t>;
using byte_span = std::span<const std::uint8_t>;
using mutable_byte_span = std::span<std::uint8_t>;

inline byte_span as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(byte_span b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Lower-case hex text of bytes, and back; from_hex returns false on odd length or a non-hex digit.
std::string to_hex(byte_span bytes);
bool from_hex(std::string_view text, byte_vector& out);

// Appends big-endian integers and raw bytes to a vector.
class byte_writer {
 public:
  explicit byte_writer(byte_vector& out) : out_(out) {}

  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) { put_be(v, 2); }
  void u24(std::uint32_t v) { put_be(v, 3); }
  void u32(std::uint32_t v) { put_be(v, 4); }
  void u64(std::uint64_t v) { put_be(v, 8); }
  void bytes(byte_span b) { out_.insert(out_.end(), b.begin(), b.end()); }
  template <std::size_t N>
  void bytes(const std::array<std::uint8_t, N>& a) { bytes(byte_span(a)); }
  std::size_t size() const { return out_.size(); }

 private:
  void put_be(std::uint64_t v, int width) {
    for (int i = width - 1; i >= 0; --i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  byte_vector& out_;
};

// Reads big-endian integers and byte ranges from a span. Each read returns false (and leaves the
// output untouched) when fewer bytes remain than asked for.
class byte_reader {
 public:
  explicit byte_reader(byte_span in) : in_(in) {}

  bool u8(std::uint8_t& v) { return get_be(v, 1); }
  bool u16(std::uint16_t& v) { return get_be(v, 2); }
  bool u24(std::uint32_t& v) { return get_be(v, 3); }
  bool u32(std::uint32_t& v) { return get_be(v, 4); }
  bool u64(std::uint64_t& v) { return get_be(v, 8); }
  bool span(std::size_t n, byte_span& out) {
    if (remaining() < n) return false;
    out = in_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  template <std::size_t N>
  bool array(std::array<std::uint8_t, N>& out) {
    if (remaining() < N) return false;
    std::memcpy(out.data(), in_.data() + pos_, N);
    pos_ += N;
    return true;
  }
  byte_span rest() {
    byte_span r = in_.subspan(pos_);
    pos_ = in_.size();
    return r;
  }
  std::size_t remaining() const { return in_.size() - pos_; }
  bool empty() const { return remaining() == 0; }
  std::size_t position() const { return pos_; }

 private:
  template <typename T>
  bool get_be(T& v, int width) {
    if (remaining() < static_cast<std::size_t>(width)) return false;
    std::uint64_t acc = 0;
    for (int i = 0; i < width; ++i) acc = (acc << 8) | in_[pos_ + i];
    pos_ += width;
    v = static_cast<T>(acc);
    return true;
  }
  byte_span in_;
  std::size_t pos_ = 0;
};

}  // namespace kadnet
