#pragma once
// An in-memory network of dht::dht_node instances on virtual time, for DHT tests: no sockets,
// no clock, no sleeps. Every node has its own identity (from a fixed seed), a memory_store and a
// seeded random source.
//
// Delivery: after every call into a node the harness drains its poll_request(). A request is
// encoded and decoded (so the wire codec is on the path), handed to the target's handle_request
// (or answered ACK for a PING, which the real node engine answers), and the reply comes back
// through on_reply, either at once or after `delay` of virtual time. A killed node answers
// nothing: the sender gets an errc::timeout reply after `timeout` (the lookup slot timeout).
// With set_loss(p) each request and each reply is lost with probability p (a seeded draw): a
// lost request is never handled, a lost reply after its request was; either way the sender gets
// the timeout reply. PINGs are never lost (the node engine answers them, not the DHT).
//
// Sessions: the first time two nodes exchange a message, both ends get on_peer_connected and
// on_peer_announced("sim://<index>"), as after a handshake and an ANNOUNCE. Killing a node ends
// its sessions (on_peer_disconnected at the other ends).
//
// Time: run_until() jumps virtual time to the next event — a delayed delivery, a timeout or a
// node's next_deadline() — as quinn's test Pair does, until a condition holds or a limit passes.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/dht_node.hpp"
#include "kadnet/dht/memory_store.hpp"

namespace kadnet::testing {

class dht_network {
 public:
  struct sim_node {
    core::identity identity;
    std::unique_ptr<dht::memory_store> store;
    std::mt19937_64 rng;
    std::unique_ptr<dht::dht_node> dht;
    bool alive = true;
    std::unordered_set<std::size_t> sessions;
    std::unordered_map<dht::operation_id, dht::dht_node::operation_done> done;
    std::vector<dht::shout_delivery> shouts;  // shouts delivered to this node, in order
    std::size_t shout_copies = 0;             // SHOUT requests that reached it (duplicates too)
    std::vector<dht::listen_delivery> versions;  // listen deliveries to this node, in order
    std::size_t notifications = 0;            // notify STOREs that reached it
    std::size_t notification_bytes = 0;       // their encoded size
  };

  explicit dht_network(std::uint64_t seed, dht::dht_config config = {})
      : seed_(seed), config_(config), rng_(seed), loss_rng_(seed ^ 0x6c6f7373ull),
        timeout_(config.lookup.slot_timeout) {}

  // Adds a node (not yet joined); `limits` overrides the store's (and the config's) limits.
  std::size_t add_node(std::optional<dht::store_limits> limits = std::nullopt) {
    std::array<std::uint8_t, 32> key_seed{};
    for (auto& b : key_seed) b = static_cast<std::uint8_t>(rng_());
    auto n = std::make_unique<sim_node>(sim_node{core::identity::from_seed(key_seed), nullptr,
                                                 std::mt19937_64(rng_()), nullptr, true, {}, {}, {}, 0, {}, 0, 0});
    dht::dht_config config = config_;
    if (limits) config.limits = *limits;
    n->store = std::make_unique<dht::memory_store>(config.limits);
    sim_node* raw = n.get();
    n->dht = std::make_unique<dht::dht_node>(
        n->identity, config, *n->store, [raw](mutable_byte_span out) {
          for (auto& b : out) b = static_cast<std::uint8_t>(raw->rng());
        });
    index_.emplace(n->identity.id(), nodes_.size());
    nodes_.push_back(std::move(n));
    return nodes_.size() - 1;
  }

  // Node 0 is the seed; every other node connects to it and bootstraps, one after another.
  void join_all() {
    for (std::size_t i = 1; i < nodes_.size(); ++i) join(i);
  }
  dht::find_node_result join(std::size_t i, std::size_t seed_node = 0) {
    connect(i, seed_node);
    auto id = node(i).dht->bootstrap(now_);
    dirty(i);
    return std::get<dht::find_node_result>(wait(i, id).result);
  }

  // --- operations, run until they finish ---
  dht::find_node_result find_node(std::size_t i, const core::node_id& target) {
    auto id = node(i).dht->find_node(target, now_);
    dirty(i);
    return std::get<dht::find_node_result>(wait(i, id).result);
  }
  dht::get_result get(std::size_t i, const core::node_id& key) {
    auto id = node(i).dht->get(key, now_);
    dirty(i);
    return std::get<dht::get_result>(wait(i, id).result);
  }
  dht::put_outcome put(std::size_t i, const core::node_id& key, byte_vector value,
                       dht::put_options options = {}) {
    auto id = node(i).dht->put(key, std::move(value), options, now_);
    dirty(i);
    return std::get<dht::put_outcome>(wait(i, id).result);
  }

