#include "kadnet/core/wire/message.hpp"

#include <cassert>
#include <limits>
#include <string_view>
#include <type_traits>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/wire/utf8.hpp"

namespace kadnet::core::wire {
namespace {

using boost::system::error_code;

constexpr std::uint8_t sealed_flag = 0x01;       // WHISPER flags bit 0
constexpr std::uint8_t owner_signed_flag = 0x01;  // STORE flags bit 0
constexpr std::uint8_t consensus_flag = 0x02;     // STORE flags bit 1
constexpr std::uint8_t patch_flag = 0x04;         // STORE flags bit 2
constexpr std::uint8_t notify_flag = 0x08;        // STORE flags bit 3
constexpr std::string_view shout_context = "kadnet-shout-1";
constexpr std::string_view store_context = "kadnet-store-1";

// The opcode of every body but plugin_call, in variant order.
constexpr std::uint8_t body_opcode(std::size_t index) { return static_cast<std::uint8_t>(index); }
static_assert(std::variant_size_v<message_body> == last_defined_opcode + 2);
static_assert(std::is_same_v<std::variant_alternative_t<9, message_body>, store>);

byte_vector to_vector(byte_span s) { return byte_vector(s.begin(), s.end()); }

// A length-prefixed field: the limit is checked first (a length beyond it is refused whatever
// the input holds), then the remaining input. Only then is anything copied.
error_code read_counted(byte_reader& r, std::size_t length, std::size_t limit, byte_span& out) {
  if (length > limit) return errc::too_large;
  if (!r.span(length, out)) return errc::truncated;
  return {};
}

// The rest of the input as a payload, bounded by max_payload.
error_code read_rest(byte_reader& r, const decode_limits& limits, byte_vector& out) {
  if (r.remaining() > limits.max_payload) return errc::too_large;
  out = to_vector(r.rest());
  return {};
}

error_code read_id(byte_reader& r, node_id& out) {
  node_id::bytes_type b;
  if (!r.array(b)) return errc::truncated;
  out = node_id(b);
  return {};
}

error_code expect_end(const byte_reader& r) {
  return r.empty() ? error_code{} : error_code{errc::trailing_bytes};
}

// One decoder per body; each reads the fields after the 5-byte header.
error_code decode_body(byte_reader& r, const decode_limits& limits, ack& m) {
  if (!r.u8(m.request_opcode)) return errc::truncated;
  return read_rest(r, limits, m.data);
}

error_code decode_body(byte_reader& r, const decode_limits& limits, nack& m) {
  std::uint16_t code = 0, text_len = 0;
  if (!r.u8(m.request_opcode) || !r.u16(code) || !r.u16(text_len)) return errc::truncated;
  m.code = static_cast<nack_code>(code);
  byte_span text;
  if (auto ec = read_counted(r, text_len, limits.max_text, text)) return ec;
  if (!valid_utf8(text)) return errc::bad_field;
  m.text.assign(as_chars(text));
  return read_rest(r, limits, m.data);
}

error_code decode_body(byte_reader& r, const decode_limits&, ping&) { return expect_end(r); }

error_code decode_body(byte_reader& r, const decode_limits&, set_connection_opt& m) {
  if (!r.u8(m.option) || !r.u8(m.setting)) return errc::truncated;
  return expect_end(r);
}

error_code decode_body(byte_reader& r, const decode_limits& limits, shout& m) {
  if (auto ec = read_id(r, m.origin)) return ec;
  std::uint32_t payload_len = 0;
  std::uint8_t level_count = 0;
  if (!r.u64(m.sequence) || !r.u8(m.hops) || !r.u8(m.scope) || !r.u8(level_count)) return errc::truncated;
  // Levels strictly ascend below scope, so there are at most `scope` of them.
  if (level_count > m.scope) return errc::bad_field;
  byte_span levels;
  if (!r.span(level_count, levels)) return errc::truncated;
  for (std::size_t i = 0; i < levels.size(); ++i)
    if (levels[i] >= m.scope || (i > 0 && levels[i] <= levels[i - 1])) return errc::bad_field;
  m.also_levels.assign(levels.begin(), levels.end());
  if (!r.u32(payload_len)) return errc::truncated;
  byte_span payload;
  if (auto ec = read_counted(r, payload_len, limits.max_payload, payload)) return ec;
  if (!r.array(m.sig)) return errc::truncated;
  if (auto ec = expect_end(r)) return ec;
  m.payload = to_vector(payload);
  return {};
}

error_code decode_body(byte_reader& r, const decode_limits& limits, speak& m) {
  if (auto ec = read_id(r, m.origin)) return ec;
  if (!r.u64(m.sequence)) return errc::truncated;
  return read_rest(r, limits, m.payload);
}

error_code decode_body(byte_reader& r, const decode_limits& limits, whisper& m) {
  if (auto ec = read_id(r, m.sender)) return ec;
  if (auto ec = read_id(r, m.target)) return ec;
  std::uint8_t flags = 0;
  if (!r.u8(flags)) return errc::truncated;
  if (flags & ~sealed_flag) return errc::bad_field;
  m.sealed = (flags & sealed_flag) != 0;
  return read_rest(r, limits, m.payload);
}

error_code decode_body(byte_reader& r, const decode_limits&, find_node& m) {
  if (auto ec = read_id(r, m.target)) return ec;
  return expect_end(r);
}

error_code decode_body(byte_reader& r, const decode_limits&, find_value& m) {
  if (auto ec = read_id(r, m.key)) return ec;
  if (r.remaining() == 0) return {};
  // 37 bytes are a whole FIND_VALUE: anything short of a listen block after them is left over.
  listen_request l;
  if (r.remaining() < 12) return errc::trailing_bytes;
  if (!r.u32(l.lease_seconds) || !r.u64(l.known_version)) return errc::truncated;
  m.listen = l;
  return expect_end(r);
}

error_code decode_body(byte_reader& r, const decode_limits& limits, store& m) {
  if (auto ec = read_id(r, m.key)) return ec;
  std::uint8_t flags = 0;
  if (!r.u64(m.version) || !r.u32(m.ttl_seconds) || !r.u8(flags)) return errc::truncated;
  if (flags & ~(owner_signed_flag | consensus_flag | patch_flag | notify_flag)) return errc::bad_field;
  // Compare-and-swap is defined for unowned keys only; a patch is a plain write of version
  // base + 1, so it has a base (version >= 1) and is no phase of compare-and-swap.
  if ((flags & owner_signed_flag) && (flags & consensus_flag)) return errc::bad_field;
  if ((flags & patch_flag) && ((flags & consensus_flag) || m.version == 0)) return errc::bad_field;
  if ((flags & notify_flag) && (flags & consensus_flag)) return errc::bad_field;
  m.patch = (flags & patch_flag) != 0;
  m.notify = (flags & notify_flag) != 0;
  if (flags & owner_signed_flag) {
    store_owner o;
    if (auto ec = read_id(r, o.owner)) return ec;
    if (!r.array(o.sig)) return errc::truncated;
    m.owner = o;
  }
  if (flags & consensus_flag) {
    store_consensus c;
    std::uint8_t phase = 0;
    if (!r.u8(phase) || !r.u64(c.round)) return errc::truncated;
    if (auto ec = read_id(r, c.proposer)) return ec;
    if (!r.array(c.proposal)) return errc::truncated;
    if (phase < static_cast<std::uint8_t>(consensus_phase::prepare) ||
        phase > static_cast<std::uint8_t>(consensus_phase::commit))
      return errc::bad_field;
    c.phase = static_cast<consensus_phase>(phase);
    m.consensus = c;
  }
  std::uint32_t value_len = 0;
  if (!r.u32(value_len)) return errc::truncated;
  byte_span value;
  if (auto ec = read_counted(r, value_len, limits.max_value, value)) return ec;
  if (auto ec = expect_end(r)) return ec;
  m.value = to_vector(value);
  return {};
}

error_code decode_body(byte_reader& r, const decode_limits&, announce& m) {
  // No address: the sender listens nowhere and asks only how it is seen (PROTOCOL.md 5.13).
  if (auto ec = read_address_list(r, m.addresses, /*may_be_empty=*/true)) return ec;
  return expect_end(r);
}

error_code decode_body(byte_reader& r, const decode_limits&, introduce& m) {
  if (auto ec = read_id(r, m.peer)) return ec;
  std::uint8_t length = 0;
  byte_span address;
  if (!r.u8(length)) return errc::truncated;
  if (length != 0 && length != introduce_address_size) return errc::bad_field;
  if (!r.span(length, address)) return errc::truncated;
  if (auto ec = expect_end(r)) return ec;
  m.address = to_vector(address);
  return {};
}

error_code decode_body(byte_reader& r, const decode_limits& limits, relay& m) {
  std::uint8_t kind = 0;
  if (!r.u32(m.circuit) || !r.u8(kind)) return errc::truncated;
  m.from_opener = kind & relay_from_opener_flag;
  kind &= ~relay_from_opener_flag;
  if (kind > static_cast<std::uint8_t>(relay_kind::close)) return errc::bad_field;
  m.kind = static_cast<relay_kind>(kind);
  if (m.kind == relay_kind::open) {
    if (auto ec = read_id(r, m.peer)) return ec;
  } else if (m.kind == relay_kind::data) {
    if (r.remaining() == 0) return errc::truncated;
    return read_rest(r, limits, m.data);
  }
  return expect_end(r);
}

error_code decode_body(byte_reader& r, const decode_limits& limits, plugin_call& m) {
  return read_rest(r, limits, m.payload);
}

// Builds the body alternative `Index` and decodes into it; selected by opcode below.
template <std::size_t Index>
error_code decode_as(byte_reader& r, const decode_limits& limits, message_body& body) {
  std::variant_alternative_t<Index, message_body> m;
  if (auto ec = decode_body(r, limits, m)) return ec;
  body.emplace<Index>(std::move(m));
  return {};
}

template <std::size_t... I>
error_code decode_defined(std::uint8_t op, byte_reader& r, const decode_limits& limits,
                          message_body& body, std::index_sequence<I...>) {
  using fn = error_code (*)(byte_reader&, const decode_limits&, message_body&);
  static constexpr fn table[] = {&decode_as<I>...};
  return table[op](r, limits, body);
}

void write_counted(byte_writer& w, byte_span b) {
  assert(b.size() <= std::numeric_limits<std::uint32_t>::max());
  w.u32(static_cast<std::uint32_t>(b.size()));
  w.bytes(b);
}

struct body_encoder {
  byte_writer& w;

