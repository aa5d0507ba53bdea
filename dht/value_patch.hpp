#pragma once
// A diff between two versions of a value: byte splices, the change a PATCH carries instead of the
// whole value (seed 003 goal 6.3). Sans-I/O and allocation-bounded: decoding and applying a
// hostile patch costs at most the limits' worth of work and memory, whatever its fields claim.
//
// A splice replaces `removed` bytes at `offset` of the base value with `inserted`. Offsets refer
// to the base (the version the patch was made against), splices come in increasing order and do
// not overlap: each starts at or after the end of the previous one's removed range. So a patch is
// checked against the base before anything is built, and applying it is one pass.
//
// Wire form (PROTOCOL.md "Diffs"): splice count (u16), then per splice
//   offset (u32) | removed (u32) | inserted length (u32) | inserted bytes
#include <cstdint>
#include <vector>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"

namespace kadnet::dht {

struct splice {
  std::uint32_t offset = 0;
  std::uint32_t removed = 0;
  byte_vector inserted;
  friend bool operator==(const splice&, const splice&) = default;
};

struct value_patch {
  std::vector<splice> splices;
  friend bool operator==(const value_patch&, const value_patch&) = default;
};

struct patch_limits {
  std::size_t max_splices = 1024;
  std::size_t max_value = 64 * 1024;  // the patched value, and all inserted bytes together
};

void encode_patch(const value_patch& p, byte_vector& out);
// errc::truncated, trailing_bytes, too_large (more splices or inserted bytes than the limits).
boost::system::error_code decode_patch(byte_span in, const patch_limits& limits, value_patch& out);

// The value `base` becomes under `p`. errc::bad_field when a splice reaches past the base or
// overlaps or precedes the one before it; errc::too_large when the result would exceed
// limits.max_value. `out` is untouched on error.
boost::system::error_code apply_patch(byte_span base, const value_patch& p, const patch_limits& limits,
                                      byte_vector& out);

// A patch turning `from` into `to`: the changed runs between their common prefix and suffix, one
// splice per run when the middle keeps its length (runs closer than `merge_gap` bytes are
// merged, a splice header being 12 bytes), else one splice for the whole middle.
value_patch make_patch(byte_span from, byte_span to, std::size_t merge_gap = 16);

// The bytes encode_patch writes for `p`.
std::size_t encoded_size(const value_patch& p);

}  // namespace kadnet::dht
