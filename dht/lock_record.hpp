#pragma once
// Locks (docs/PROTOCOL.md 8.9): the lock record that compare-and-swap keeps under a lock's key,
// the data of a replica's NACK `locked`, and the rules that turn one record into the next.
//
// A lock is an ordinary compare-and-swap key whose value is a lock record:
//
//   magic "kadnet-lock-1" (13) | state (1: 0 free, 1 held) | token (8) | holder (32) | lease ms (4)
//
// `token` is the fencing token of the latest grant: every grant writes the previous token + 1, a
// renewal and a release keep it, so tokens only grow while the record lives. `holder` is the node
// granted it (a free record keeps the last holder). `lease ms` is how long the lease runs, counted
// by each replica from the moment it came to hold that version of the record: 1..86,400,000 when
// held, 0 when free. Replicas never compare clocks; only durations on their own clocks.
//
// The rules are pure functions of the current value (as compare-and-swap read it): acquire, renew
// and release each give the record to write, or the reason nothing may be written.
//
// Decoders treat their input as hostile: exact sizes, every field range-checked, one error each.
#include <chrono>
#include <cstdint>
#include <optional>
#include <variant>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/errors.hpp"
#include "kadnet/core/node_id.hpp"

namespace kadnet::dht {

inline constexpr std::size_t lock_record_size = 58;
inline constexpr std::size_t lock_refusal_size = 44;
// The longest lease: a lock record lives as long as the writer's default TTL (24 h) and must not
// vanish while held.
inline constexpr std::chrono::milliseconds max_lock_lease{std::chrono::hours(24)};

struct lock_record {
  bool held = false;
  std::uint64_t token = 0;                 // fencing token of the latest grant (0: never granted)
  core::node_id holder;                    // held: the holder; free: the last holder
  std::chrono::milliseconds lease{0};      // held: 1 ms .. max_lock_lease; free: 0
  friend bool operator==(const lock_record&, const lock_record&) = default;
};

void encode_lock_record(const lock_record& r, byte_vector& out);
byte_vector lock_record_bytes(const lock_record& r);
// errc::truncated / trailing_bytes (size other than 58), bad_field (magic, state, a held record
// with token 0 or a lease outside 1 ms..24 h, a free record with a lease).
boost::system::error_code decode_lock_record(byte_span in, lock_record& out);

// The data of a replica's NACK `locked` refusing a write: whom the lock is held by and how long
// this replica still counts the lease.  holder (32) | token (8) | remaining ms (4)
struct lock_refusal {
  core::node_id holder;
  std::uint64_t token = 0;
  std::chrono::milliseconds remaining{0};
  friend bool operator==(const lock_refusal&, const lock_refusal&) = default;
};

void encode_lock_refusal(const lock_refusal& r, byte_vector& out);
// errc::truncated / trailing_bytes for a size other than 44 (a 40-byte `locked` NACK is a
// compare-and-swap outbid ballot instead, 8.6).
boost::system::error_code decode_lock_refusal(byte_span in, lock_refusal& out);

// What a rule says: the record to write, or why nothing is written.
using lock_step = std::variant<lock_record, core::errc>;

// Acquire for `self`: a key holding nothing or a lock record (free, expired or not — the replicas
// judge the lease) gets a record held by self with token + 1. Any other value: not_a_lock.
lock_step acquire_step(const std::optional<byte_vector>& current, const core::node_id& self,
                       std::chrono::milliseconds lease);
// Renew: only a record held by self with `token`; the lease starts again. Else not_lock_holder
// (not_a_lock for a value that is no lock record).
lock_step renew_step(const std::optional<byte_vector>& current, const core::node_id& self,
                     std::uint64_t token, std::chrono::milliseconds lease);
// Release: a record held by self with `token` becomes free (the token stays, so the next grant is
// larger). Else not_lock_holder (not_a_lock as above).
lock_step release_step(const std::optional<byte_vector>& current, const core::node_id& self,
                       std::uint64_t token);

}  // namespace kadnet::dht