  void operator()(const ack& m) {
    w.u8(m.request_opcode);
    w.bytes(m.data);
  }
  void operator()(const nack& m) {
    assert(m.text.size() <= std::numeric_limits<std::uint16_t>::max());
    w.u8(m.request_opcode);
    w.u16(static_cast<std::uint16_t>(m.code));
    w.u16(static_cast<std::uint16_t>(m.text.size()));
    w.bytes(as_bytes(m.text));
    w.bytes(m.data);
  }
  void operator()(const ping&) {}
  void operator()(const set_connection_opt& m) {
    w.u8(m.option);
    w.u8(m.setting);
  }
  void operator()(const shout& m) {
    w.bytes(m.origin.bytes());
    w.u64(m.sequence);
    w.u8(m.hops);
    w.u8(m.scope);
    w.u8(static_cast<std::uint8_t>(m.also_levels.size()));
    for (std::uint8_t level : m.also_levels) w.u8(level);
    write_counted(w, m.payload);
    w.bytes(m.sig);
  }
  void operator()(const speak& m) {
    w.bytes(m.origin.bytes());
    w.u64(m.sequence);
    w.bytes(m.payload);
  }
  void operator()(const whisper& m) {
    w.bytes(m.sender.bytes());
    w.bytes(m.target.bytes());
    w.u8(m.sealed ? sealed_flag : 0);
    w.bytes(m.payload);
  }
  void operator()(const find_node& m) { w.bytes(m.target.bytes()); }
  void operator()(const find_value& m) {
    w.bytes(m.key.bytes());
    if (!m.listen) return;
    w.u32(m.listen->lease_seconds);
    w.u64(m.listen->known_version);
  }
  void operator()(const store& m) {
    w.bytes(m.key.bytes());
    w.u64(m.version);
    w.u32(m.ttl_seconds);
    assert(!(m.owner && m.consensus));
    assert(!(m.patch && (m.consensus || m.version == 0)));
    assert(!(m.notify && m.consensus));
    w.u8(static_cast<std::uint8_t>((m.owner ? owner_signed_flag : 0) | (m.consensus ? consensus_flag : 0) |
                                   (m.patch ? patch_flag : 0) | (m.notify ? notify_flag : 0)));
    if (m.owner) {
      w.bytes(m.owner->owner.bytes());
      w.bytes(m.owner->sig);
    }
    if (m.consensus) {
      w.u8(static_cast<std::uint8_t>(m.consensus->phase));
      w.u64(m.consensus->round);
      w.bytes(m.consensus->proposer.bytes());
      w.bytes(m.consensus->proposal);
    }
    write_counted(w, m.value);
  }
  void operator()(const announce& m) { write_address_list(w, m.addresses); }
  void operator()(const introduce& m) {
    assert(m.address.empty() || m.address.size() == introduce_address_size);
    w.bytes(m.peer.bytes());
    w.u8(static_cast<std::uint8_t>(m.address.size()));
    w.bytes(m.address);
  }
  void operator()(const relay& m) {
    assert(m.kind == relay_kind::data ? !m.data.empty() : m.data.empty());
    w.u32(m.circuit);
    w.u8(static_cast<std::uint8_t>(static_cast<std::uint8_t>(m.kind) | (m.from_opener ? relay_from_opener_flag : 0)));
    if (m.kind == relay_kind::open) w.bytes(m.peer.bytes());
    w.bytes(m.data);
  }
  void operator()(const plugin_call& m) { w.bytes(m.payload); }
};

}  // namespace

message make_message(std::uint32_t id, message_body body) {
  assert(!std::holds_alternative<plugin_call>(body));
  message m;
  m.opcode = body_opcode(body.index());
  m.id = id;
  m.body = std::move(body);
  return m;
}

message make_plugin_call(std::uint8_t opcode, std::uint32_t id, byte_vector payload) {
  assert(opcode >= first_plugin_opcode);
  message m;
  m.opcode = opcode;
  m.id = id;
  m.body = plugin_call{std::move(payload)};
  return m;
}

void encode(const message& m, byte_vector& out) {
  assert(std::holds_alternative<plugin_call>(m.body) ? m.opcode >= first_plugin_opcode
                                                      : m.opcode == body_opcode(m.body.index()));
  byte_writer w(out);
  w.u8(m.opcode);
  w.u32(m.id);
  std::visit(body_encoder{w}, m.body);
}

error_code decode_header(byte_span in, std::uint8_t& opcode, std::uint32_t& id) {
  byte_reader r(in);
  std::uint8_t op = 0;
  std::uint32_t i = 0;
  if (!r.u8(op) || !r.u32(i)) return errc::truncated;
  opcode = op;
  id = i;
  return {};
}

error_code decode(byte_span in, message& out, const decode_limits& limits) {
  byte_reader r(in);
  message m;
  if (!r.u8(m.opcode) || !r.u32(m.id)) return errc::truncated;
  error_code ec;
  if (m.opcode <= last_defined_opcode) {
    ec = decode_defined(m.opcode, r, limits, m.body,
                        std::make_index_sequence<last_defined_opcode + 1>{});
  } else if (m.opcode < first_plugin_opcode) {
    ec = errc::unknown_opcode;
  } else {
    ec = decode_as<std::variant_size_v<message_body> - 1>(r, limits, m.body);
  }
  if (ec) return ec;
  out = std::move(m);
  return {};
}

error_code read_address_list(byte_reader& r, std::vector<std::string>& out, bool may_be_empty) {
  std::uint8_t count = 0;
  if (!r.u8(count)) return errc::truncated;
  if (count == 0 && !may_be_empty) return errc::bad_field;
  if (count > max_announced_addresses) return errc::too_large;
  std::vector<std::string> addresses;
  for (std::uint8_t i = 0; i < count; ++i) {
    std::uint8_t len = 0;
    byte_span text;
    if (!r.u8(len) || !r.span(len, text)) return errc::truncated;
    if (len == 0) return errc::bad_field;
    for (auto c : text)
      if (c < 0x21 || c > 0x7e) return errc::bad_field;  // URIs are printable ASCII
    addresses.emplace_back(as_chars(text));
  }
  out = std::move(addresses);
  return {};
}

void write_address_list(byte_writer& w, const std::vector<std::string>& addresses) {
  assert(addresses.size() <= max_announced_addresses);
  w.u8(static_cast<std::uint8_t>(addresses.size()));
  for (const auto& a : addresses) {
    assert(!a.empty() && a.size() <= 255);
    w.u8(static_cast<std::uint8_t>(a.size()));
    w.bytes(as_bytes(a));
  }
}

// SHOUT and STORE signatures cover the same shape: context ‖ id ‖ u64 ‖ counted bytes.
static byte_vector signed_bytes(std::string_view context, const node_id& id, std::uint64_t number,
                                byte_span data) {
  byte_vector out;
  out.reserve(context.size() + node_id_size + 8 + 4 + data.size());
  byte_writer w(out);
  w.bytes(as_bytes(context));
  w.bytes(id.bytes());
  w.u64(number);
  write_counted(w, data);
  return out;
}

byte_vector shout_signed_bytes(const shout& s) {
  return signed_bytes(shout_context, s.origin, s.sequence, s.payload);
}

byte_vector store_signed_bytes(const store& s) {
  return signed_bytes(store_context, s.key, s.version, s.value);
}

}  // namespace kadnet::core::wire
