#include "kadnet/dht/value_patch.hpp"

#include <algorithm>

#include "kadnet/core/errors.hpp"

namespace kadnet::dht {

using core::errc;

namespace {
constexpr std::size_t splice_header = 4 + 4 + 4;
}

void encode_patch(const value_patch& p, byte_vector& out) {
  byte_writer w(out);
  w.u16(static_cast<std::uint16_t>(p.splices.size()));
  for (const splice& s : p.splices) {
    w.u32(s.offset);
    w.u32(s.removed);
    w.u32(static_cast<std::uint32_t>(s.inserted.size()));
    w.bytes(s.inserted);
  }
}

std::size_t encoded_size(const value_patch& p) {
  std::size_t n = 2;
  for (const splice& s : p.splices) n += splice_header + s.inserted.size();
  return n;
}

boost::system::error_code decode_patch(byte_span in, const patch_limits& limits, value_patch& out) {
  byte_reader r(in);
  std::uint16_t count = 0;
  if (!r.u16(count)) return errc::truncated;
  if (count > limits.max_splices) return errc::too_large;
  // Each splice takes at least its header: a count the input cannot hold is refused before any
  // allocation.
  if (static_cast<std::size_t>(count) * splice_header > r.remaining()) return errc::truncated;
  value_patch p;
  p.splices.reserve(count);
  std::size_t inserted_total = 0;
  for (std::uint16_t i = 0; i < count; ++i) {
    splice s;
    std::uint32_t length = 0;
    if (!r.u32(s.offset) || !r.u32(s.removed) || !r.u32(length)) return errc::truncated;
    inserted_total += length;
    if (inserted_total > limits.max_value) return errc::too_large;
    byte_span bytes;
    if (!r.span(length, bytes)) return errc::truncated;
    s.inserted.assign(bytes.begin(), bytes.end());
    p.splices.push_back(std::move(s));
  }
  if (!r.empty()) return errc::trailing_bytes;
  out = std::move(p);
  return {};
}

boost::system::error_code apply_patch(byte_span base, const value_patch& p, const patch_limits& limits,
                                      byte_vector& out) {
  // Check everything first, in 64-bit arithmetic: no field can wrap.
  std::uint64_t cursor = 0, size = base.size();
  for (const splice& s : p.splices) {
    const std::uint64_t end = std::uint64_t{s.offset} + s.removed;
    if (s.offset < cursor || end > base.size()) return errc::bad_field;
    size = size - s.removed + s.inserted.size();
    if (size > limits.max_value) return errc::too_large;
    cursor = end;
  }
  byte_vector result;
  result.reserve(static_cast<std::size_t>(size));
  std::size_t at = 0;
  for (const splice& s : p.splices) {
    result.insert(result.end(), base.begin() + static_cast<std::ptrdiff_t>(at),
                  base.begin() + static_cast<std::ptrdiff_t>(s.offset));
    result.insert(result.end(), s.inserted.begin(), s.inserted.end());
    at = std::size_t{s.offset} + s.removed;
  }
  result.insert(result.end(), base.begin() + static_cast<std::ptrdiff_t>(at), base.end());
  out = std::move(result);
  return {};
}

value_patch make_patch(byte_span from, byte_span to, std::size_t merge_gap) {
  std::size_t prefix = 0;
  const std::size_t shorter = std::min(from.size(), to.size());
  while (prefix < shorter && from[prefix] == to[prefix]) ++prefix;
  std::size_t suffix = 0;
  while (suffix < shorter - prefix && from[from.size() - 1 - suffix] == to[to.size() - 1 - suffix]) ++suffix;

  value_patch p;
  const std::size_t from_end = from.size() - suffix, to_end = to.size() - suffix;
  if (prefix == from_end && prefix == to_end) return p;  // equal
  auto add = [&](std::size_t begin, std::size_t from_stop, std::size_t to_stop) {
    p.splices.push_back(splice{static_cast<std::uint32_t>(begin), static_cast<std::uint32_t>(from_stop - begin),
                               byte_vector(to.begin() + static_cast<std::ptrdiff_t>(begin),
                                           to.begin() + static_cast<std::ptrdiff_t>(to_stop))});
  };
  if (from_end - prefix != to_end - prefix) {
    p.splices.push_back(splice{static_cast<std::uint32_t>(prefix), static_cast<std::uint32_t>(from_end - prefix),
                               byte_vector(to.begin() + static_cast<std::ptrdiff_t>(prefix),
                                           to.begin() + static_cast<std::ptrdiff_t>(to_end))});
    return p;
  }
  // Same length in the middle: one splice per run of changed bytes.
  std::size_t i = prefix;
  while (i < from_end) {
    if (from[i] == to[i]) {
      ++i;
      continue;
    }
    std::size_t run_end = i + 1, equal = 0;
    for (std::size_t j = i + 1; j < from_end && equal < merge_gap; ++j) {
      if (from[j] == to[j]) {
        ++equal;
      } else {
        equal = 0;
        run_end = j + 1;
      }
    }
    add(i, run_end, run_end);
    i = run_end;
  }
  return p;
}

}  // namespace kadnet::dht
