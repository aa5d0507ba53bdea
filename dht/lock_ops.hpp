#pragma once
// Locks as compare-and-swap operations (docs/PROTOCOL.md 8.9): what lock, renew and unlock ask
// of cas_proposer (an update function over the lock record, dht/lock_record.hpp) and how its
// cas_outcome reads as a lock_outcome. dht_node runs them like update(); nothing here sends.
#include <chrono>
#include <cstdint>

#include <boost/system/error_code.hpp>

#include "kadnet/core/node_id.hpp"
#include "kadnet/core/rpc_tracker.hpp"
#include "kadnet/dht/cas_proposer.hpp"
#include "kadnet/dht/lock_record.hpp"

namespace kadnet::dht {

enum class lock_action { acquire, renew, release };

struct lock_request {
  lock_action action = lock_action::acquire;
  std::uint64_t token = 0;              // renew, release: the fencing token of the grant
  std::chrono::milliseconds lease{0};   // acquire, renew: 1 ms .. max_lock_lease
};

struct lock_outcome {
  // clear: granted, renewed or released. locked: another node's lease is live at the replicas
  // (holder, token, remaining say whose and for how long one replica still counts it).
  // not_lock_holder: renew or unlock of a grant this node does not hold (taken over, released, or
  // never its own). not_a_lock: the key holds another kind of value. Or cas's errors (no_quorum,
  // not_connected, owned_key).
  boost::system::error_code ec;
  std::uint64_t token = 0;        // the fencing token granted (renewed, released); else the record's
  core::node_id holder;           // the holder the record (or the refusing replica) names
  // lock, renew: the lease as this node must count it — from when it learned of the grant until
  // expires_at, which it counts from before any replica could hold the record. Stop using the lock
  // (and stop presenting the token) by expires_at at the latest, less any clock-rate margin.
  core::time_point granted_at{};
  core::time_point expires_at{};
  std::chrono::milliseconds remaining{0};  // locked: the longest remaining lease a replica reported
  std::uint64_t version = 0;               // the record's compare-and-swap version now (0: none)
  bool maybe_written = false;              // as cas_outcome: the record may yet be written
  std::size_t attempts = 0;
  std::size_t messages = 0;
};

// The update function that applies `request` for node `self` (declines when the rule says no).
update_function lock_update(const lock_request& request, const core::node_id& self);

// The outcome of `request` from the compare-and-swap that ran it, finished at `now`.
lock_outcome to_lock_outcome(const lock_request& request, const core::node_id& self, const cas_outcome& c,
                             core::time_point now);

// A request's lease must be within 1 ms .. max_lock_lease: std::invalid_argument otherwise.
void check_lease(std::chrono::milliseconds lease);

}  // namespace kadnet::dht
