#include "kadnet/core/rpc_tracker.hpp"

namespace kadnet::core {

std::uint32_t rpc_tracker::add(request_id request, connection_id connection, std::uint8_t opcode,
                               bool internal, time_point deadline) {
  // Ids are unique per node, hence per connection; skip the rare id still in flight after wrap.
  std::uint32_t id;
  do {
    id = next_message_id_++;
  } while (by_key_.count({connection, id}) != 0);
  entry e{request, connection, id, opcode, internal, deadline};
  by_key_.emplace(key{connection, id}, e);
  ++per_connection_[connection];
  deadlines_.emplace(deadline, key{connection, id});
  return id;
}

void rpc_tracker::erase_deadline(const entry& e) {
  auto [first, last] = deadlines_.equal_range(e.deadline);
  for (auto it = first; it != last; ++it) {
    if (it->second == key{e.connection, e.message_id}) {
      deadlines_.erase(it);
      return;
    }
  }
}

std::optional<rpc_tracker::entry> rpc_tracker::take(connection_id connection,
                                                    std::uint32_t message_id) {
  auto it = by_key_.find({connection, message_id});
  if (it == by_key_.end()) return std::nullopt;
  entry e = it->second;
  by_key_.erase(it);
  erase_deadline(e);
  if (--per_connection_[connection] == 0) per_connection_.erase(connection);
  return e;
}

std::vector<rpc_tracker::entry> rpc_tracker::take_expired(time_point now) {
  std::vector<entry> out;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    auto k = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    auto it = by_key_.find(k);
    out.push_back(it->second);
    if (--per_connection_[it->second.connection] == 0) per_connection_.erase(it->second.connection);
    by_key_.erase(it);
  }
  return out;
}

std::vector<rpc_tracker::entry> rpc_tracker::take_connection(connection_id connection) {
  std::vector<entry> out;
  for (auto it = by_key_.begin(); it != by_key_.end();) {
    if (it->first.first == connection) {
      out.push_back(it->second);
      it = by_key_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& e : out) erase_deadline(e);
  per_connection_.erase(connection);
  return out;
}

std::size_t rpc_tracker::in_flight(connection_id connection) const {
  auto it = per_connection_.find(connection);
  return it == per_connection_.end() ? 0 : it->second;
}

std::optional<time_point> rpc_tracker::next_deadline() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.begin()->first;
}

}  // namespace kadnet::core
