#pragma once
// The glue between a node's protocol engine and its DHT, sans-I/O: what every driver does between
// core::node_engine and dht::dht_node, whatever carries the bytes (the Asio node_driver, the
// simulator's swarm).
//
// Contract for drivers:
//  * Hand every engine event to on_event(ev, now), after the driver's own handling of it. Session
//    events reach the DHT (a peer connected, ANNOUNCEd checked addresses, left); FIND_NODE,
//    FIND_VALUE and STORE are answered with engine.respond(); the request_done of a request this
//    bridge sent is reported to the DHT, and on_event returns true (the event is consumed).
//  * Call pump(now) after every call into the engine or the DHT, until it returns false: it sends
//    the DHT's requests (over the session with the contact, else through the driver's dialer) and
//    completes finished operations.
//  * The dialer starts a session with a contact that has none, by one of its addresses, checking
//    that the key that answers is the contact's; it calls `ready` once, when the session is
//    established (with its connection) or has failed. It returns false when no address of the
//    contact is usable: the request then fails at once with errc::not_connected.
//  * Operations: start one on dht() and pass its id to expect(); `done` runs from pump().
//  * fail_operations(ec) completes every operation still expected with `ec` (a node stopping).
// Every call happens on one thread or strand at a time. The engine and the DHT must outlive the
// bridge; a `ready` called after the bridge is gone does nothing.
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include <boost/system/error_code.hpp>

#include "kadnet/core/node_engine.hpp"
#include "kadnet/dht/dht_node.hpp"

namespace kadnet::dht {

// FIND_NODE, FIND_VALUE, STORE and SHOUT: the requests a DHT answers.
bool is_dht_request(std::uint8_t opcode);

// Feeds one engine event to the DHT: session up, announced or down, and the answer to a DHT
// request. The part of engine_bridge::on_event that needs no state of its own.
void feed_engine_event(dht_node& dht, core::node_engine& engine, const core::node_engine::event& ev,
                       core::time_point now);

// The error an operation ended with, whatever its kind.
boost::system::error_code error_of(const dht_node::operation_done& done);

class engine_bridge {
 public:
  using ready_fn = std::function<void(boost::system::error_code, core::connection_id, core::time_point now)>;
  using dialer = std::function<bool(const contact& to, ready_fn ready)>;
  using done_fn = std::function<void(dht_node::operation_done&)>;

  engine_bridge(core::node_engine& engine, dht_node& dht, dialer dial);
  engine_bridge(const engine_bridge&) = delete;
  engine_bridge& operator=(const engine_bridge&) = delete;

  dht_node& dht() { return dht_; }

  // Whether the event was a DHT request's request_done (the driver should not look for it).
  bool on_event(core::node_engine::event& ev, core::time_point now);
  // Whether anything happened (a request sent, an operation completed).
  bool pump(core::time_point now);
  void expect(operation_id op, done_fn done) { operations_.insert_or_assign(op, std::move(done)); }
  void fail_operations(boost::system::error_code ec);
  std::size_t requests_in_flight() const { return requests_.size(); }

 private:
  void send(dht_node::outgoing out, core::time_point now);
  void send_on(core::connection_id c, request_token token, std::uint8_t opcode, core::wire::message_body body,
               std::optional<std::chrono::milliseconds> timeout, core::time_point now);
  void fail(request_token token, boost::system::error_code ec, core::time_point now);

  core::node_engine& engine_;
  dht_node& dht_;
  dialer dial_;
  std::unordered_map<core::request_id, request_token> requests_;  // DHT requests in flight
  std::unordered_map<operation_id, done_fn> operations_;
  // Lets a dialer's `ready` outlive the bridge harmlessly.
  std::shared_ptr<engine_bridge*> self_ = std::make_shared<engine_bridge*>(this);
};

}  // namespace kadnet::dht
