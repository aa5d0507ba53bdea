#include "kadnet/dht/lock_record.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string_view>

namespace kadnet::dht {
namespace {

using boost::system::error_code;
using core::errc;

constexpr std::string_view magic = "kadnet-lock-1";
constexpr std::uint8_t state_free = 0, state_held = 1;

// Sizes first, so that a value of another kind is told apart without reading it.
error_code check_size(std::size_t have, std::size_t want) {
  if (have < want) return errc::truncated;
  if (have > want) return errc::trailing_bytes;
  return {};
}

std::uint32_t to_ms_field(std::chrono::milliseconds d) {
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(d.count(), 0, UINT32_MAX));
}

// The current value as a lock record: nullopt for a key holding nothing; not_a_lock for bytes
// that are something else.
std::variant<std::optional<lock_record>, errc> read_current(const std::optional<byte_vector>& current) {
  if (!current) return std::optional<lock_record>{};
  lock_record r;
  if (decode_lock_record(*current, r)) return errc::not_a_lock;
  return std::optional<lock_record>{r};
}

}  // namespace

void encode_lock_record(const lock_record& r, byte_vector& out) {
  byte_writer w(out);
  w.bytes(as_bytes(magic));
  w.u8(r.held ? state_held : state_free);
  w.u64(r.token);
  w.bytes(r.holder.bytes());
  w.u32(to_ms_field(r.lease));
}

byte_vector lock_record_bytes(const lock_record& r) {
  byte_vector out;
  encode_lock_record(r, out);
  return out;
}

error_code decode_lock_record(byte_span in, lock_record& out) {
  if (auto ec = check_size(in.size(), lock_record_size)) return ec;
  byte_reader r(in);
  byte_span m;
  std::uint8_t state = 0;
  lock_record rec;
  core::node_id::bytes_type holder;
  std::uint32_t lease_ms = 0;
  if (!r.span(magic.size(), m) || !r.u8(state) || !r.u64(rec.token) || !r.array(holder) || !r.u32(lease_ms))
    return errc::truncated;  // not reached: the size was checked
  if (std::memcmp(m.data(), magic.data(), magic.size()) != 0) return errc::bad_field;
  if (state != state_free && state != state_held) return errc::bad_field;
  rec.held = state == state_held;
  rec.holder = core::node_id(holder);
  rec.lease = std::chrono::milliseconds(lease_ms);
  if (rec.held && (rec.token == 0 || rec.lease.count() == 0 || rec.lease > max_lock_lease)) return errc::bad_field;
  if (!rec.held && rec.lease.count() != 0) return errc::bad_field;
  out = rec;
  return {};
}

void encode_lock_refusal(const lock_refusal& r, byte_vector& out) {
  byte_writer w(out);
  w.bytes(r.holder.bytes());
  w.u64(r.token);
  w.u32(to_ms_field(r.remaining));
}

error_code decode_lock_refusal(byte_span in, lock_refusal& out) {
  if (auto ec = check_size(in.size(), lock_refusal_size)) return ec;
  byte_reader r(in);
  core::node_id::bytes_type holder;
  lock_refusal x;
  std::uint32_t ms = 0;
  if (!r.array(holder) || !r.u64(x.token) || !r.u32(ms)) return errc::truncated;
  x.holder = core::node_id(holder);
  x.remaining = std::chrono::milliseconds(ms);
  out = x;
  return {};
}

lock_step acquire_step(const std::optional<byte_vector>& current, const core::node_id& self,
                       std::chrono::milliseconds lease) {
  auto read = read_current(current);
  if (auto* e = std::get_if<errc>(&read)) return *e;
  const auto& rec = std::get<std::optional<lock_record>>(read);
  // No token lies above the largest (only a forged or runaway record holds it): the key cannot be
  // taken as a lock any more, rather than its token wrapping round to reuse old ones.
  if (rec && rec->token == std::numeric_limits<std::uint64_t>::max()) return errc::not_a_lock;
  // Whether a held lease is over is the replicas' call, not ours (our clock says nothing about
  // when they committed it): propose, and they refuse with `locked` while it runs.
  return lock_record{true, rec ? rec->token + 1 : 1, self, lease};
}

lock_step renew_step(const std::optional<byte_vector>& current, const core::node_id& self,
                     std::uint64_t token, std::chrono::milliseconds lease) {
  auto read = read_current(current);
  if (auto* e = std::get_if<errc>(&read)) return *e;
  const auto& rec = std::get<std::optional<lock_record>>(read);
  if (!rec || !rec->held || rec->holder != self || rec->token != token) return errc::not_lock_holder;
  return lock_record{true, token, self, lease};
}

lock_step release_step(const std::optional<byte_vector>& current, const core::node_id& self,
                       std::uint64_t token) {
  auto read = read_current(current);
  if (auto* e = std::get_if<errc>(&read)) return *e;
  const auto& rec = std::get<std::optional<lock_record>>(read);
  if (!rec || !rec->held || rec->holder != self || rec->token != token) return errc::not_lock_holder;
  return lock_record{false, token, self, std::chrono::milliseconds(0)};
}

}  // namespace kadnet::dht
