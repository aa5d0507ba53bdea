#pragma once
// A value as a holder keeps it: the STORE's key, version, bytes and owner part, with the TTL
// turned into an absolute expiry time. Sans-I/O: `now` is always a parameter.
//
// Owned values are BEP 44's mutable items: `owner` is the Ed25519 key (a node_id) that signed
// wire::store_signed_bytes (key ‖ version ‖ value) and `sig` that signature. The TTL is not
// signed, so a holder may shorten it when it replicates the value.
#include <chrono>
#include <cstdint>
#include <optional>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/core/node_id.hpp"
#include "kadnet/core/rpc_tracker.hpp"
#include "kadnet/core/wire/message.hpp"

namespace kadnet::dht {

struct stored_value {
  core::node_id key;
  std::uint64_t version = 0;
  byte_vector value;
  core::time_point expires{};  // live while now < expires
  std::optional<core::node_id> owner;  // set together with sig, or neither
  std::optional<core::signature> sig;
  bool original = false;  // we published it: republish it

  bool signed_value() const { return owner.has_value() || sig.has_value(); }
  bool live(core::time_point now) const { return now < expires; }
  friend bool operator==(const stored_value&, const stored_value&) = default;
};

// The value a STORE asks to keep, expiring `ttl_seconds` after `now`. Nothing is checked here:
// the store's rules (dht/store_rules.hpp) verify the signature and clamp the TTL.
stored_value from_store(const core::wire::store& s, core::time_point now);

// The STORE that hands `v` on (replication, republish): ttl_seconds is what remains at `now`,
// rounded down (0 once expired).
core::wire::store to_store(const stored_value& v, core::time_point now);

// True for an unowned value (neither owner nor sig) and for an owned one whose sig is the owner's
// Ed25519 signature over wire::store_signed_bytes. False when only one of owner and sig is set.
bool verify_owner_signature(const stored_value& v);

}  // namespace kadnet::dht
