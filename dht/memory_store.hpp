#pragma once
// The in-memory value store: a hash map by key plus an expiry index, so that expire() costs
// O(expired · log n) and get() O(1). Lost when the process ends; see sqlite_store for a store
// that survives restarts. Rules and contract: dht/value_store.hpp, dht/store_rules.hpp.
#include <map>
#include <unordered_map>

#include "kadnet/dht/store_rules.hpp"
#include "kadnet/dht/value_store.hpp"

namespace kadnet::dht {

class memory_store final : public value_store {
 public:
  explicit memory_store(store_limits limits = {}) : limits_(limits) {}

  put_result put(stored_value v, core::time_point now) override;
  std::optional<stored_value> get(const core::node_id& key, core::time_point now) const override;
  std::size_t expire(core::time_point now) override;
  std::vector<stored_value> all(core::time_point now) const override;
  std::optional<core::time_point> next_expiry() const override;
  std::size_t size() const override { return values_.size(); }
  std::size_t bytes() const override { return bytes_; }

  const store_limits& limits() const { return limits_; }

 private:
  using expiry_index = std::multimap<core::time_point, core::node_id>;
  struct entry {
    stored_value value;
    expiry_index::iterator expiry;  // this value's node in expiries_
  };
  put_result check(const entry* held, const stored_value& v, core::time_point now) const;

  store_limits limits_;
  std::unordered_map<core::node_id, entry> values_;
  expiry_index expiries_;
  std::size_t bytes_ = 0;
};

}  // namespace kadnet::dht
