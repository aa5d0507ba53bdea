#pragma once
// A replica's listeners (docs/PROTOCOL.md 8.10): which nodes asked to hear of new versions of
// which keys, until when, and which version each is known to hold — the base a notification
// may be a diff against. Sans-I/O bookkeeping; dht_node sends the notifications.
//
// Memory is bounded by count, not by time: at most limits.max_listeners subscriptions in all
// and limits.max_per_subscriber keys per subscribing node; expired leases are swept when room
// is needed and skipped by live(). A lease is at most limits.max_lease, so a subscriber that
// vanishes costs its slots for that long, or until max_failures notifications in a row fail.
#include <chrono>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "kadnet/core/node_id.hpp"
#include "kadnet/core/rpc_tracker.hpp"
#include "kadnet/core/wire/message.hpp"

namespace kadnet::dht {

struct listen_limits {
  std::size_t max_listeners = 4096;      // subscriptions this node keeps, all keys together
  std::size_t max_per_subscriber = 64;   // keys one node may listen to here
  std::chrono::seconds max_lease{600};   // a longer lease asked for is cut to this
  int max_failures = 3;                  // notifications in a row that failed: listener dropped
};

struct listener {
  core::node_id subscriber;
  core::time_point expires;
  std::uint64_t known_version = 0;  // what the subscriber holds, as far as this replica knows
  int failures = 0;
};

class listener_registry {
 public:
  explicit listener_registry(listen_limits limits = {}) : limits_(limits) {}

  enum class subscribe_result { listening, cancelled, full };
  // Subscribes (or renews) `subscriber` to `key` for the request's lease; a lease of 0 cancels.
  subscribe_result subscribe(const core::node_id& key, const core::node_id& subscriber,
                             const core::wire::listen_request& request, core::time_point now);

  bool has_listeners(const core::node_id& key) const { return by_key_.contains(key); }
  // The key's listeners whose lease is live; expired ones are dropped first. The span is valid
  // until the next call that changes the registry.
  std::span<listener> live(const core::node_id& key, core::time_point now);

  // A notification of `version` was ACKed: the subscriber holds it (or something newer).
  void acknowledged(const core::node_id& key, const core::node_id& subscriber, std::uint64_t version);
  // A notification failed (timeout, lost session): the listener goes after max_failures in a row.
  void failed(const core::node_id& key, const core::node_id& subscriber);
  // The subscriber no longer listens (it answered not_found), or cancelled.
  void remove(const core::node_id& key, const core::node_id& subscriber);

  std::size_t size() const { return size_; }

 private:
  listener* find(const core::node_id& key, const core::node_id& subscriber);
  void erase_if_expired(const core::node_id& key, core::time_point now);
  void sweep(core::time_point now);
  void drop_count(const core::node_id& subscriber);

  listen_limits limits_;
  std::unordered_map<core::node_id, std::vector<listener>> by_key_;
  std::unordered_map<core::node_id, std::size_t> per_subscriber_;
  std::size_t size_ = 0;
};

}  // namespace kadnet::dht
