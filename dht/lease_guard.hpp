#pragma once
// A replica's side of locks (docs/PROTOCOL.md 8.9): when did this node come to hold each version
// of a lock record, and may a given writer change the key now?
//
// A lease is judged by each replica on its own clock: a record held by X with lease L, which this
// node has held since t (the first time it saw that version), is live here while now < t + L.
// While it is live, writes to the key from any node but X are refused with NACK `locked` (data: a
// lock_refusal). t is never earlier than the moment X made the record (a replica can only hold
// what X already sent), so a replica never ends a lease before X's own count of it does — given
// clocks that run at the same rate; their offsets do not matter.
//
// Contract: call observe() after anything that may have changed a key's stored value (a STORE of
// any kind, a commit, a catch-up); call check() before letting a write through. check() observes
// too, so a version stored without an observe() is dated when first judged — later, which only
// lengthens the lease here.
//
// Memory is bounded: at most max_keys records are dated. When full, the entries whose lease is
// over go first, then any: a forgotten entry is dated again when next judged, later than before,
// so forgetting can delay the next grant but never shorten a lease.
#include <cstddef>
#include <optional>
#include <unordered_map>

#include "kadnet/core/node_id.hpp"
#include "kadnet/core/rpc_tracker.hpp"
#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/stored_value.hpp"

namespace kadnet::dht {

class lease_guard {
 public:
  explicit lease_guard(std::size_t max_keys = 4096);

  void observe(const std::optional<stored_value>& held, core::time_point now);
  // NACK `locked` when `held` is a lock record held by another node than `writer` whose lease is
  // live here; nullopt when the write may go on.
  std::optional<core::wire::nack> check(const core::node_id& writer, const std::optional<stored_value>& held,
                                        core::time_point now);

  std::size_t dated() const { return seen_.size(); }

 private:
  struct seen {
    std::uint64_t version = 0;
    core::time_point since{};
    core::time_point until{};  // since + lease (since itself for a free record)
    // When the dated value expires: the same version seen after that is another record (versions
    // start again at 1 once a key's value has expired), and is dated anew.
    core::time_point value_expires{};
  };
  void make_room(core::time_point now);

  std::size_t max_keys_;
  std::unordered_map<core::node_id, seen> seen_;
};

}  // namespace kadnet::dht
