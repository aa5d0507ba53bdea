#include "kadnet/core/wire/file_transfer.hpp"

#include <cassert>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/wire/utf8.hpp"

namespace kadnet::core::wire {
namespace {

using boost::system::error_code;

constexpr std::size_t offer_fixed = 8 + 32;  // size | digest, then the name
constexpr std::size_t accept_size = 8 + 32;  // offset | prefix digest

bool known_type(std::uint8_t t) {
  return t >= static_cast<std::uint8_t>(file_frame::offer) && t <= static_cast<std::uint8_t>(file_frame::verdict);
}

void put_header(file_frame type, std::size_t length, byte_vector& out) {
  [[maybe_unused]] auto [lo, hi] = frame_length_range(type);
  assert(length >= lo && length <= hi);
  byte_writer w(out);
  w.u8(static_cast<std::uint8_t>(type));
  w.u8(static_cast<std::uint8_t>(type));
  w.u16(static_cast<std::uint16_t>(length));
}

std::string to_string(byte_span s) { return std::string(as_chars(s)); }

}  // namespace

std::pair<std::size_t, std::size_t> frame_length_range(file_frame type) {
  switch (type) {
    case file_frame::offer: return {offer_fixed + 1, offer_fixed + max_file_name};
    case file_frame::accept: return {accept_size, accept_size};
    case file_frame::reject: return {1, 1 + max_reject_text};
    case file_frame::chunk: return {1, max_file_chunk};
    case file_frame::start: return {8, 8};
    case file_frame::verdict: return {1, 1};
  }
  return {1, 0};  // no length fits an undefined type
}

file_frame frame_type(const file_message& m) {
  static constexpr file_frame types[] = {file_frame::offer, file_frame::accept, file_frame::reject,
                                         file_frame::chunk, file_frame::start,  file_frame::verdict};
  static_assert(std::size(types) == std::variant_size_v<file_message>);
  return types[m.index()];
}

void encode_chunk_header(std::size_t length, byte_vector& out) { put_header(file_frame::chunk, length, out); }

void encode(const file_message& m, byte_vector& out) {
  byte_writer w(out);
  std::visit(
      [&](const auto& f) {
        using T = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<T, file_offer>) {
          put_header(file_frame::offer, offer_fixed + f.name.size(), out);
          w.u64(f.size);
          w.bytes(f.digest);
          w.bytes(as_bytes(f.name));
        } else if constexpr (std::is_same_v<T, file_accept>) {
          put_header(file_frame::accept, accept_size, out);
          w.u64(f.offset);
          w.bytes(f.prefix_digest);
        } else if constexpr (std::is_same_v<T, file_reject>) {
          put_header(file_frame::reject, 1 + f.text.size(), out);
          w.u8(static_cast<std::uint8_t>(f.code));
          w.bytes(as_bytes(f.text));
        } else if constexpr (std::is_same_v<T, file_chunk>) {
          put_header(file_frame::chunk, f.data.size(), out);
          w.bytes(f.data);
        } else if constexpr (std::is_same_v<T, file_start>) {
          put_header(file_frame::start, 8, out);
          w.u64(f.offset);
        } else {
          put_header(file_frame::verdict, 1, out);
          w.u8(static_cast<std::uint8_t>(f.code));
        }
      },
      m);
}

error_code decode_header(byte_span in, file_frame_header& out) {
  byte_reader r(in);
  std::uint8_t type = 0, again = 0;
  std::uint16_t length = 0;
  if (!r.u8(type) || !r.u8(again) || !r.u16(length)) return errc::truncated;
  if (type != again) return errc::bad_field;
  if (!known_type(type)) return errc::unknown_packet_type;
  auto [lo, hi] = frame_length_range(static_cast<file_frame>(type));
  if (length < lo || length > hi) return errc::bad_length;
  out = {static_cast<file_frame>(type), length};
  return {};
}

error_code decode_body(const file_frame_header& header, byte_span body, file_message& out) {
  auto [lo, hi] = frame_length_range(header.type);
  if (header.length < lo || header.length > hi) return errc::bad_length;
  if (body.size() < header.length) return errc::truncated;
  if (body.size() > header.length) return errc::trailing_bytes;
  // Every field below fits: the length range was checked against the fixed parts.
  byte_reader r(body);
  switch (header.type) {
    case file_frame::offer: {
      file_offer m;
      r.u64(m.size);
      r.array(m.digest);
      m.name = to_string(r.rest());
      out = std::move(m);
      return {};
    }
    case file_frame::accept: {
      file_accept m;
      r.u64(m.offset);
      r.array(m.prefix_digest);
      out = m;
      return {};
    }
    case file_frame::reject: {
      std::uint8_t code = 0;
      r.u8(code);
      byte_span text = r.rest();
      if (!valid_utf8(text)) return errc::bad_field;
      out = file_reject{static_cast<file_reject_code>(code), to_string(text)};
      return {};
    }
    case file_frame::chunk: out = file_chunk{byte_vector(body.begin(), body.end())}; return {};
    case file_frame::start: {
      file_start m;
      r.u64(m.offset);
      out = m;
      return {};
    }
    case file_frame::verdict: {
      std::uint8_t code = 0;
      r.u8(code);
      out = file_verdict{static_cast<file_verdict_code>(code)};
      return {};
    }
  }
  return errc::unknown_packet_type;
}

error_code decode(byte_span in, file_message& out) {
  file_frame_header header;
  if (auto ec = decode_header(in, header)) return ec;
  byte_span body = in.subspan(file_frame_header_size);
  if (body.size() < header.length) return errc::truncated;
  if (body.size() > header.length) return errc::trailing_bytes;
  return decode_body(header, body, out);
}

file_name_problem check_file_name(std::string_view name) {
  if (name.empty()) return file_name_problem::empty;
  if (name.size() > max_file_name) return file_name_problem::too_long;
  if (!valid_utf8(as_bytes(name))) return file_name_problem::not_utf8;
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (c == '/' || c == '\\') return file_name_problem::separator;
    if (u == 0) return file_name_problem::nul;
    if (u < 0x20 || u == 0x7f) return file_name_problem::control;
  }
  if (name == "." || name.starts_with("..")) return file_name_problem::dot;
  if (name.ends_with(".part")) return file_name_problem::partial_suffix;
  return file_name_problem::none;
}

const char* describe(file_name_problem problem) {
  switch (problem) {
    case file_name_problem::none: return "is a valid file name";
    case file_name_problem::empty: return "is empty";
    case file_name_problem::too_long: return "is longer than 255 bytes";
    case file_name_problem::not_utf8: return "is not UTF-8";
    case file_name_problem::separator: return "contains a path separator ('/' or '\\')";
    case file_name_problem::nul: return "contains a NUL byte";
    case file_name_problem::control: return "contains a control character";
    case file_name_problem::dot: return "is '.' or starts with '..'";
    case file_name_problem::partial_suffix: return "ends in '.part' (reserved for partial files)";
  }
  return "is not a valid file name";
}

}  // namespace kadnet::core::wire