  dht::cas_outcome cas(std::size_t i, const core::node_id& key, std::uint64_t expected, byte_vector value) {
    auto id = start(i, [&](dht::dht_node& d, core::time_point now) { return d.cas(key, expected, std::move(value), now); });
    return std::get<dht::cas_outcome>(wait(i, id).result);
  }
  // A patch of key from (base_version, base) to `change`: the new value, or a value_patch.
  template <typename Change>
  dht::patch_outcome patch(std::size_t i, const core::node_id& key, std::uint64_t base_version, const byte_vector& base,
                           Change change, dht::patch_options options = {}) {
    auto id = start(i, [&](dht::dht_node& d, core::time_point now) {
      return d.patch(key, base_version, base, std::move(change), options, now);
    });
    return std::get<dht::patch_outcome>(wait(i, id).result);
  }
  dht::cas_outcome update(std::size_t i, const core::node_id& key, dht::update_function fn) {
    auto id = start(i, [&](dht::dht_node& d, core::time_point now) { return d.update(key, std::move(fn), now); });
    return std::get<dht::cas_outcome>(wait(i, id).result);
  }
  // Locks (dht_node::lock, renew, unlock), run until they finish.
  dht::lock_outcome lock(std::size_t i, const core::node_id& key, std::chrono::milliseconds lease) {
    auto id = start(i, [&](dht::dht_node& d, core::time_point now) { return d.lock(key, lease, now); });
    return std::get<dht::lock_outcome>(wait(i, id).result);
  }
  dht::lock_outcome renew(std::size_t i, const core::node_id& key, std::uint64_t token,
                          std::chrono::milliseconds lease) {
    auto id = start(i, [&](dht::dht_node& d, core::time_point now) { return d.renew(key, token, lease, now); });
    return std::get<dht::lock_outcome>(wait(i, id).result);
  }
  dht::lock_outcome unlock(std::size_t i, const core::node_id& key, std::uint64_t token) {
    auto id = start(i, [&](dht::dht_node& d, core::time_point now) { return d.unlock(key, token, now); });
    return std::get<dht::lock_outcome>(wait(i, id).result);
  }

  // Starts an operation on node i without waiting for it (`begin` calls one of dht_node's
  // operations); its result lands in node(i).done. Safe to call from a run_until condition.
  template <typename Begin>
  dht::operation_id start(std::size_t i, Begin&& begin) {
    auto id = begin(*node(i).dht, now_);
    dirty(i);
    drain();
    return id;
  }

  // Listening (dht_node::listen): the first registration's outcome; versions land in
  // node(i).versions.
  dht::listen_outcome listen(std::size_t i, const core::node_id& key) {
    auto id = start(i, [&](dht::dht_node& d, core::time_point now) { return d.listen(key, now); });
    return std::get<dht::listen_outcome>(wait(i, id).result);
  }
  bool cancel(std::size_t i, dht::operation_id subscription) {
    bool known = node(i).dht->cancel(subscription, now_);
    dirty(i);
    drain();
    return known;
  }

  // The last SHOUT that went from one node to another, as sent: a signed copy a test can replay.
  std::optional<core::wire::shout> last_shout_copy;

  dht::shout_outcome shout(std::size_t i, byte_vector payload) {
    auto id = node(i).dht->shout(std::move(payload), now_);
    dirty(i);
    return std::get<dht::shout_outcome>(wait(i, id).result);
  }

  // A request sent straight from node `from` to node `to`, outside any DHT operation (e.g. a
  // forged STORE); the reply as the node engine would report it.
  core::reply request(std::size_t from, std::size_t to, core::wire::message_body body) {
    connect(from, to);
    auto m = roundtrip(core::wire::make_message(next_message_id_++, std::move(body)));
    auto reply = to_reply(node(to).dht->handle_request(node(from).identity.id(), m, now_));
    dirty(to);
    drain();
    return reply;
  }

  // Kills a node: it answers nothing from now on, and its sessions end.
  void kill(std::size_t i) {
    sim_node& n = node(i);
    n.alive = false;
    for (std::size_t s : n.sessions) {
      node(s).sessions.erase(i);
      node(s).dht->on_peer_disconnected(n.identity.id());
      dirty(s);
    }
    n.sessions.clear();
    drain();
  }

  // Runs `f` at virtual time `t` (a test's own timer: a client that waits, then acts). `f` may
  // start operations.
  void at(core::time_point t, std::function<void()> f) { schedule(t, std::move(f)); }

  // Lets virtual time pass, running every deadline on the way.
  void advance(std::chrono::milliseconds d) { run_until(now_ + d, {}); }

