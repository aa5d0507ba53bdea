#include "kadnet/dht/cas_codec.hpp"

#include <cassert>
#include <limits>

#include "kadnet/core/errors.hpp"
#include "kadnet/dht/dht_codec.hpp"

namespace kadnet::dht {
namespace {

using boost::system::error_code;
using core::errc;

constexpr std::uint8_t accepted_flag = 0x01;  // promise flags bit 0
constexpr std::uint8_t writer_flag = 0x01;    // conflict flags bit 0

void write_ballot(byte_writer& w, const ballot& b) {
  w.u64(b.round);
  w.bytes(b.proposer.bytes());
}

bool read_ballot(byte_reader& r, ballot& out) {
  core::node_id::bytes_type id;
  if (!r.u64(out.round) || !r.array(id)) return false;
  out.proposer = core::node_id(id);
  return true;
}

void write_value(byte_writer& w, const byte_vector& value) {
  assert(value.size() <= std::numeric_limits<std::uint32_t>::max());
  w.u32(static_cast<std::uint32_t>(value.size()));
  w.bytes(value);
}

// A counted value that must end the input.
error_code read_last_value(byte_reader& r, std::size_t max_value_size, byte_vector& out) {
  if (auto ec = read_value(r, max_value_size, out)) return ec;
  return r.empty() ? error_code{} : error_code{errc::trailing_bytes};
}

}  // namespace

void encode_promise(const cas_promise& p, byte_vector& out) {
  byte_writer w(out);
  w.u8(p.accepted ? accepted_flag : 0);
  if (!p.accepted) return;
  write_ballot(w, p.accepted->by);
  w.bytes(p.accepted->proposal);
  write_value(w, p.accepted->value);
}

error_code decode_promise(byte_span in, cas_promise& out, std::size_t max_value_size) {
  byte_reader r(in);
  std::uint8_t flags = 0;
  if (!r.u8(flags)) return errc::truncated;
  if (flags & ~accepted_flag) return errc::bad_field;
  cas_promise p;
  if (flags & accepted_flag) {
    accepted_proposal a;
    if (!read_ballot(r, a.by) || !r.array(a.proposal)) return errc::truncated;
    if (auto ec = read_last_value(r, max_value_size, a.value)) return ec;
    p.accepted = std::move(a);
  } else if (!r.empty()) {
    return errc::trailing_bytes;
  }
  out = std::move(p);
  return {};
}

void encode_conflict(const cas_conflict& c, byte_vector& out) {
  byte_writer w(out);
  w.u64(c.version);
  w.u8(c.writer ? writer_flag : 0);
  if (c.writer) w.bytes(*c.writer);
  write_value(w, c.value);
}

error_code decode_conflict(byte_span in, cas_conflict& out, std::size_t max_value_size) {
  byte_reader r(in);
  cas_conflict c;
  std::uint8_t flags = 0;
  if (!r.u64(c.version) || !r.u8(flags)) return errc::truncated;
  if (flags & ~writer_flag) return errc::bad_field;
  if (flags & writer_flag) {
    proposal_id writer;
    if (!r.array(writer)) return errc::truncated;
    c.writer = writer;
  }
  if (auto ec = read_last_value(r, max_value_size, c.value)) return ec;
  out = std::move(c);
  return {};
}

void encode_ballot(const ballot& b, byte_vector& out) {
  byte_writer w(out);
  write_ballot(w, b);
}

error_code decode_ballot(byte_span in, ballot& out) {
  byte_reader r(in);
  ballot b;
  if (!read_ballot(r, b)) return errc::truncated;
  if (!r.empty()) return errc::trailing_bytes;
  out = b;
  return {};
}

void encode_version(std::uint64_t version, byte_vector& out) {
  byte_writer w(out);
  w.u64(version);
}

error_code decode_version(byte_span in, std::uint64_t& out) {
  byte_reader r(in);
  std::uint64_t v = 0;
  if (!r.u64(v)) return errc::truncated;
  if (!r.empty()) return errc::trailing_bytes;
  out = v;
  return {};
}

}  // namespace kadnet::dht
