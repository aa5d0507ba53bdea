#include "kadnet/dht/dht_codec.hpp"

#include <cassert>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/wire/message.hpp"

namespace kadnet::dht {
namespace {

using core::errc;

// The decoders of one reply share this: read a contact list into `out`.
boost::system::error_code read_contacts(byte_reader& r, std::vector<wire_contact>& out) {
  std::uint8_t count = 0;
  if (!r.u8(count)) return errc::truncated;
  if (count > max_contacts_per_reply) return errc::too_large;
  std::vector<wire_contact> contacts;
  contacts.reserve(count);
  for (std::uint8_t i = 0; i < count; ++i) {
    wire_contact c;
    {
      core::node_id::bytes_type id;
      if (!r.array(id)) return errc::truncated;
      c.id = core::node_id(id);
    }
    // At least one address: undialable contacts are never handed out.
    if (auto ec = core::wire::read_address_list(r, c.addresses)) return ec;
    contacts.push_back(std::move(c));
  }
  out = std::move(contacts);
  return {};
}

void write_contacts(const std::vector<wire_contact>& contacts, byte_writer& w) {
  assert(contacts.size() <= max_contacts_per_reply);
  w.u8(static_cast<std::uint8_t>(contacts.size()));
  for (const auto& c : contacts) {
    w.bytes(c.id.bytes());
    core::wire::write_address_list(w, c.addresses);
  }
}

}  // namespace

void encode_contacts(const std::vector<wire_contact>& contacts, byte_vector& out) {
  byte_writer w(out);
  write_contacts(contacts, w);
}

boost::system::error_code decode_contacts(byte_span in, std::vector<wire_contact>& out) {
  byte_reader r(in);
  std::vector<wire_contact> contacts;
  if (auto ec = read_contacts(r, contacts)) return ec;
  if (!r.empty()) return errc::trailing_bytes;
  out = std::move(contacts);
  return {};
}

void encode_find_value_reply(const find_value_reply& reply, byte_vector& out) {
  byte_writer w(out);
  if (const auto* contacts = std::get_if<std::vector<wire_contact>>(&reply)) {
    w.u8(0);
    write_contacts(*contacts, w);
    return;
  }
  if (const auto* current = std::get_if<wire_current>(&reply)) {
    w.u8(2);
    w.u64(current->version);
    return;
  }
  const auto& v = std::get<wire_value>(reply);
  assert(v.owner.has_value() == v.sig.has_value());
  w.u8(1);
  w.u64(v.version);
  w.u32(v.ttl_seconds);
  w.u8(v.owner ? 1 : 0);
  if (v.owner) {
    w.bytes(v.owner->bytes());
    w.bytes(*v.sig);
  }
  w.u32(static_cast<std::uint32_t>(v.value.size()));
  w.bytes(v.value);
}

boost::system::error_code decode_find_value_reply(byte_span in, find_value_reply& out,
                                                  std::size_t max_value_size) {
  byte_reader r(in);
  std::uint8_t status = 0;
  if (!r.u8(status)) return errc::truncated;
  if (status == 0) {
    std::vector<wire_contact> contacts;
    if (auto ec = read_contacts(r, contacts)) return ec;
    if (!r.empty()) return errc::trailing_bytes;
    out = std::move(contacts);
    return {};
  }
  if (status == 2) {
    wire_current current;
    if (!r.u64(current.version)) return errc::truncated;
    if (!r.empty()) return errc::trailing_bytes;
    out = current;
    return {};
  }
  if (status != 1) return errc::bad_field;
  wire_value v;
  std::uint8_t flags = 0;
  if (!r.u64(v.version) || !r.u32(v.ttl_seconds) || !r.u8(flags)) return errc::truncated;
  if (flags & ~1u) return errc::bad_field;
  if (flags & 1u) {
    core::node_id::bytes_type owner;
    core::signature sig;
    if (!r.array(owner) || !r.array(sig)) return errc::truncated;
    v.owner = core::node_id(owner);
    v.sig = sig;
  }
  if (auto ec = read_value(r, max_value_size, v.value)) return ec;
  if (!r.empty()) return errc::trailing_bytes;
  out = std::move(v);
  return {};
}

boost::system::error_code read_value(byte_reader& r, std::size_t max_value_size, byte_vector& out) {
  std::uint32_t len = 0;
  byte_span value;
  if (!r.u32(len)) return errc::truncated;
  if (len > max_value_size) return errc::too_large;
  if (!r.span(len, value)) return errc::truncated;
  out.assign(value.begin(), value.end());
  return {};
}

}  // namespace kadnet::dht