  // Runs events until `done` holds (checked after each batch) or virtual time passes `limit`.
  void run_until(core::time_point limit, const std::function<bool()>& done) {
    std::size_t same_time_steps = 0;
    for (;;) {
      drain();
      if (done && done()) return;
      std::optional<core::time_point> t;
      if (!events_.empty()) t = events_.begin()->first;
      for (const auto& n : nodes_) {
        if (!n->alive) continue;
        auto d = n->dht->next_deadline();
        if (d && (!t || *d < *t)) t = d;
      }
      if (!t || *t > limit) {
        now_ = std::max(now_, limit);
        drain();
        return;
      }
      if (*t <= now_) {
        if (++same_time_steps > 100000)
          throw std::logic_error("dht_network: a deadline does not move past now");
      } else {
        same_time_steps = 0;
        now_ = *t;
      }
      while (!events_.empty() && events_.begin()->first <= now_) {
        auto f = std::move(events_.begin()->second);
        events_.erase(events_.begin());
        f();
      }
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        sim_node& n = *nodes_[i];
        if (!n.alive) continue;
        auto d = n.dht->next_deadline();
        if (d && *d <= now_) {
          n.dht->handle_timeout(now_);
          dirty(i);
        }
      }
    }
  }

  // The k ids closest to target among the live nodes (or all), excluding `except`.
  std::vector<core::node_id> true_closest(const core::node_id& target, std::size_t k,
                                          std::optional<std::size_t> except = std::nullopt,
                                          bool live_only = true) const {
    std::vector<core::node_id> ids;
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if ((!live_only || nodes_[i]->alive) && (!except || *except != i))
        ids.push_back(nodes_[i]->identity.id());
    std::sort(ids.begin(), ids.end(), core::closer_to(target));
    if (ids.size() > k) ids.resize(k);
    return ids;
  }

  // The first node (other than `except`) that is not one of key's k closest: it holds no replica
  // of the key, so every replica it writes to or hears from is remote.
  std::size_t outside_closest(const core::node_id& key, std::size_t k, std::size_t except = SIZE_MAX) const {
    auto closest = true_closest(key, k);
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (i != except && std::find(closest.begin(), closest.end(), nodes_[i]->identity.id()) == closest.end())
        return i;
    throw std::logic_error("dht_network: every node is among the closest");
  }

