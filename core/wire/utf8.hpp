#pragma once
// UTF-8 validation for text fields that peers send (file names, reasons).
#include "kadnet/core/bytes.hpp"

namespace kadnet::core::wire {

// True when `s` is UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates, nothing above
// U+10FFFF. Never throws, never reads past `s`.
bool valid_utf8(byte_span s);

}  // namespace kadnet::core::wire
