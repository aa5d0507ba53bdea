#include "benchmarks/sim/dht_swarm.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/engine_bridge.hpp"
#include "kadnet/transports/sim/address.hpp"

namespace kadnet::bench {
namespace {

namespace wire = core::wire;

core::reply to_reply(const wire::message_body& body) {
  core::reply r;
  if (const auto* a = std::get_if<wire::ack>(&body)) {
    r.data = a->data;
    return r;
  }
  const auto& n = std::get<wire::nack>(body);
  r.ec = n.code == wire::nack_code::unsupported_opcode ? core::errc::unsupported_opcode
         : n.code == wire::nack_code::handler_failed   ? core::errc::handler_failed
                                                       : core::errc::nack;
  r.code = n.code;
  r.text = n.text;
  r.data = n.data;
  return r;
}

bool is(std::uint8_t code, wire::opcode op) { return code == static_cast<std::uint8_t>(op); }


std::uint64_t completion_key(std::uint32_t node, dht::operation_id op) {
  // Operation ids count up from 1 per node; 40 bits outlast any run.
  return (static_cast<std::uint64_t>(node) << 40) | (op & ((1ull << 40) - 1));
}

// A deadline that stays at or before now after handle_timeout this many times in a row is a bug
// in the node; stop rather than spin.
constexpr std::uint64_t max_spins = 1'000'000;

}  // namespace

dht_swarm::dht_swarm(const settings& s) : settings_(s), rng_(s.seed), net_(rng_(), s.link) {}

std::uint32_t dht_swarm::add_node() {
  std::array<std::uint8_t, 32> key_seed;
  for (auto& b : key_seed) b = static_cast<std::uint8_t>(rng_());
  const auto index = static_cast<std::uint32_t>(nodes_.size());
  // One generator for all nodes keeps a node's state small (an mt19937_64 is 2.5 KB).
  nodes_.emplace_back(core::identity::from_seed(key_seed), settings_.dht, [this](mutable_byte_span out) {
    for (auto& b : out) b = static_cast<std::uint8_t>(rng_());
  });
  const sim::endpoint_id endpoint = net_.add_endpoint(
      [this, index](sim::endpoint_id from, byte_span bytes, sim::time_point) { receive(index, from, bytes); });
  if (endpoint != index) throw std::logic_error("dht_swarm: endpoints must be added only through add_node");
  return index;
}

// --- operations ---

void dht_swarm::expect(std::uint32_t i, dht::operation_id op, completion done) {
  completions_.emplace(completion_key(i, op), std::move(done));
  drain(i);
}

void dht_swarm::join(std::uint32_t i, std::uint32_t via, find_node_done done) {
  connect(i, via);
  auto op = nodes_[i].dht.bootstrap(net_.now());
  expect(i, op, [done = std::move(done)](auto& e) { done(std::get<dht::find_node_result>(e.result)); });
}

void dht_swarm::find_node(std::uint32_t i, const core::node_id& target, find_node_done done) {
  auto op = nodes_[i].dht.find_node(target, net_.now());
  expect(i, op, [done = std::move(done)](auto& e) { done(std::get<dht::find_node_result>(e.result)); });
}

void dht_swarm::get(std::uint32_t i, const core::node_id& key, get_done done) {
  auto op = nodes_[i].dht.get(key, net_.now());
  expect(i, op, [done = std::move(done)](auto& e) { done(std::get<dht::get_result>(e.result)); });
}

void dht_swarm::put(std::uint32_t i, const core::node_id& key, byte_vector value, put_done done) {
  auto op = nodes_[i].dht.put(key, std::move(value), {}, net_.now());
  expect(i, op, [done = std::move(done)](auto& e) { done(std::get<dht::put_outcome>(e.result)); });
}

void dht_swarm::shout(std::uint32_t i, byte_vector payload, shout_done done) {
  auto op = nodes_[i].dht.shout(std::move(payload), net_.now());
  expect(i, op, [done = std::move(done)](auto& e) { done(std::get<dht::shout_outcome>(e.result)); });
}

void dht_swarm::update(std::uint32_t i, const core::node_id& key, dht::update_function fn, cas_done done) {
  auto op = nodes_[i].dht.update(key, std::move(fn), net_.now());
  expect(i, op, [done = std::move(done)](auto& e) { done(std::get<dht::cas_outcome>(e.result)); });
}

void dht_swarm::patch(std::uint32_t i, const core::node_id& key, std::uint64_t base_version, byte_span base_value,
                      byte_vector next_value, patch_done done) {
  auto op = nodes_[i].dht.patch(key, base_version, base_value, std::move(next_value), {}, net_.now());
  expect(i, op, [done = std::move(done)](auto& e) { done(std::get<dht::patch_outcome>(e.result)); });
}

void dht_swarm::lock(std::uint32_t i, const core::node_id& key, std::chrono::milliseconds lease, lock_done done) {
  auto op = nodes_[i].dht.lock(key, lease, net_.now());
  expect(i, op, [done = std::move(done)](auto& e) { done(std::get<dht::lock_outcome>(e.result)); });
}

void dht_swarm::unlock(std::uint32_t i, const core::node_id& key, std::uint64_t token, lock_done done) {
  auto op = nodes_[i].dht.unlock(key, token, net_.now());
  expect(i, op, [done = std::move(done)](auto& e) { done(std::get<dht::lock_outcome>(e.result)); });
}

void dht_swarm::kill(std::uint32_t i) {
  net_.set_down(i, true);
  if (nodes_[i].timer != 0) net_.cancel(nodes_[i].timer);
  nodes_[i].timer = 0;
}

// --- driving a node ---

void dht_swarm::drain(std::uint32_t i) {
  node& n = nodes_[i];
  if (net_.is_down(i)) return;
  while (auto d = n.dht.poll_shout())
    if (on_delivery_) on_delivery_(i, *d);
  while (auto o = n.dht.poll_request()) send_request(i, std::move(*o));
  while (auto e = n.dht.poll_event()) {
    auto it = completions_.find(completion_key(i, e->id));
    if (it == completions_.end()) continue;
    completion done = std::move(it->second);
    completions_.erase(it);
    done(*e);
  }
  rearm(i);
}

void dht_swarm::rearm(std::uint32_t i) {
  node& n = nodes_[i];
  auto deadline = n.dht.next_deadline();
  if (!deadline) return;
  // An earlier timer may stay: firing early costs one handle_timeout that finds nothing due,
  // which is cheaper than cancelling and re-scheduling on every call.
  if (n.timer != 0 && n.armed <= *deadline) return;
  if (n.timer != 0) net_.cancel(n.timer);
  n.armed = *deadline;
  n.timer = net_.schedule(*deadline, [this, i] { on_timer(i); });
}

void dht_swarm::on_timer(std::uint32_t i) {
  node& n = nodes_[i];
  n.timer = 0;
  const sim::time_point now = net_.now();
  n.dht.handle_timeout(now);
  if (auto d = n.dht.next_deadline(); d && *d <= now) {
    if (spin_time_ != now) spin_time_ = now, spins_ = 0;
    if (++spins_ > max_spins) throw std::logic_error("dht_swarm: a node's deadline does not move past now");
  }
  drain(i);
}

void dht_swarm::connect(std::uint32_t a, std::uint32_t b) {
  if (a == b) return;
  auto& peers = nodes_[a].peers;
  auto at = std::lower_bound(peers.begin(), peers.end(), b);
  if (at != peers.end() && *at == b) return;
  peers.insert(at, b);
  auto& other = nodes_[b].peers;
  other.insert(std::lower_bound(other.begin(), other.end(), a), a);
  ++counters_.sessions;
  const sim::time_point now = net_.now();
  for (auto [x, y] : {std::pair{a, b}, std::pair{b, a}}) {
    nodes_[x].dht.on_peer_connected(id(y), now);
    nodes_[x].dht.on_peer_announced(id(y), {sim::format_address(y)}, now);
  }
  drain(a);
  drain(b);
}

// --- datagrams ---

void dht_swarm::send_request(std::uint32_t self, dht::dht_node::outgoing o) {
  // The first announced sim:// address whose node has the contact's key (the handshake would
  // refuse any other), else a session with the contact, which engine_bridge would use too (a
  // contact learned from its request alone has no address). Ids are unique: either way the same
  // node.
  std::optional<std::uint32_t> to;
  for (const std::string& a : o.to.addresses) {
    auto e = sim::parse_address(a);
    if (e && *e < nodes_.size() && id(*e) == o.to.id) {
      to = *e;
      break;
    }
  }
  if (!to)
    for (std::uint32_t peer : nodes_[self].peers)
      if (id(peer) == o.to.id) {  // a dead peer's session looks up: the request times out
        to = peer;
        break;
      }
  if (!to) {
    ++counters_.undialable;
    fail_later(self, o.token, core::errc::not_connected);
    return;
  }
  std::uint32_t message_id = next_message_id_++;
  if (message_id == 0) message_id = next_message_id_++;
  scratch_.clear();
  wire::encode(wire::make_message(message_id, std::move(o.body)), scratch_);
  if (is(o.opcode, wire::opcode::shout)) {
    ++counters_.shouts_sent;
    counters_.shout_bytes += scratch_.size();
  }
  const auto limit = o.timeout.value_or(settings_.dht.lookup.slot_timeout);
  const sim::timer_id timeout = net_.schedule_after(limit, [this, message_id] {
    auto it = pending_.find(message_id);
    if (it == pending_.end()) return;
    const pending p = it->second;
    pending_.erase(it);
    ++counters_.timeouts;
    core::reply r;
    r.ec = core::errc::timeout;
    nodes_[p.from].dht.on_reply(p.token, r, net_.now());
    drain(p.from);
  });
  pending_.insert_or_assign(message_id, pending{self, *to, o.token, timeout});
  ++counters_.requests;
  net_.send(self, *to, scratch_);
}

void dht_swarm::fail_later(std::uint32_t self, dht::request_token token, core::errc why) {
  // Not from inside the drain that polled the request: the node gets its answer as an event.
  net_.schedule(net_.now(), [this, self, token, why] {
    core::reply r;
    r.ec = why;
    nodes_[self].dht.on_reply(token, r, net_.now());
    drain(self);
  });
}

void dht_swarm::receive(std::uint32_t self, std::uint32_t from, byte_span bytes) {
  wire::message m;
  if (wire::decode(bytes, m)) {
    ++counters_.malformed;
    return;
  }
  connect(self, from);
  if (is(m.opcode, wire::opcode::ack) || is(m.opcode, wire::opcode::nack)) {
    answer_reply(self, from, m);
    return;
  }
  wire::message_body reply;
  if (is(m.opcode, wire::opcode::ping)) reply = wire::ack{m.opcode, {}};
  else if (dht::is_dht_request(m.opcode)) reply = nodes_[self].dht.handle_request(id(from), m, net_.now());
  else reply = wire::nack{m.opcode, wire::nack_code::unsupported_opcode, "not served in the DHT swarm", {}};
  scratch_.clear();
  wire::encode(wire::make_message(m.id, std::move(reply)), scratch_);
  if (is(m.opcode, wire::opcode::shout)) {
    ++counters_.shouts_received;
    ++counters_.shout_replies;
    counters_.shout_reply_bytes += scratch_.size();
  }
  net_.send(self, from, scratch_);
  drain(self);
}

void dht_swarm::answer_reply(std::uint32_t self, std::uint32_t from, const wire::message& m) {
  auto it = pending_.find(m.id);
  if (it == pending_.end() || it->second.from != self || it->second.to != from) {
    ++counters_.stray_replies;
    return;
  }
  const pending p = it->second;
  pending_.erase(it);
  net_.cancel(p.timeout);
  nodes_[self].dht.on_reply(p.token, to_reply(m.body), net_.now());
  drain(self);
}

}  // namespace kadnet::bench
