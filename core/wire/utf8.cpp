#include "kadnet/core/wire/utf8.hpp"

namespace kadnet::core::wire {

// Neither the standard library nor our dependencies offer a non-throwing check.
// (core/wire/message.cpp has its own copy of this check for NACK texts.)
bool valid_utf8(byte_span s) {
  std::size_t i = 0;
  while (i < s.size()) {
    std::uint8_t b = s[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    std::size_t extra;
    std::uint8_t lo = 0x80, hi = 0xbf;  // allowed range of the first continuation byte
    if (b >= 0xc2 && b <= 0xdf) {
      extra = 1;
    } else if (b >= 0xe0 && b <= 0xef) {
      extra = 2;
      if (b == 0xe0) lo = 0xa0;  // overlong
      if (b == 0xed) hi = 0x9f;  // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      extra = 3;
      if (b == 0xf0) lo = 0x90;  // overlong
      if (b == 0xf4) hi = 0x8f;  // above U+10FFFF
    } else {
      return false;
    }
    if (s.size() - i <= extra) return false;
    if (s[i + 1] < lo || s[i + 1] > hi) return false;
    for (std::size_t k = 2; k <= extra; ++k)
      if ((s[i + k] & 0xc0) != 0x80) return false;
    i += extra + 1;
  }
  return true;
}

}  // namespace kadnet::core::wire
