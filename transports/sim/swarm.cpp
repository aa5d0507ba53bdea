#include "kadnet/transports/sim/swarm.hpp"

#include <stdexcept>

#include "kadnet/core/errors.hpp"
#include "kadnet/dht/engine_bridge.hpp"
#include "kadnet/dht/memory_store.hpp"
#include "kadnet/transports/sim/node_address.hpp"

namespace kadnet::sim {

using core::errc;
using ready_fn = dht::engine_bridge::ready_fn;

namespace {

// A deadline that stays at or before now after handle_timeout this many times in a row is a bug
// in a core; stop rather than spin.
constexpr std::uint64_t max_spins = 1'000'000;

}  // namespace

struct swarm::instance {
  instance(const core::identity& self, core::node_config config, const dht::dht_config& dht_config,
           const core::crypto::random_source& random, dht::engine_bridge::dialer dial)
      : engine(self, std::move(config), random),
        store(dht_config.limits),
        dht(self, dht_config, store, random),
        bridge(engine, dht, std::move(dial)) {}

  core::node_engine engine;
  dht::memory_store store;
  dht::dht_node dht;
  dht::engine_bridge bridge;
  // Dials whose handshake is under way: who waits for each, and its connection by peer, so that
  // requests to one contact share one dial.
  std::unordered_map<core::connection_id, std::vector<ready_fn>> waiting;
  std::unordered_map<core::node_id, core::connection_id> dialing;
  timer_id timer = 0;  // 0: none armed
  time_point armed{};
};

swarm::swarm(swarm_settings settings)
    : settings_(std::move(settings)), rng_(settings_.seed), net_(rng_(), settings_.link) {}

swarm::~swarm() = default;

// --- nodes ---

std::size_t swarm::add_node() {
  const std::size_t i = nodes_.size();
  std::array<std::uint8_t, 32> key_seed;
  for (auto& b : key_seed) b = static_cast<std::uint8_t>(rng_());
  const endpoint_id endpoint = net_.add_endpoint(
      [this, i](endpoint_id from, byte_span bytes, time_point) { receive(i, from, bytes); });
  // Node i's address is endpoint i's: anything else added to the network would break that.
  if (endpoint != i) throw std::logic_error("sim::swarm: endpoints must be added only through add_node");
  addresses_.push_back(node_transport_address(endpoint));
  nodes_.push_back(node{core::identity::from_seed(key_seed), endpoint, nullptr});
  nodes_.back().run = start(i);
  return i;
}

void swarm::add_nodes(std::size_t count) {
  for (std::size_t k = 0; k < count; ++k) add_node();
}

std::unique_ptr<swarm::instance> swarm::start(std::size_t i) {
  core::node_config config = settings_.node;
  config.serve_dht = true;
  config.announce_addresses = {node_uri(nodes_[i].endpoint)};
  // One generator for every node keeps a node small (an mt19937_64 is 2.5 KB) and the run
  // replayable: draws happen in event order.
  core::crypto::random_source random = [this](mutable_byte_span out) {
    for (std::size_t at = 0; at < out.size(); at += 8) {
      std::uint64_t word = rng_();
      for (std::size_t k = 0; k < 8 && at + k < out.size(); ++k) out[at + k] = static_cast<std::uint8_t>(word >> (8 * k));
    }
  };
  auto dial = [this, i](const dht::contact& to, ready_fn ready) { return this->dial(i, to, std::move(ready)); };
  return std::make_unique<instance>(nodes_[i].identity, std::move(config), settings_.dht, random, std::move(dial));
}

void swarm::kill(std::size_t i) {
  node& n = nodes_.at(i);
  if (!n.run) return;
  net_.set_down(n.endpoint, true);
  if (n.run->timer != 0) net_.cancel(n.run->timer);
  // The process is gone: what it was doing fails for its caller; nothing is said to peers.
  n.run->bridge.fail_operations(errc::shutting_down);
  n.run.reset();
}

void swarm::restart(std::size_t i) {
  kill(i);
  node& n = nodes_.at(i);
  n.run = start(i);
  net_.set_down(n.endpoint, false);
  pump(i);
}

void swarm::partition(const std::vector<std::size_t>& a, const std::vector<std::size_t>& b) {
  auto endpoints = [this](const std::vector<std::size_t>& nodes) {
    std::vector<endpoint_id> out;
    for (auto i : nodes) out.push_back(nodes_.at(i).endpoint);
    return out;
  };
  net_.partition(endpoints(a), endpoints(b));
}

void swarm::heal() { net_.heal(); }

node_stats swarm::stats(std::size_t i) const {
  node_stats s;
  const auto& run = nodes_.at(i).run;
  if (!run) return s;
  s.alive = true;
  s.engine = run->engine.stats();
  s.sessions = run->engine.peers().size();
  s.contacts = run->dht.table().size();
  s.values = run->store.size();
  return s;
}

const dht::dht_node* swarm::dht(std::size_t i) const {
  const auto& run = nodes_.at(i).run;
  return run ? &run->dht : nullptr;
}

// --- operations ---

template <typename Result>
void swarm::track(std::size_t i, dht::operation_id op, std::function<void(const Result&)> done) {
  nodes_[i].run->bridge.expect(op, [this, done = std::move(done)](dht::dht_node::operation_done& d) {
    Result result;
    if (auto* r = std::get_if<Result>(&d.result)) result = std::move(*r);
    else result.ec = dht::error_of(d);
    // The caller's code runs as an event of its own, never inside a node's pump: it may kill or
    // restart that very node.
    net_.schedule(net_.now(), [done, result = std::move(result)] { done(result); });
  });
  pump(i);
}

void swarm::join(std::size_t i, std::size_t via, find_node_done done) {
  if (!alive(i) || i == via) {
    dht::find_node_result failed{make_error_code(alive(i) ? errc::not_connected : errc::shutting_down), {}, {}};
    net_.schedule(net_.now(), [done = std::move(done), failed] { done(failed); });
    return;
  }
  dht::contact seed{id(via), {node_uri(nodes_.at(via).endpoint)}};
  ready_fn ready = [this, i, done](boost::system::error_code ec, core::connection_id, time_point) {
    if (ec) {
      dht::find_node_result failed{ec, {}, {}};
      net_.schedule(net_.now(), [done, failed] { done(failed); });
      return;
    }
    track<dht::find_node_result>(i, nodes_[i].run->dht.bootstrap(net_.now()), done);
  };
  if (!dial(i, seed, std::move(ready))) throw std::logic_error("sim::swarm: a node's own address does not parse");
  pump(i);
}

join_summary swarm::join_all(join_via how, std::size_t first, std::size_t in_flight, duration limit) {
  // Shared with the callbacks, which may outlive this call when `limit` cuts it short.
  struct progress {
    std::size_t next, finished = 0;
    join_summary summary;
  };
  auto state = std::make_shared<progress>(progress{std::max<std::size_t>(first, 1), 0, {}});
  const std::size_t total = size() > state->next ? size() - state->next : 0;
  auto issue = std::make_shared<std::function<void()>>();
  *issue = [this, how, state, weak = std::weak_ptr(issue)] {
    if (state->next >= size()) return;
    std::size_t i = state->next++;
    std::size_t via = how == join_via::node_zero ? 0 : std::uniform_int_distribution<std::size_t>(0, i - 1)(rng_);
    join(i, via, [state, weak](const dht::find_node_result& r) {
      ++(r.ec ? state->summary.failed : state->summary.ok);
      ++state->finished;
      if (auto again = weak.lock()) (*again)();
    });
  };
  for (std::size_t k = 0; k < in_flight; ++k) (*issue)();
  const time_point start = now();
  run_until([&] { return state->finished == total; }, limit);
  join_summary out = state->summary;
  out.failed += total - state->finished;
  out.took = now() - start;
  return out;
}

void swarm::find_node(std::size_t i, const core::node_id& target, find_node_done done) {
  if (!alive(i)) {
    dht::find_node_result failed{make_error_code(errc::shutting_down), {}, {}};
    net_.schedule(net_.now(), [done = std::move(done), failed] { done(failed); });
    return;
  }
  track<dht::find_node_result>(i, nodes_[i].run->dht.find_node(target, net_.now()), std::move(done));
}

void swarm::get(std::size_t i, const core::node_id& key, get_done done) {
  if (!alive(i)) {
    dht::get_result failed{make_error_code(errc::shutting_down), std::nullopt, {}};
    net_.schedule(net_.now(), [done = std::move(done), failed] { done(failed); });
    return;
  }
  track<dht::get_result>(i, nodes_[i].run->dht.get(key, net_.now()), std::move(done));
}

void swarm::put(std::size_t i, const core::node_id& key, byte_vector value, put_done done,
                dht::put_options options) {
  if (!alive(i)) {
    dht::put_outcome failed;
    failed.ec = errc::shutting_down;
    net_.schedule(net_.now(), [done = std::move(done), failed] { done(failed); });
    return;
  }
  track<dht::put_outcome>(i, nodes_[i].run->dht.put(key, std::move(value), options, net_.now()), std::move(done));
}

template <typename Result, typename Begin>
void swarm::start_tracked(std::size_t i, Begin begin, std::function<void(const Result&)> done) {
  if (!alive(i)) {
    Result failed;
    failed.ec = errc::shutting_down;
    net_.schedule(net_.now(), [done = std::move(done), failed] { done(failed); });
    return;
  }
  track<Result>(i, begin(nodes_[i].run->dht, net_.now()), std::move(done));
}

void swarm::cas(std::size_t i, const core::node_id& key, std::uint64_t expected_version, byte_vector value,
                cas_done done) {
  start_tracked<dht::cas_outcome>(
      i, [&](dht::dht_node& d, time_point now) { return d.cas(key, expected_version, std::move(value), now); },
      std::move(done));
}

void swarm::update(std::size_t i, const core::node_id& key, dht::update_function fn, cas_done done) {
  start_tracked<dht::cas_outcome>(
      i, [&](dht::dht_node& d, time_point now) { return d.update(key, std::move(fn), now); }, std::move(done));
}

void swarm::lock(std::size_t i, const core::node_id& key, std::chrono::milliseconds lease, lock_done done) {
  start_tracked<dht::lock_outcome>(
      i, [&](dht::dht_node& d, time_point now) { return d.lock(key, lease, now); }, std::move(done));
}

void swarm::renew(std::size_t i, const core::node_id& key, std::uint64_t token, std::chrono::milliseconds lease,
                  lock_done done) {
  start_tracked<dht::lock_outcome>(
      i, [&](dht::dht_node& d, time_point now) { return d.renew(key, token, lease, now); }, std::move(done));
}

void swarm::unlock(std::size_t i, const core::node_id& key, std::uint64_t token, lock_done done) {
  start_tracked<dht::lock_outcome>(
      i, [&](dht::dht_node& d, time_point now) { return d.unlock(key, token, now); }, std::move(done));
}

bool swarm::run_until(const std::function<bool()>& done, duration limit) {
  return net_.run_until(done, net_.now() + limit);
}

// --- driving a node ---

bool swarm::dial(std::size_t i, const dht::contact& to, ready_fn ready) {
  instance& run = *nodes_[i].run;
  const time_point now = net_.now();
  if (auto c = run.engine.connection_to(to.id)) {
    ready({}, *c, now);
    return true;
  }
  if (auto d = run.dialing.find(to.id); d != run.dialing.end()) {
    run.waiting[d->second].push_back(std::move(ready));
    return true;
  }
  for (const auto& uri : to.addresses) {
    auto endpoint = endpoint_of_uri(uri);
    if (!endpoint || *endpoint >= addresses_.size()) continue;
    // The handshake refuses any key but the contact's.
    auto c = run.engine.dial_datagram(now, to.id, addresses_[*endpoint]);
    run.dialing[to.id] = c;
    run.waiting[c].push_back(std::move(ready));
    return true;
  }
  return false;
}

void swarm::receive(std::size_t i, endpoint_id from, byte_span bytes) {
  instance* run = nodes_[i].run.get();
  if (!run || from >= addresses_.size()) return;
  run->engine.on_datagram(net_.now(), addresses_[from], bytes);
  pump(i);
}

void swarm::pump(std::size_t i) {
  instance& run = *nodes_[i].run;
  const time_point now = net_.now();
  for (bool progress = true; progress;) {
    progress = false;
    for (auto c : run.engine.take_dirty()) {
      progress = true;
      transmit(i, c);
    }
    while (auto ev = run.engine.poll_event()) {
      progress = true;
      on_event(i, *ev);
    }
    if (run.bridge.pump(now)) progress = true;
  }
  rearm(i);
}

void swarm::transmit(std::size_t i, core::connection_id c) {
  auto& engine = nodes_[i].run->engine;
  const byte_vector packets = engine.take_transmit(c);
  if (auto to = endpoint_of_transport_address(engine.transport_address(c))) {
    // Whole packets back to back: each is one datagram (its header's bytes 2..3 give its length).
    for (std::size_t at = 0; at + 4 <= packets.size();) {
      std::size_t length = 4 + ((std::size_t{packets[at + 2]} << 8) | packets[at + 3]);
      if (at + length > packets.size()) break;
      net_.send(nodes_[i].endpoint, *to, byte_span(packets.data() + at, length));
      at += length;
    }
  }
  if (engine.wants_close(c)) engine.on_transport_closed(c, {});
}

void swarm::on_event(std::size_t i, core::node_engine::event& ev) {
  instance& run = *nodes_[i].run;
  const time_point now = net_.now();
  if (run.bridge.on_event(ev, now)) return;
  // A dial finished: the requests waiting for it go, or fail.
  std::optional<core::connection_id> ended;
  boost::system::error_code ec;
  if (const auto* up = std::get_if<core::node_engine::connected>(&ev)) {
    ended = up->connection;
  } else if (const auto* down = std::get_if<core::node_engine::disconnected>(&ev)) {
    ended = down->connection;
    ec = down->ec ? down->ec : make_error_code(errc::connection_closed);
  }
  if (!ended) return;
  auto it = run.waiting.find(*ended);
  if (it == run.waiting.end()) return;
  auto waiters = std::move(it->second);
  run.waiting.erase(it);
  std::erase_if(run.dialing, [&](const auto& kv) { return kv.second == *ended; });
  for (auto& ready : waiters) ready(ec, *ended, now);
}

void swarm::rearm(std::size_t i) {
  instance& run = *nodes_[i].run;
  auto next = run.engine.next_deadline();
  if (auto d = run.dht.next_deadline(); d && (!next || *d < *next)) next = d;
  if (!next) return;
  // An earlier timer may stay: firing early costs one wake-up that finds nothing due, which is
  // cheaper than cancelling and re-scheduling on every pump.
  if (run.timer != 0 && run.armed <= *next) return;
  if (run.timer != 0) net_.cancel(run.timer);
  run.armed = *next;
  run.timer = net_.schedule(*next, [this, i] { on_timer(i); });
}

void swarm::on_timer(std::size_t i) {
  instance& run = *nodes_[i].run;
  run.timer = 0;
  const time_point now = net_.now();
  if (auto d = run.engine.next_deadline(); d && *d <= now) run.engine.handle_timeout(now);
  if (auto d = run.dht.next_deadline(); d && *d <= now) run.dht.handle_timeout(now);
  pump(i);
  auto e = run.engine.next_deadline();
  auto d = run.dht.next_deadline();
  if ((e && *e <= now) || (d && *d <= now)) {
    if (spin_time_ != now) spin_time_ = now, spins_ = 0;
    if (++spins_ > max_spins) throw std::logic_error("sim::swarm: a node's deadline does not move past now");
  }
}

}  // namespace kadnet::sim
