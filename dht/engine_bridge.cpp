#include "kadnet/dht/engine_bridge.hpp"

#include "kadnet/core/errors.hpp"

namespace kadnet::dht {

using core::node_engine;

bool is_dht_request(std::uint8_t op) {
  using core::wire::opcode;
  return op == static_cast<std::uint8_t>(opcode::find_node) ||
         op == static_cast<std::uint8_t>(opcode::find_value) ||
         op == static_cast<std::uint8_t>(opcode::store) || op == static_cast<std::uint8_t>(opcode::shout);
}

void feed_engine_event(dht_node& dht, node_engine& engine, const node_engine::event& ev, core::time_point now) {
  if (const auto* up = std::get_if<node_engine::connected>(&ev)) {
    dht.on_peer_connected(up->peer, now);
  } else if (const auto* ann = std::get_if<node_engine::announced>(&ev)) {
    dht.on_peer_announced(ann->peer, ann->addresses, now);
  } else if (const auto* down = std::get_if<node_engine::disconnected>(&ev)) {
    // Another session to the same peer may remain (both dialed at once).
    if (down->peer && !engine.connection_to(*down->peer)) dht.on_peer_disconnected(*down->peer);
  } else if (const auto* in = std::get_if<node_engine::incoming>(&ev)) {
    if (!is_dht_request(in->message.opcode)) return;
    engine.respond(in->connection, in->message.id, dht.handle_request(in->peer, in->message, now));
  }
}

boost::system::error_code error_of(const dht_node::operation_done& done) {
  return std::visit([](const auto& r) { return r.ec; }, done.result);
}

engine_bridge::engine_bridge(node_engine& engine, dht_node& dht, dialer dial)
    : engine_(engine), dht_(dht), dial_(std::move(dial)) {}

bool engine_bridge::on_event(node_engine::event& ev, core::time_point now) {
  if (auto* done = std::get_if<node_engine::request_done>(&ev)) {
    auto it = requests_.find(done->request);
    if (it == requests_.end()) return false;  // the driver's own request
    request_token token = it->second;
    requests_.erase(it);
    dht_.on_reply(token, done->result, now);
    return true;
  }
  feed_engine_event(dht_, engine_, ev, now);
  return false;
}

bool engine_bridge::pump(core::time_point now) {
  bool progress = false;
  while (auto out = dht_.poll_request()) {
    progress = true;
    send(std::move(*out), now);
  }
  while (auto done = dht_.poll_event()) {
    progress = true;
    auto it = operations_.find(done->id);
    if (it == operations_.end()) continue;  // an operation the DHT runs for itself (refresh)
    done_fn handler = std::move(it->second);
    operations_.erase(it);
    handler(*done);
  }
  return progress;
}

void engine_bridge::fail_operations(boost::system::error_code ec) {
  auto operations = std::move(operations_);
  operations_.clear();
  for (auto& [id, done] : operations) {
    dht_node::operation_done failed{id, get_result{ec, std::nullopt, {}}};
    done(failed);
  }
}

void engine_bridge::send(dht_node::outgoing out, core::time_point now) {
  if (auto c = engine_.connection_to(out.to.id))
    return send_on(*c, out.token, out.opcode, std::move(out.body), out.timeout, now);
  // No session yet: the driver dials the contact; the request goes once the handshake is done.
  auto body = std::make_shared<core::wire::message_body>(std::move(out.body));
  std::weak_ptr<engine_bridge*> alive = self_;
  ready_fn ready = [alive, token = out.token, opcode = out.opcode, body, timeout = out.timeout](
                       boost::system::error_code ec, core::connection_id c, core::time_point at) {
    auto self = alive.lock();
    if (!self) return;
    if (ec) return (*self)->fail(token, ec, at);
    (*self)->send_on(c, token, opcode, std::move(*body), timeout, at);
  };
  if (!dial_ || !dial_(out.to, std::move(ready))) fail(out.token, core::errc::not_connected, now);
}

void engine_bridge::send_on(core::connection_id c, request_token token, std::uint8_t opcode,
                            core::wire::message_body body, std::optional<std::chrono::milliseconds> timeout,
                            core::time_point now) {
  // A failure (the session just closed) comes back as a request_done event like any reply.
  requests_.emplace(engine_.request(now, c, opcode, std::move(body), timeout), token);
}

void engine_bridge::fail(request_token token, boost::system::error_code ec, core::time_point now) {
  core::reply r;
  r.ec = ec;
  dht_.on_reply(token, r, now);
}

}  // namespace kadnet::dht