  sim_node& node(std::size_t i) { return *nodes_.at(i); }
  std::size_t size() const { return nodes_.size(); }
  std::optional<std::size_t> index_of(const core::node_id& id) const {
    auto it = index_.find(id);
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }
  core::time_point now() const { return now_; }
  std::uint64_t seed() const { return seed_; }
  std::mt19937_64& rng() { return rng_; }
  std::uint64_t messages() const { return messages_; }
  // Virtual delay of each delivery (request and reply each take it).
  void set_delay(std::chrono::milliseconds d) { delay_ = d; }
  // How long a request to a dead node waits before its timeout reply.
  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }
  // The chance that a request, and separately its reply, is lost.
  void set_loss(double p) { loss_ = p; }

  // The first time two nodes talk: a session, with both ends announcing their address.
  void connect(std::size_t a, std::size_t b) {
    if (a == b || node(a).sessions.count(b)) return;
    if (!node(a).alive || !node(b).alive) return;
    node(a).sessions.insert(b);
    node(b).sessions.insert(a);
    for (auto [x, y] : {std::pair{a, b}, std::pair{b, a}}) {
      node(x).dht->on_peer_connected(node(y).identity.id(), now_);
      node(x).dht->on_peer_announced(node(y).identity.id(), {"sim://" + std::to_string(y)}, now_);
      dirty(x);
    }
  }

  static core::reply to_reply(const core::wire::message_body& body) {
    core::reply r;
    if (const auto* a = std::get_if<core::wire::ack>(&body)) {
      r.data = a->data;
      return r;
    }
    const auto& n = std::get<core::wire::nack>(body);
    using core::wire::nack_code;
    r.ec = n.code == nack_code::unsupported_opcode ? core::errc::unsupported_opcode
           : n.code == nack_code::handler_failed   ? core::errc::handler_failed
                                                   : core::errc::nack;
    r.code = n.code;
    r.text = n.text;
    r.data = n.data;
    return r;
  }

 private:
  core::time_point now_ = core::time_point{} + std::chrono::hours(24 * 365);

  void dirty(std::size_t i) {
    if (dirty_set_.insert(i).second) dirty_.push_back(i);
  }

  // Drains every node touched since the last drain: its requests out and its finished operations.
  void drain() {
    while (!dirty_.empty()) {
      std::size_t i = dirty_.front();
      dirty_.pop_front();
      dirty_set_.erase(i);
      sim_node& n = node(i);
      while (auto o = n.dht->poll_request()) {
        if (n.alive) deliver(i, std::move(*o));
      }
      while (auto e = n.dht->poll_event()) n.done.insert_or_assign(e->id, std::move(*e));
      while (auto d = n.dht->poll_shout()) n.shouts.push_back(std::move(*d));
      while (auto d = n.dht->poll_listen()) n.versions.push_back(std::move(*d));
    }
  }

  static core::wire::message roundtrip(const core::wire::message& m) {
    byte_vector bytes;
    core::wire::encode(m, bytes);
    core::wire::message back;
    if (core::wire::decode(bytes, back)) throw std::logic_error("dht_network: message does not decode");
    return back;
  }

  bool lost(const core::wire::message& m) {
    if (loss_ <= 0 || m.opcode == static_cast<std::uint8_t>(core::wire::opcode::ping)) return false;
    return std::uniform_real_distribution<double>(0, 1)(loss_rng_) < loss_;
  }

  void time_out(std::size_t from, dht::request_token token, std::chrono::milliseconds after) {
    core::reply r;
    r.ec = core::errc::timeout;
    schedule(now_ + after, [this, from, token, r] { answer(from, token, r); });
  }

  void deliver(std::size_t from, dht::dht_node::outgoing o) {
    ++messages_;
    auto to = index_of(o.to.id);
    const dht::request_token token = o.token;
    // The request's own timeout, if it has one; a reply later than that is not waited for.
    const std::chrono::milliseconds limit = o.timeout.value_or(timeout_);
    if (!to || !node(*to).alive || *to == from) return time_out(from, token, limit);
    connect(from, *to);
    auto m = roundtrip(core::wire::make_message(next_message_id_++, std::move(o.body)));
    if (lost(m)) return time_out(from, token, limit);
    const bool late = 2 * delay_ > limit;
    if (late) time_out(from, token, limit);
    auto handle = [this, from, target = *to, token, m, limit, late] {
      if (!node(from).alive) return;  // its sessions ended with it: the request never arrives
      if (!node(target).alive) {
        if (!late) time_out(from, token, limit - delay_);
        return;
      }
      core::wire::message_body body;
      if (m.opcode == static_cast<std::uint8_t>(core::wire::opcode::ping)) {
        body = core::wire::ack{m.opcode, {}};
      } else {
        if (const auto* s = std::get_if<core::wire::shout>(&m.body)) {
          ++node(target).shout_copies;
          last_shout_copy = *s;
        }
        if (const auto* s = std::get_if<core::wire::store>(&m.body); s && s->notify) {
          ++node(target).notifications;
          byte_vector encoded;
          core::wire::encode(m, encoded);
          node(target).notification_bytes += encoded.size();
        }
        body = node(target).dht->handle_request(node(from).identity.id(), m, now_);
        dirty(target);
      }
      auto reply = to_reply(roundtrip(core::wire::make_message(m.id, std::move(body))).body);
      if (late) return;
      if (lost(m)) return time_out(from, token, limit - delay_);
      if (delay_.count() == 0) answer(from, token, reply);
      else schedule(now_ + delay_, [this, from, token, reply] { answer(from, token, reply); });
    };
    if (delay_.count() == 0) handle();
    else schedule(now_ + delay_, handle);
  }

  void answer(std::size_t to, dht::request_token token, const core::reply& r) {
    if (!node(to).alive) return;
    node(to).dht->on_reply(token, r, now_);
    dirty(to);
  }

  void schedule(core::time_point at, std::function<void()> f) { events_.emplace(at, std::move(f)); }

  dht::dht_node::operation_done wait(std::size_t i, dht::operation_id id) {
    auto& done = node(i).done;
    run_until(now_ + std::chrono::hours(1), [&] { return done.count(id) > 0; });
    auto it = done.find(id);
    if (it == done.end()) throw std::runtime_error("dht_network: operation did not finish within an hour");
    auto result = std::move(it->second);
    done.erase(it);
    return result;
  }

  std::uint64_t seed_;
  dht::dht_config config_;
  std::mt19937_64 rng_;
  std::mt19937_64 loss_rng_;  // apart from rng_, so that loss leaves the rest of a run's draws alone
  double loss_ = 0;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds delay_{0};
  std::vector<std::unique_ptr<sim_node>> nodes_;
  std::unordered_map<core::node_id, std::size_t> index_;
  std::multimap<core::time_point, std::function<void()>> events_;
  std::deque<std::size_t> dirty_;
  std::unordered_set<std::size_t> dirty_set_;
  std::uint32_t next_message_id_ = 1;
  std::uint64_t messages_ = 0;
};

}  // namespace kadnet::testing
