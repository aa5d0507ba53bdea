#pragma once
// The record store a DHT node keeps the values it holds in (rust-libp2p kad's RecordStore): one
// interface, one file per backend (memory_store, sqlite_store), one parameterised test suite.
//
// Contract (sans-I/O: every call takes `now`, no backend reads a clock):
//   put(v, now)   applies the acceptance rules of dht/store_rules.hpp (shared by every backend)
//                 and keeps v, extends the held copy's TTL, or refuses it; a refusal leaves the
//                 held value untouched. The TTL is clamped to store_limits::max_ttl.
//   get(key, now) the live value (now < expires), or nothing.
//   expire(now)   removes every value with expires <= now and returns how many; call it at
//                 next_expiry(). Until then an expired value is invisible to get() and all() but
//                 still counts in size(), bytes() and the quota (put() runs expire() itself
//                 before it answers quota_full).
//   all(now)      the live values in key order, for replication and republish (`original`).
//
// Versions are the ground for the operations built on top: compare-and-swap keeps each committed
// version here as a plain value (dht/cas_acceptor.hpp holds only the undecided slot beside it); a
// lock lease is an owned value whose version is the fencing token; patch(key, base, splices)
// applies to the value of version `base` and puts base+1. Every one of them needs only "versions
// of a key strictly increase", which put() keeps.
#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

#include "kadnet/core/node_id.hpp"
#include "kadnet/core/rpc_tracker.hpp"
#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/stored_value.hpp"

namespace kadnet::dht {

enum class put_result {
  stored,            // kept (new key, or a newer version replacing the held one)
  refreshed,         // same version, same bytes: the held value's TTL was extended
  version_conflict,  // not newer than the held version (or same version, other bytes)
  bad_signature,     // a signed value whose signature does not verify (or owner without sig)
  owner_mismatch,    // the key is held with an owner this value is not signed by, or held unowned
  too_large,         // the value exceeds store_limits::max_value_size
  quota_full,        // keeping it would exceed store_limits::max_values or max_bytes
  storage_failed,    // a persistent backend could not write (disk full, I/O error): nothing kept
  bad_patch,         // a patched STORE whose diff does not decode or does not fit the held base
                     // (dht/store_write.hpp; never returned by put())
};

// stored and refreshed; everything else is a refusal, answered with a NACK.
inline bool accepted(put_result r) {
  return r == put_result::stored || r == put_result::refreshed;
}

// The NACK code that answers a refused STORE: version_conflict, quota_full and too_large have
// their own; bad_signature, owner_mismatch and bad_patch are bad_request (the text tells them apart);
// storage_failed is handler_failed. Accepted results map to unspecified (they are ACKed).
core::wire::nack_code to_nack(put_result r);
// The NACK text: what was wrong, for people ("value signed by another owner", ...).
std::string_view nack_text(put_result r);
// A whole NACK answering a STORE.
core::wire::nack make_nack(put_result r);

class value_store {
 public:
  virtual ~value_store();

  virtual put_result put(stored_value v, core::time_point now) = 0;
  virtual std::optional<stored_value> get(const core::node_id& key, core::time_point now) const = 0;
  virtual std::size_t expire(core::time_point now) = 0;
  virtual std::vector<stored_value> all(core::time_point now) const = 0;
  // The earliest expiry among held values: when to call expire() next.
  virtual std::optional<core::time_point> next_expiry() const = 0;
  // Values held and their bytes (value bytes only), expired ones included until expire().
  virtual std::size_t size() const = 0;
  virtual std::size_t bytes() const = 0;
};

}  // namespace kadnet::dht
