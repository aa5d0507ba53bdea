#pragma once
// The keys this node listens to (docs/PROTOCOL.md 8.10), subscriber side: for each key, the
// application's subscriptions, the last version delivered (the base of the diffs replicas may
// send), and the replicas holding a lease for us. Sans-I/O: dht_node runs the lookups and
// registrations; this class decides what a notification means and what is delivered.
//
// A version is delivered once, and only when it is newer than the last one delivered for the
// key, by the store's own rules (dht/store_rules.hpp): the owner's signature must verify and an
// owned key keeps its owner. Notifications come only from nodes we registered at; anyone else
// is told not_found, which makes a replica forget a listener we no longer want.
#include <chrono>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "kadnet/core/node_id.hpp"
#include "kadnet/core/rpc_tracker.hpp"
#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/stored_value.hpp"
#include "kadnet/dht/value_store.hpp"
#include "kadnet/dht/value_patch.hpp"

namespace kadnet::dht {

using subscription_id = std::uint64_t;

// A new version of a watched key, for one subscription.
struct listen_delivery {
  subscription_id subscription = 0;
  stored_value value;               // the version, whole
  std::optional<value_patch> diff;  // the change from the version before it, when the write or
                                    // the notification carried one (8.8, 8.10)
};

struct key_watch {
  core::node_id key;
  std::vector<subscription_id> subscriptions;
  std::optional<stored_value> latest;  // the last version delivered
  std::unordered_map<core::node_id, core::time_point> replicas;  // registered at, lease end
  core::time_point next_refresh{};
};

class key_watches {
 public:
  explicit key_watches(patch_limits limits) : limits_(limits) {}

  // Adds a subscription to `key` (one watch per key, shared by its subscriptions). The new
  // subscription is handed the version already delivered for the key, if any.
  key_watch& add(const core::node_id& key, subscription_id subscription, core::time_point next_refresh);
  // Ends a subscription. When it was the key's last, the watch goes and its replicas are
  // returned, for the caller to cancel the leases there; otherwise nothing is returned.
  struct removed {
    core::node_id key;
    std::vector<core::node_id> replicas;
  };
  std::optional<removed> remove(subscription_id subscription);

  key_watch* find(const core::node_id& key);
  bool watching(const core::node_id& key) const { return by_key_.contains(key); }
  bool subscribed(subscription_id subscription) const { return key_of_.contains(subscription); }
  bool empty() const { return by_key_.empty(); }

  // A version of the watch's key, learned from a registration reply or this node's own store:
  // delivered when the store's rules call it stored (newer, signature and owner good); the rules'
  // verdict is returned.
  put_result offer(key_watch& w, stored_value v, std::optional<value_patch> diff, core::time_point now);
  // A notification (a STORE with the notify flag) from `from`: the ACK or NACK to answer with.
  core::wire::message_body on_notify(const core::node_id& from, const core::wire::store& s, core::time_point now);

  std::optional<listen_delivery> poll();

  // The keys whose registrations are due again at `now`; their next refresh moves `every` on.
  std::vector<core::node_id> due(core::time_point now, std::chrono::seconds every);
  std::optional<core::time_point> next_refresh() const;

 private:
  patch_limits limits_;
  std::unordered_map<core::node_id, key_watch> by_key_;
  std::unordered_map<subscription_id, core::node_id> key_of_;
  // A queue as a vector and a read position: a std::deque allocates on construction, and every
  // DHT node has one of these, listening or not (100,000 of them in one simulated swarm).
  std::vector<listen_delivery> deliveries_;
  std::size_t next_delivery_ = 0;
};

}  // namespace kadnet::dht
