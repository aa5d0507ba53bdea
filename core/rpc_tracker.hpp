#pragma once
// Requests in flight: message ids per connection, the reply each waits for, and deadlines.
// Sans-I/O: `now` is always a parameter.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

namespace kadnet::core {

using time_point = std::chrono::steady_clock::time_point;
using connection_id = std::uint64_t;
using request_id = std::uint64_t;

class rpc_tracker {
 public:
  struct entry {
    request_id request = 0;
    connection_id connection = 0;
    std::uint32_t message_id = 0;
    std::uint8_t opcode = 0;
    bool internal = false;  // sent by the engine itself (option negotiation)
    time_point deadline;
  };

  // Registers a request and returns the message id to send it with.
  std::uint32_t add(request_id request, connection_id connection, std::uint8_t opcode,
                    bool internal, time_point deadline);
  // The request a reply on `connection` with `message_id` answers, removed; nullopt when none
  // (a late or forged reply).
  std::optional<entry> take(connection_id connection, std::uint32_t message_id);
  // Every request whose deadline is <= now, removed.
  std::vector<entry> take_expired(time_point now);
  // Every request on a connection, removed (the connection closed).
  std::vector<entry> take_connection(connection_id connection);
  std::optional<time_point> next_deadline() const;
  // Requests in flight on a connection (kept per connection, so this is O(1)).
  std::size_t in_flight(connection_id connection) const;
  std::size_t size() const { return by_key_.size(); }

 private:
  struct key_hash {
    std::size_t operator()(const std::pair<connection_id, std::uint32_t>& k) const {
      return std::hash<std::uint64_t>()(k.first * 0x9e3779b97f4a7c15ull ^ k.second);
    }
  };
  using key = std::pair<connection_id, std::uint32_t>;
  void erase_deadline(const entry& e);

  std::uint32_t next_message_id_ = 1;
  std::unordered_map<key, entry, key_hash> by_key_;
  std::multimap<time_point, key> deadlines_;
  std::unordered_map<connection_id, std::size_t> per_connection_;
};

}  // namespace kadnet::core
