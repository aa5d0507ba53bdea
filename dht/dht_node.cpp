#include "kadnet/dht/dht_node.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include <sodium.h>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/fifo.hpp"
#include "kadnet/dht/cas_acceptor.hpp"
#include "kadnet/dht/cas_codec.hpp"
#include "kadnet/dht/dht_codec.hpp"
#include "kadnet/dht/lease_guard.hpp"
#include "kadnet/dht/patch_request.hpp"
#include "kadnet/dht/store_write.hpp"

namespace kadnet::dht {

namespace {

namespace wire = core::wire;

// Maintenance (bucket refresh, republish) runs a few lookups at a time, so that a node coming
// back from a long sleep, or holding many originals, does not flood the network at once.
constexpr std::size_t max_maintenance_in_flight = 4;
constexpr std::size_t max_maintenance_queue = 1024;
// Requests waiting for the driver's report. The driver reports each one exactly once, so this
// only caps a driver that loses reports; fire-and-forget STOREs are dropped beyond it.
constexpr std::size_t max_pending_requests = 1u << 16;
// Replication STOREs out at once. A round hands every value a node holds to each of its k
// closest: sent all at once, a node holding a thousand 64 KiB values would queue 1.3 GB and
// overrun the per-peer send limit (node_config::max_queued_bytes_per_peer) of any peer close to
// many of them. Each report lets the next one go.
constexpr std::size_t max_replication_in_flight = 64;

enum class op_kind { find_node, bootstrap, get, put, refresh, republish, shout_repair, cas, patch, listen, listen_refresh };
// store_diff: a patched STORE (its NACK may call for the whole value). listen: a registration
// (FIND_VALUE with a listen block); notify: a notification to a listener (8.10).
enum class request_kind { lookup, store, store_quiet, replicate, store_diff, ping, shout, probe, cas, listen, listen_cancel, notify };

bool reported(op_kind k) {
  return k != op_kind::refresh && k != op_kind::republish && k != op_kind::shout_repair && k != op_kind::listen_refresh;
}
bool is_maintenance(op_kind k) { return k == op_kind::refresh || k == op_kind::republish; }
bool sends_find_value(op_kind k) {
  return k == op_kind::get || k == op_kind::put || k == op_kind::republish;
}

std::vector<wire_contact> to_wire(std::vector<contact> contacts) {
  std::vector<wire_contact> out;
  out.reserve(contacts.size());
  for (contact& c : contacts) {
    if (!c.dialable()) continue;  // never hand out a node nobody can dial
    wire_contact w{c.id, std::move(c.addresses)};
    if (w.addresses.size() > max_addresses_per_contact) w.addresses.resize(max_addresses_per_contact);
    out.push_back(std::move(w));
  }
  return out;
}

// A reply this node gives itself (it is one of a key's replicas), as a peer's would arrive.
core::reply local_reply(wire::message_body body) {
  core::reply r;
  if (auto* a = std::get_if<wire::ack>(&body)) {
    r.data = std::move(a->data);
    return r;
  }
  auto& n = std::get<wire::nack>(body);
  r.ec = core::errc::nack;
  r.code = n.code;
  r.text = std::move(n.text);
  r.data = std::move(n.data);
  return r;
}

routing_table::random_source sodium_random() {
  core::ensure_sodium();
  return [](mutable_byte_span out) { randombytes_buf(out.data(), out.size()); };
}

// A held value as FIND_VALUE's reply carries it: the TTL is what remains at `now`.
wire_value to_wire_value(const stored_value& held, core::time_point now) {
  wire::store s = to_store(held, now);
  return wire_value{s.version, s.ttl_seconds, held.owner, held.sig, std::move(s.value)};
}

// A value record from a FIND_VALUE reply, for `key`; its signature is not checked here.
stored_value from_wire_value(const core::node_id& key, wire_value w, core::time_point now) {
  stored_value v;
  v.key = key;
  v.version = w.version;
  v.value = std::move(w.value);
  v.expires = now + std::chrono::seconds(w.ttl_seconds);
  v.owner = w.owner;
  v.sig = w.sig;
  return v;
}

lookup_stats to_stats(const lookup::stats& s, std::size_t extra_messages = 0) {
  return lookup_stats{s.rounds, s.messages + extra_messages};
}

}  // namespace

struct dht_node::impl {
  // The lookups that need nothing more than their target to start.
  operation_id start_plain_lookup(op_kind kind, const core::node_id& target, core::time_point now) {
    arm(now);
    auto& op = new_op(kind, target);
    operation_id id = op.id;
    start_lookup(op, now);
    return id;
  }

  struct pending {
    request_kind kind;
    operation_id op;  // for a SHOUT: the broadcaster's handle
    contact to;
    core::time_point sent;
    std::size_t replica = 0;  // cas: the proposer's replica index and exchange tag
    std::uint64_t tag = 0;
    bool own_timeout = false;  // a SHOUT given a few RTTs: its timeout says little about the peer
  };

  struct operation {
    operation_id id = 0;
    op_kind kind = op_kind::find_node;
    core::node_id target;
    std::unique_ptr<lookup> search;          // while the lookup runs
    std::optional<core::time_point> wake;    // the lookup's next slot deadline, or the proposer's backoff
    bool had_seeds = false;
    // get
    std::optional<stored_value> found;
    // put and republish
    byte_vector value;
    put_options options;
    std::optional<stored_value> publish;     // republish: the original to hand out again
    std::optional<std::uint64_t> highest_version;
    std::optional<std::uint64_t> highest_own_version;  // of values signed by this node
    std::vector<std::pair<contact, std::uint64_t>> holders;  // answered with a value (version)
    std::size_t stores_outstanding = 0;
    std::size_t replicas = 0;
    std::size_t bytes_sent = 0;
    boost::system::error_code first_refusal;
    // patch: the diff (value holds the whole result), the whole STORE for replicas that lack the
    // base, and how many took which
    std::optional<byte_vector> diff;
    std::uint64_t base_version = 0;
    wire::store whole;
    std::size_t by_diff = 0, by_whole = 0;
    bool refused_locked = false;             // a replica refused: another node's lease covers the key
    std::uint64_t version = 0;
    lookup_stats stats;
    // shout_repair: what the broadcaster asked for (its handle, the subtree, nodes not to end on)
    broadcaster::lookup_request repair{};
    // cas: what to write (value, or update_fn), then the proposer over the replicas found
    std::optional<std::uint64_t> expected_version;
    update_function update_fn;
    std::vector<contact> replica_set;
    std::unique_ptr<cas_proposer> proposer;
    std::optional<lock_request> lock;        // a lock operation: how to read the proposer's outcome
  };

  struct maintenance_job {
    bool refresh;  // else republish
    core::node_id id;
  };

  impl(const core::identity& self_, dht_config config_, value_store& store,
       std::function<void(mutable_byte_span)> random_)
      : self(self_), config(std::move(config_)), values(store),
        table(self_.id(), config.routing), random(std::move(random_)),
        acceptor(store, cas_acceptor_limits{.max_value_size = config.limits.max_value_size}),
        listeners(config.listen.limits), watches(patch_limits{.max_value = config.limits.max_value_size}) {
    if (!random) random = sodium_random();
    acceptor.set_guard(&leases);
    // The lookup's k is the replication factor and the reply size; keep them one number.
    config.lookup.k = std::min(config.lookup.k, max_contacts_per_reply);
  }

  const core::identity& self;
  dht_config config;
  value_store& values;
  routing_table table;
  routing_table::random_source random;
  lease_guard leases;     // lock leases as this replica counts them (8.9)
  cas_acceptor acceptor;  // this node's part in deciding its keys' versions
  std::uint64_t last_round = 0;  // the last ballot round a proposer of this node took
  listener_registry listeners;   // other nodes listening to keys this node holds (8.10)
  key_watches watches;           // keys this node listens to
  struct notification {
    core::node_id key;
    std::uint64_t version;
    bool by_diff;  // sent as a diff: a NACK version_conflict then asks for the version whole
  };
  std::unordered_map<request_token, notification> notifications;  // notify STOREs in flight
  // Made at the first SHOUT sent or received: a node that never sees one pays nothing for it.
  std::unique_ptr<broadcaster> broadcasts;

  broadcaster& shouts() {
    if (!broadcasts) {
      std::uint8_t count[2];
      random(mutable_byte_span(count, sizeof count));
      broadcasts = std::make_unique<broadcaster>(self, table, config.broadcast,
                                                 static_cast<std::uint16_t>(count[0] << 8 | count[1]));
    }
    return *broadcasts;
  }

  std::unordered_map<request_token, pending> pending_requests;
  std::unordered_map<operation_id, operation> ops;
  core::fifo<outgoing> out;
  core::fifo<operation_done> events;
  core::fifo<maintenance_job> maintenance;
  std::size_t maintenance_in_flight = 0;
  core::fifo<core::node_id> replication_round;  // keys of this round not yet handed on
  std::size_t replication_in_flight = 0;
  std::unordered_map<core::node_id, std::chrono::seconds> original_ttl;  // TTL a put asked for
  std::optional<core::time_point> next_republish, next_replicate;
  request_token next_token = 1;
  operation_id next_op = 1;

  std::size_t k() const { return config.lookup.k; }

  void arm(core::time_point now) {
    if (!next_republish) next_republish = now + config.republish_interval;
    if (!next_replicate) next_replicate = now + config.replicate_interval;
  }

  // --- requests out ---

  request_token send(request_kind kind, operation_id op, const contact& to, wire::message_body body,
                     core::time_point now, std::size_t replica = 0, std::uint64_t tag = 0,
                     std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
    request_token token = next_token++;
    pending_requests.emplace(token, pending{kind, op, to, now, replica, tag, timeout.has_value()});
    auto opcode = static_cast<std::uint8_t>(std::visit(
        [](const auto& b) -> wire::opcode {
          using T = std::decay_t<decltype(b)>;
          if constexpr (std::is_same_v<T, wire::find_node>) return wire::opcode::find_node;
          else if constexpr (std::is_same_v<T, wire::find_value>) return wire::opcode::find_value;
          else if constexpr (std::is_same_v<T, wire::store>) return wire::opcode::store;
          else if constexpr (std::is_same_v<T, wire::shout>) return wire::opcode::shout;
          else return wire::opcode::ping;
        },
        body));
    out.push_back(outgoing{token, to, opcode, std::move(body), timeout});
    return token;
  }

  // `heard_from`: the contact itself reached us (a session, a request, an announce); otherwise
  // another node named it (routing_table::learn).
  void insert_contact(const contact& c, core::time_point now, bool heard_from = true) {
    if (c.id == self.id()) return;
    insert_result r = heard_from ? table.insert(c, now) : table.learn(c, now);
    if (r.outcome == insert_outcome::pending_ping && r.to_ping)
      send(request_kind::ping, 0, *r.to_ping, wire::ping{}, now);
  }

  // --- requests in ---

  std::vector<wire_contact> closest_for(const core::node_id& target, const core::node_id& requester) const {
    auto near = table.closest(target, k() + 1, true);
    std::erase_if(near, [&](const contact& c) { return c.id == requester; });
    if (near.size() > k()) near.resize(k());
    return to_wire(std::move(near));
  }

  wire::message_body answer(const core::node_id& from, const wire::message& m, core::time_point now) {
    if (const auto* f = std::get_if<wire::find_node>(&m.body)) {
      wire::ack a{m.opcode, {}};
      encode_contacts(closest_for(f->target, from), a.data);
      return a;
    }
    if (const auto* f = std::get_if<wire::find_value>(&m.body)) {
      if (f->listen) return listen_request(from, *f, now);
      wire::ack a{m.opcode, {}};
      if (auto held = values.get(f->key, now)) {
        encode_find_value_reply(to_wire_value(*held, now), a.data);
      } else {
        encode_find_value_reply(closest_for(f->key, from), a.data);
      }
      return a;
    }
    if (const auto* s = std::get_if<wire::store>(&m.body)) {
      if (s->notify) return watches.on_notify(from, *s, now);
      auto before = watched(s->key) ? values.get(s->key, now) : std::nullopt;
      std::optional<value_patch> diff;
      auto reply = store_request(from, *s, now, diff);
      // A lock record that arrived (any phase, a plain STORE, replication) is dated now.
      if (s->value.size() == lock_record_size) leases.observe(values.get(s->key, now), now);
      if (watched(s->key)) changed(s->key, before, std::move(diff), now);
      return reply;
    }
    if (std::holds_alternative<wire::shout>(m.body)) {
      auto reply = shouts().receive(from, m, now);
      flush_shouts(now);
      return reply;
    }
    return wire::nack{m.opcode, wire::nack_code::bad_request, "not a DHT request", {}};
  }

  // A STORE: the compare-and-swap phases go to the acceptor; a plain one to the store, unless a
  // lease of another node covers the key (8.9).
  // `applied_diff` receives the diff a patched STORE applied, for listeners.
  wire::message_body store_request(const core::node_id& from, const wire::store& s, core::time_point now,
                                   std::optional<value_patch>& applied_diff) {
    if (s.consensus) return acceptor.handle(s, from, now);
    if (auto refused = leases.check(from, values.get(s.key, now), now)) return *refused;
    store_write w = write_store(values, s, patch_limits{.max_value = config.limits.max_value_size}, now);
    applied_diff = std::move(w.diff);
    if (accepted(w.result)) return wire::ack{static_cast<std::uint8_t>(wire::opcode::store), {}};
    wire::nack n = make_nack(w.result);
    // The held version (0: none), so that a patch's sender knows why its base did not fit.
    if (w.result == put_result::version_conflict) encode_version(w.held_version, n.data);
    return n;
  }

  // Queues the broadcaster's SHOUTs and repair lookups, and reports our shouts that are done.
  void flush_shouts(core::time_point now) {
    if (!broadcasts) return;
    broadcaster& shouts = *broadcasts;
    while (auto r = shouts.poll_send())
      send(request_kind::shout, r->handle, r->to, std::move(r->message), now, 0, 0, r->timeout);
    while (auto l = shouts.poll_lookup()) {
      operation& op = new_op(op_kind::shout_repair, l->target);
      op.repair = std::move(*l);
      start_lookup(op, now);  // may finish at once, and come back here
    }
    while (auto f = shouts.poll_finished()) {
      shout_outcome o;
      o.sequence = f->sequence;
      o.delegates = f->delegates;
      if (f->delegates == 0) o.ec = core::errc::not_connected;
      if (f->owner != 0) events.push_back(operation_done{f->owner, std::move(o)});
    }
  }

  // --- operations ---

  // Makes v a BEP 44 mutable item of this node: owner = us, signed over (key, version, value).
  void sign_as_owner(stored_value& v) const {
    wire::store signed_part;
    signed_part.key = v.key;
    signed_part.version = v.version;
    signed_part.value = v.value;
    v.owner = self.id();
    v.sig = self.sign(wire::store_signed_bytes(signed_part));
  }

  // An operation refused before it starts (nothing sent): done at once with `ec`.
  template <typename Outcome>
  operation_id refuse(boost::system::error_code ec) {
    operation_id id = next_op++;
    Outcome refused;
    refused.ec = ec;
    events.push_back(operation_done{id, std::move(refused)});
    return id;
  }

  operation& new_op(op_kind kind, const core::node_id& target) {
    operation_id id = next_op++;
    operation& op = ops[id];
    op.id = id;
    op.kind = kind;
    op.target = target;
    return op;
  }

  // How far from a key its k closest nodes probably are: as far as our own k-th closest
  // contact is from us, the density of ids being about the same everywhere. nullopt while we
  // know fewer than k (a network that small is all replicas). Recomputed at most once a second.
  std::optional<core::node_id> replica_radius(core::time_point now) {
    if (radius_computed_ && now - *radius_computed_ < std::chrono::seconds(1)) return radius_;
    radius_computed_ = now;
    auto nearest = table.closest(self.id(), k());
    radius_.reset();
    if (nearest.size() >= k()) radius_ = nearest.back().id.distance(self.id());
    return radius_;
  }
  std::optional<core::time_point> radius_computed_;
  std::optional<core::node_id> radius_;

  // Starts op's lookup and runs it as far as it goes now. op may be gone on return.
  void start_lookup(operation& op, core::time_point now) {
    lookup_config lc = config.lookup;
    lc.find_value = op.kind == op_kind::get;
    if (lc.find_value) lc.replica_radius = replica_radius(now);
    if (op.kind == op_kind::shout_repair) {
      // A shout waits on this: contacts of ours that died cost a few round trips, not a slot
      // timeout each (broadcast_config::timeout_rtts).
      lc.slot_rtts = config.broadcast.timeout_rtts;
      lc.slot_floor = config.broadcast.min_send_timeout;
      // One answer from inside the subtree is enough (that node covers the rest); until then a
      // lost request could make the subtree look empty.
      lc.asks_per_contact = config.asks_per_silent_contact;
      lc.subtree_bits = op.repair.subtree_bits;
      lc.finish_ignoring = op.repair.spent;
    }
    // A join's lookup is how its neighbours learn of the new node: one that never heard its
    // request would leave it out of the trees it should carry (8.4).
    if (op.kind == op_kind::bootstrap) lc.asks_per_contact = config.asks_per_silent_contact;
    auto seeds = table.closest(op.target, k());
    op.had_seeds = !seeds.empty();
    table.touched(op.target, now);
    op.search = std::make_unique<lookup>(op.target, std::move(seeds), lc, self.id());
    pump(op.id, now);
  }

  void pump(operation_id id, core::time_point now) {
    auto it = ops.find(id);
    if (it == ops.end() || !it->second.search) return;
    operation& op = it->second;
    for (;;) {
      lookup::action a = op.search->next(now);
      if (auto* s = std::get_if<lookup::send>(&a)) {
        if (sends_find_value(op.kind))
          send(request_kind::lookup, op.id, s->to, wire::find_value{op.target}, now);
        else
          send(request_kind::lookup, op.id, s->to, wire::find_node{op.target}, now);
        continue;
      }
      if (auto* w = std::get_if<lookup::waiting>(&a)) {
        op.wake = w->until;
        return;
      }
      op.wake.reset();
      lookup_done(op, now);
      return;
    }
  }

  void complete(operation& op, decltype(operation_done::result) result) {
    if (reported(op.kind)) events.push_back(operation_done{op.id, std::move(result)});
    else if (is_maintenance(op.kind) && maintenance_in_flight > 0) --maintenance_in_flight;
    ops.erase(op.id);
  }

  void lookup_done(operation& op, core::time_point now) {
    auto stats = op.search->get_stats();
    switch (op.kind) {
      case op_kind::shout_repair: {
        std::uint64_t handle = op.repair.handle;
        auto found = op.search->closest_answered();
        complete(op, find_node_result{});
        shouts().on_lookup_done(handle, found);
        flush_shouts(now);
        return;
      }
      case op_kind::find_node:
      case op_kind::bootstrap:
      case op_kind::refresh: {
        find_node_result r;
        r.closest = op.search->closest_answered();
        r.stats = to_stats(stats);
        if (!op.had_seeds) r.ec = core::errc::not_connected;
        complete(op, std::move(r));
        return;
      }
      case op_kind::get: {
        get_result r;
        r.stats = to_stats(stats);
        if (op.found) {
          r.value = std::move(op.found);
          // We may be a replica that already holds a newer version of the same owner's value than
          // the first one found (a compare-and-swap that reached us and not yet the node asked).
          if (auto local = values.get(op.target, now);
              local && local->owner == r.value->owner && local->version > r.value->version)
            r.value = std::move(local);
          // Kademlia's caching: the closest node on the path that lacked the value keeps a copy.
          // The copy lives at most one republish interval: a cache outside the k closest is not
          // updated by later puts, so its staleness must be bounded.
          if (auto cache = op.search->cache_target(); cache && pending_requests.size() < max_pending_requests) {
            wire::store s = to_store(*r.value, now);
            auto cap = std::chrono::duration_cast<std::chrono::seconds>(config.republish_interval).count();
            if (cap > 0 && s.ttl_seconds > static_cast<std::uint64_t>(cap)) s.ttl_seconds = static_cast<std::uint32_t>(cap);
            send(request_kind::store_quiet, 0, *cache, std::move(s), now);
          }
        } else if (auto local = values.get(op.target, now)) {
          r.value = std::move(local);
        } else {
          r.ec = core::errc::not_found;
        }
        if (r.value) r.value->original = false;
        complete(op, std::move(r));
        return;
      }
      case op_kind::put:
      case op_kind::republish:
        start_stores(op, now);
        return;
      case op_kind::cas:
        start_consensus(op, now);
        return;
      case op_kind::patch:
        start_patch_stores(op, now);
        return;
      case op_kind::listen:
      case op_kind::listen_refresh:
        start_registrations(op, now);
        return;
    }
  }

  // --- compare-and-swap: the lookup found the key's k closest; a proposer runs over them ---

  void start_consensus(operation& op, core::time_point now) {
    // The replicas: the k closest the lookup asked (answered or not) and this node, if it is one.
    op.replica_set = op.search->closest_asked();
    op.stats = to_stats(op.search->get_stats());
    op.search.reset();
    contact me;
    me.id = self.id();
    op.replica_set.push_back(me);
    std::ranges::sort(op.replica_set, core::closer_to(op.target), &contact::id);
    if (op.replica_set.size() > k()) op.replica_set.resize(k());

    cas_proposer::settings s;
    s.key = op.target;
    s.self = self.id();
    s.replicas = op.replica_set.size();
    s.ttl = config.default_ttl;
    s.max_value_size = config.limits.max_value_size;
    s.config = config.cas;
    s.random = random;
    s.take_round = [this](std::uint64_t above) -> std::uint64_t {
      const std::uint64_t base = std::max(last_round, above);
      return base == std::numeric_limits<std::uint64_t>::max() ? 0 : last_round = base + 1;
    };
    if (op.expected_version) op.proposer = std::make_unique<cas_proposer>(std::move(s), *op.expected_version, std::move(op.value));
    else op.proposer = std::make_unique<cas_proposer>(std::move(s), std::move(op.update_fn));
    pump_consensus(op.id, now);
  }

  // A lock operation is an update of the lock record (dht/lock_ops.hpp).
  operation_id start_lock(const core::node_id& key, const lock_request& request, core::time_point now) {
    arm(now);
    auto& op = new_op(op_kind::cas, key);
    op.update_fn = lock_update(request, self.id());
    op.lock = request;
    operation_id id = op.id;
    start_lookup(op, now);
    return id;
  }

  // Runs the proposer as far as it goes now; this node answers its own part at once. The
  // operation may be gone on return.
  void pump_consensus(operation_id id, core::time_point now) {
    auto it = ops.find(id);
    if (it == ops.end() || !it->second.proposer) return;
    operation& op = it->second;
    for (;;) {
      cas_proposer::action a = op.proposer->next(now);
      if (auto* s = std::get_if<cas_proposer::send>(&a)) {
        const contact& to = op.replica_set[s->replica];
        if (to.id == self.id()) {
          auto m = wire::make_message(0, std::move(s->body));
          op.proposer->on_reply(s->replica, s->tag, local_reply(answer(self.id(), m, now)), now);
        } else {
          send(request_kind::cas, op.id, to, std::move(s->body), now, s->replica, s->tag);
        }
        continue;
      }
      if (auto* w = std::get_if<cas_proposer::waiting>(&a)) {
        op.wake = w->until;
        return;
      }
      op.wake.reset();
      cas_outcome outcome = std::get<cas_proposer::finished>(a).outcome;
      outcome.messages += op.stats.messages;
      if (op.lock) complete(op, to_lock_outcome(*op.lock, self.id(), outcome, now));
      else complete(op, std::move(outcome));
      return;
    }
  }

  // A patch starts like a put, with a FIND_NODE lookup: it needs the k closest, not their values
  // (the replicas' versions come back in their NACKs, and only from those that lack the base).
  operation_id start_patch(const core::node_id& key, std::uint64_t base_version, patch_body body,
                           patch_options options, core::time_point now) {
    arm(now);
    auto& op = new_op(op_kind::patch, key);
    op.base_version = base_version;
    op.value = std::move(body.value);
    op.diff = std::move(body.diff);
    op.options.ttl = options.ttl;
    op.options.signed_by_self = options.signed_by_self;
    operation_id id = op.id;
    start_lookup(op, now);
    return id;
  }

  // Whether this node is one of the k closest to `key`, given the closest others that answered.
  bool among_closest(const std::vector<contact>& closest_others, const core::node_id& key) const {
    return closest_others.size() < k() || self.id().distance(key) < closest_others.back().id.distance(key);
  }

  // Stores this node's own copy of a value it writes (marked original, so that it republishes
  // it) and tells listeners of the new version (`diff`: the change from `before`, if known).
  // Whether the store kept it.
  bool keep_original(const stored_value& v, const std::optional<stored_value>& before,
                     std::optional<value_patch> diff, core::time_point now) {
    stored_value local = v;
    local.original = true;
    if (!accepted(values.put(std::move(local), now))) return false;
    if (watched(v.key)) changed(v.key, before, std::move(diff), now);
    return true;
  }

  // The second half of a put: the lookup found the k closest and the versions they hold.
  void start_stores(operation& op, core::time_point now) {
    auto targets = op.search->closest_answered();
    op.stats = to_stats(op.search->get_stats());
    op.search.reset();

    stored_value v;
    if (op.publish) {
      v = *op.publish;  // same version, same signature; only the TTL is new
    } else {
      v.key = op.target;
      // The next version after the highest seen. A signed put counts its own signed versions
      // when it found any: an unsigned "value" anyone on the path can make up must not choose
      // the version the owner signs next.
      const auto base = op.options.signed_by_self && op.highest_own_version ? op.highest_own_version
                                                                            : op.highest_version;
      if (!op.options.version && base == std::numeric_limits<std::uint64_t>::max()) {
        op.first_refusal = core::errc::bad_field;  // no version follows it
        return finish_put(op);
      }
      v.version = op.options.version ? *op.options.version
                  : base              ? *base + 1
                                      : 1;
      v.value = std::move(op.value);
      if (op.options.signed_by_self) sign_as_owner(v);
    }
    std::chrono::seconds ttl = op.options.ttl.value_or(config.default_ttl);
    v.expires = now + ttl;
    v.original = false;
    op.version = v.version;
    original_ttl[v.key] = ttl;

    // The publisher always keeps its own copy; it counts as a replica only when this node is one of
    // the k closest to the key. Our own copy obeys the leases this node counts, as a peer's STORE
    // would (8.9).
    const bool self_counts = among_closest(targets, v.key);
    const auto before = values.get(v.key, now);
    const bool leased = leases.check(self.id(), before, now).has_value();
    const bool kept = !leased && keep_original(v, before, std::nullopt, now);
    if (self_counts) {
      if (kept) ++op.replicas;
      else if (!op.first_refusal) op.first_refusal = leased ? core::errc::locked : core::errc::store_refused;
    }
    op.refused_locked = leased;

    wire::store s = to_store(v, now);
    for (const contact& c : targets) {
      send(request_kind::store, op.id, c, s, now);
      ++op.stores_outstanding;
      ++op.stats.messages;
      op.bytes_sent += store_message_size(s);
    }
    // Nodes beyond the k closest that answered with an older version (cached copies) get the new
    // one too, so that the lookup's own path serves no stale value; they are not replicas.
    for (const auto& holder : op.holders) {
      const contact& c = holder.first;  // not a structured binding: clang 14 cannot capture one
      if (holder.second >= v.version) continue;
      if (std::any_of(targets.begin(), targets.end(), [&](const contact& t) { return t.id == c.id; })) continue;
      send(request_kind::store_quiet, 0, c, s, now);
      ++op.stats.messages;
      op.bytes_sent += store_message_size(s);
    }
    if (op.stores_outstanding == 0) finish_put(op);
  }

  // The second half of a patch: the FIND_NODE lookup found the k closest. Each gets the diff (or
  // the whole value when there is no diff worth sending); store_reply() sends the whole value to
  // those that answer the diff with a NACK.
  void start_patch_stores(operation& op, core::time_point now) {
    auto targets = op.search->closest_answered();
    op.stats = to_stats(op.search->get_stats());
    op.search.reset();

    stored_value v;
    v.key = op.target;
    v.version = op.base_version + 1;
    v.value = std::move(op.value);
    if (op.options.signed_by_self) sign_as_owner(v);  // over the whole result, in the diff's STORE too
    std::chrono::seconds ttl = op.options.ttl.value_or(config.default_ttl);
    v.expires = now + ttl;
    op.version = v.version;
    original_ttl[v.key] = ttl;

    const bool self_counts = among_closest(targets, v.key);
    // The old version and the diff matter only to listeners.
    const bool watching = watched(v.key);
    const auto before = watching ? values.get(v.key, now) : std::nullopt;
    const bool kept = keep_original(v, before, watching && op.diff ? decoded_diff(*op.diff) : std::nullopt, now);
    if (self_counts) {
      if (kept) ++op.replicas;
      else if (!op.first_refusal) op.first_refusal = core::errc::store_refused;
    }

    op.whole = to_store(v, now);
    wire::store diff_store = op.whole;
    if (op.diff) {
      diff_store.value = std::move(*op.diff);
      diff_store.patch = true;
    }
    for (const contact& c : targets) {
      const wire::store& s = op.diff ? diff_store : op.whole;
      send(op.diff ? request_kind::store_diff : request_kind::store, op.id, c, s, now);
      ++op.stores_outstanding;
      ++op.stats.messages;
      op.bytes_sent += store_message_size(s);
    }
    if (op.stores_outstanding == 0) finish_stores(op);
  }

  // A STORE of a put or patch came back; a NACKed diff turns into a STORE of the whole value.
  void store_reply(operation& op, const pending& p, const core::reply& r, bool dead, core::time_point now) {
    if (!r.ec) {
      ++op.replicas;
      if (p.kind == request_kind::store_diff) ++op.by_diff;
      else if (op.kind == op_kind::patch) ++op.by_whole;
    } else if (p.kind == request_kind::store_diff && r.ec == core::errc::nack && wants_whole(op, r)) {
      send(request_kind::store, op.id, p.to, op.whole, now);
      ++op.stats.messages;
      op.bytes_sent += store_message_size(op.whole);
      return;  // still outstanding
    } else if (r.ec == core::errc::nack && r.code == wire::nack_code::locked) {
      op.refused_locked = true;
    } else if (!op.first_refusal && !dead) {
      op.first_refusal = r.ec == core::errc::nack ? core::make_error_code(core::errc::store_refused) : r.ec;
    }
    if (--op.stores_outstanding == 0) finish_stores(op);
  }

  // A replica refused the diff: it lacks the base (version_conflict with a lower version or
  // none; the same version too, which a whole STORE refreshes when the bytes agree) or the diff
  // did not fit its copy of the base (bad_request). A replica already past the new version, or
  // short of room, would refuse the whole value as well.
  static bool wants_whole(const operation& op, const core::reply& r) {
    if (r.code == wire::nack_code::bad_request) return true;
    if (r.code != wire::nack_code::version_conflict) return false;
    std::uint64_t held = 0;
    return decode_version(r.data, held) || held <= op.version;
  }

  void finish_stores(operation& op) {
    if (op.kind != op_kind::patch) return finish_put(op);
    patch_outcome r;
    r.replicas = op.replicas;
    r.by_diff = op.by_diff;
    r.by_whole = op.by_whole;
    r.version = op.version;
    r.stats = op.stats;
    r.bytes_sent = op.bytes_sent;
    if (r.replicas == 0) {
      if (op.first_refusal) r.ec = op.first_refusal;
      else r.ec = op.had_seeds ? core::errc::store_refused : core::errc::not_connected;
    }
    complete(op, std::move(r));
  }

  void finish_put(operation& op) {
    put_outcome r;
    r.replicas = op.replicas;
    r.version = op.version;
    r.stats = op.stats;
    r.bytes_sent = op.bytes_sent;
    if (r.replicas == 0) {
      if (op.first_refusal) r.ec = op.first_refusal;
      else r.ec = op.had_seeds ? core::errc::store_refused : core::errc::not_connected;
    }
    // A locked key (8.8): nodes outside the lock's replicas may have taken the value, but the
    // lock's replicas did not, and reads by majority will not see it.
    if (op.refused_locked) r.ec = core::errc::locked;
    complete(op, std::move(r));
  }

  // A lookup request came back: feed the lookup, learn the contacts.
  // Inserts the dialable contacts of a FIND_NODE or FIND_VALUE reply; returns them.
  std::vector<contact> learn_contacts(const std::vector<wire_contact>& in, core::time_point now) {
    std::vector<contact> learned;
    learned.reserve(in.size());
    for (const wire_contact& w : in) {
      if (w.id == self.id() || w.addresses.empty()) continue;
      contact c;
      c.id = w.id;
      c.addresses = w.addresses;
      c.last_seen = now;
      // A contact we know is asked where it told us it listens, not where the reply says, and
      // the table has nothing to learn of it; any other is learned (routing_table::learn).
      if (auto known = table.find(c.id); known && !known->addresses.empty()) c.addresses = known->addresses;
      else insert_contact(c, now, false);
      c.connected = table.is_connected(c.id);  // FIND_VALUE asks those first (lookup.hpp)
      learned.push_back(std::move(c));
    }
    return learned;
  }

  // An empty bucket's refresh: one FIND_NODE round to the alpha contacts closest to a random id
  // in it. They share our path down to the bucket, so their tables know the subtree it covers
  // (Kademlia's table property); a full lookup would cost several rounds more to learn the same.
  void probe(const core::node_id& target, core::time_point now) {
    for (const contact& c : table.closest(target, config.lookup.alpha, true))
      send(request_kind::probe, 0, c, wire::find_node{target}, now);
  }

  void lookup_reply(operation& op, const contact& asked, const core::reply& r, core::time_point now) {
    lookup& search = *op.search;
    const core::node_id& from = asked.id;
    if (r.ec) {
      search.on_failure(from, r.ec == core::errc::timeout);
      return;
    }
    auto learn = [&](const std::vector<wire_contact>& in) { return learn_contacts(in, now); };
    if (!sends_find_value(op.kind)) {
      std::vector<wire_contact> contacts;
      if (decode_contacts(r.data, contacts)) {
        search.on_failure(from);
        return;
      }
      search.on_reply(from, learn(contacts), now);
      return;
    }
    find_value_reply reply;
    if (decode_find_value_reply(r.data, reply, config.limits.max_value_size) ||
        std::holds_alternative<wire_current>(reply)) {  // status 2 answers only a listen request
      search.on_failure(from);
      return;
    }
    if (auto* contacts = std::get_if<std::vector<wire_contact>>(&reply)) {
      search.on_reply(from, learn(*contacts), now);
      return;
    }
    auto& w = std::get<wire_value>(reply);
    const bool dead = w.ttl_seconds == 0;
    stored_value v = from_wire_value(op.target, std::move(w), now);
    if (!verify_owner_signature(v) || dead) {
      search.on_failure(from);  // a forged (or dead) value: that contact failed
      return;
    }
    if (op.kind == op_kind::get) {
      byte_vector bytes = v.value;
      op.found = std::move(v);
      search.on_value(from, std::move(bytes), now);
    } else {
      // A put looks for the k closest, not for the first value: note the version, carry on.
      if (!op.highest_version || v.version > *op.highest_version) op.highest_version = v.version;
      if (v.owner == self.id() && (!op.highest_own_version || v.version > *op.highest_own_version))
        op.highest_own_version = v.version;
      if (op.holders.size() < 4 * k()) op.holders.emplace_back(asked, v.version);
      search.on_reply(from, {}, now);
    }
  }

  // --- listening (8.10) ---

  // Whether a write to `key` concerns anyone: a node listening here, or this node itself.
  bool watched(const core::node_id& key) const {
    return listeners.has_listeners(key) || watches.watching(key);
  }

  std::optional<value_patch> decoded_diff(const byte_vector& encoded) const {
    value_patch p;
    if (decode_patch(encoded, patch_limits{.max_value = config.limits.max_value_size}, p)) return std::nullopt;
    return p;
  }

  contact contact_for(const core::node_id& id) const {
    if (auto c = table.find(id)) return *c;
    contact bare;
    bare.id = id;
    return bare;
  }

  // The store's value of `key` may have moved on from `before`: tell this node's own
  // subscriptions and the nodes listening here. The change travels as a diff when the write was
  // one, or when the two versions are consecutive and a diff is smaller than the value.
  void changed(const core::node_id& key, const std::optional<stored_value>& before,
               std::optional<value_patch> diff, core::time_point now) {
    auto held = values.get(key, now);
    if (!held || (before && held->version <= before->version)) return;
    const bool consecutive = before && before->version + 1 == held->version;
    if (!consecutive) diff.reset();
    if (!diff && consecutive) {
      value_patch made = make_patch(before->value, held->value);
      if (encoded_size(made) < held->value.size()) diff = std::move(made);
    }
    if (key_watch* w = watches.find(key)) watches.offer(*w, *held, diff, now);
    auto live = listeners.live(key, now);
    if (live.empty()) return;
    const notify_bodies bodies = notify_bodies_of(*held, diff, now);
    for (listener& l : live) notify(l, bodies, now);
  }

  // The notify STOREs of one version, made once for all its listeners: whole, and as a diff
  // against the version before when there is one.
  struct notify_bodies {
    wire::store whole;
    std::optional<wire::store> by_diff;
  };
  static notify_bodies notify_bodies_of(const stored_value& v, const std::optional<value_patch>& diff,
                                        core::time_point now) {
    notify_bodies b{to_store(v, now), std::nullopt};
    b.whole.notify = true;
    if (diff) {
      b.by_diff = b.whole;
      b.by_diff->value.clear();
      encode_patch(*diff, b.by_diff->value);
      b.by_diff->patch = true;
    }
    return b;
  }

  // Sends `l` the version: as the diff when it holds the version before, else whole.
  void notify(listener& l, const notify_bodies& b, core::time_point now) {
    if (l.subscriber == self.id() || pending_requests.size() >= max_pending_requests) return;
    if (b.whole.ttl_seconds == 0) return;
    const bool diff_fits = b.by_diff && l.known_version + 1 == b.whole.version;
    auto token = send(request_kind::notify, 0, contact_for(l.subscriber), diff_fits ? *b.by_diff : b.whole, now);
    notifications.emplace(token, notification{b.whole.key, b.whole.version, diff_fits});
    // Messages on a session arrive in order, so the next version may be a diff against this one;
    // a NACK version_conflict corrects the guess.
    l.known_version = b.whole.version;
  }

  void notify_reply(request_token token, const pending& p, const core::reply& r, bool dead, core::time_point now) {
    auto it = notifications.find(token);
    if (it == notifications.end()) return;
    notification n = it->second;
    notifications.erase(it);
    if (!r.ec) return listeners.acknowledged(n.key, p.to.id, n.version);
    if (r.ec != core::errc::nack) {
      if (dead || r.ec == core::errc::timeout) listeners.failed(n.key, p.to.id);
      return;
    }
    if (r.code == wire::nack_code::not_found) return listeners.remove(n.key, p.to.id);
    std::uint64_t held = 0;
    if (r.code != wire::nack_code::version_conflict || decode_version(r.data, held)) return;
    // Only a diff can lack its base. A whole version refused for "conflict" is no reason to send
    // it again (a listener answering every one so would have us send values in a loop): it
    // counts as a failed delivery, and a listener that keeps failing is dropped.
    if (!n.by_diff) return listeners.failed(n.key, p.to.id);
    // It lacked the diff's base: it gets the version held now, whole.
    auto current = values.get(n.key, now);
    for (listener& l : listeners.live(n.key, now)) {
      if (l.subscriber != p.to.id) continue;
      l.known_version = held;
      if (current && current->version > held) notify(l, notify_bodies_of(*current, std::nullopt, now), now);
    }
  }

  // A FIND_VALUE with a listen block: (re)subscribes `from`, and answers with what this node holds
  // — nothing sent again when the subscriber already knows the version.
  wire::message_body listen_request(const core::node_id& from, const wire::find_value& f, core::time_point now) {
    auto result = listeners.subscribe(f.key, from, *f.listen, now);
    const auto opcode = static_cast<std::uint8_t>(wire::opcode::find_value);
    if (result == listener_registry::subscribe_result::full)
      return wire::nack{opcode, wire::nack_code::quota_full, "too many listeners", {}};
    wire::ack a{opcode, {}};
    if (result == listener_registry::subscribe_result::cancelled) return a;
    auto held = values.get(f.key, now);
    // The reply carries the version held, so the subscriber's next notification can be a diff.
    if (held) listeners.acknowledged(f.key, from, held->version);
    if (!held) {
      encode_find_value_reply(std::vector<wire_contact>{}, a.data);
    } else if (held->version == f.listen->known_version) {
      encode_find_value_reply(wire_current{held->version}, a.data);
    } else {
      encode_find_value_reply(to_wire_value(*held, now), a.data);
    }
    return a;
  }

  // The lookup of a watched key found its closest nodes: register at the nearest few.
  void start_registrations(operation& op, core::time_point now) {
    auto targets = op.search->closest_answered();
    op.stats = to_stats(op.search->get_stats());
    op.search.reset();
    key_watch* w = watches.find(op.target);
    if (!w) return complete(op, listen_outcome{op.id, boost::system::errc::make_error_code(boost::system::errc::operation_canceled), 0, op.stats});
    std::erase_if(targets, [&](const contact& c) { return c.id == self.id(); });
    if (targets.size() > config.listen.replicas) targets.resize(config.listen.replicas);
    wire::listen_request request{static_cast<std::uint32_t>(config.listen.lease.count()),
                                 w->latest ? w->latest->version : 0};
    for (const contact& c : targets) {
      send(request_kind::listen, op.id, c, wire::find_value{op.target, request}, now);
      ++op.stores_outstanding;
      ++op.stats.messages;
    }
    if (op.stores_outstanding == 0) finish_registrations(op, now);
  }

  void registration_reply(operation& op, const pending& p, const core::reply& r, core::time_point now) {
    key_watch* w = watches.find(op.target);
    if (!r.ec && w) {
      auto lease = std::min(config.listen.lease, config.listen.limits.max_lease);
      w->replicas[p.to.id] = p.sent + lease;
      ++op.replicas;
      find_value_reply reply;
      if (!decode_find_value_reply(r.data, reply, config.limits.max_value_size))
        if (auto* held = std::get_if<wire_value>(&reply); held && held->ttl_seconds > 0)
          watches.offer(*w, from_wire_value(op.target, std::move(*held), now), std::nullopt, now);
    } else if (!r.ec) {
      // The key's last subscription was cancelled while this registration was on its way, and
      // the replica took it: undo it now rather than leave it listed until its lease ends.
      send(request_kind::listen_cancel, 0, contact_for(p.to.id), wire::find_value{op.target, wire::listen_request{0, 0}},
           now);
    } else if (!op.first_refusal) {
      op.first_refusal = r.ec;
    }
    if (--op.stores_outstanding == 0) finish_registrations(op, now);
  }

  // A subscription whose first registration reached nobody is over; one cancelled meanwhile
  // ends cancelled.
  void finish_registrations(operation& op, core::time_point now) {
    listen_outcome o{op.id, {}, op.replicas, op.stats};
    if (op.kind == op_kind::listen && !watches.subscribed(op.id))
      o.ec = boost::system::errc::make_error_code(boost::system::errc::operation_canceled);
    else if (op.replicas == 0)
      o.ec = op.first_refusal ? op.first_refusal : core::make_error_code(core::errc::not_connected);
    const bool over = op.kind == op_kind::listen && op.replicas == 0;
    const operation_id id = op.id;
    complete(op, std::move(o));
    if (over) end_subscription(id, now);
  }

  bool end_subscription(operation_id subscription, core::time_point now) {
    auto gone = watches.remove(subscription);
    if (!gone) return false;
    for (const core::node_id& replica : gone->replicas)
      send(request_kind::listen_cancel, 0, contact_for(replica), wire::find_value{gone->key, wire::listen_request{0, 0}},
           now);
    return true;
  }

  // --- maintenance ---

  void queue_maintenance(bool refresh, const core::node_id& id) {
    if (maintenance.size() < max_maintenance_queue) maintenance.push_back({refresh, id});
  }

  void start_maintenance(core::time_point now) {
    while (maintenance_in_flight < max_maintenance_in_flight && !maintenance.empty()) {
      maintenance_job job = maintenance.front();
      maintenance.pop_front();
      if (job.refresh) {
        ++maintenance_in_flight;
        start_lookup(new_op(op_kind::refresh, job.id), now);
        continue;
      }
      auto held = values.get(job.id, now);
      if (!held || !held->original) {
        original_ttl.erase(job.id);
        continue;
      }
      ++maintenance_in_flight;
      operation& op = new_op(op_kind::republish, job.id);
      auto ttl = original_ttl.find(job.id);
      if (ttl != original_ttl.end()) op.options.ttl = ttl->second;
      op.publish = std::move(held);
      start_lookup(op, now);
    }
  }

  // Starts a replication round: each value held but not published here goes to the k closest
  // contacts, max_replication_in_flight STOREs at a time (pump_replication). A round that is
  // still going when the next is due (more held than the interval lets through) just goes on,
  // and is pumped here too: one held back by max_pending_requests with nothing of its own in
  // flight has no reply to wake it.
  void replicate(core::time_point now) {
    if (replication_round.empty())
      for (const stored_value& v : values.all(now))
        if (!v.original) replication_round.push_back(v.key);  // its publisher's republish covers it
    pump_replication(now);
  }

  // A key's STOREs to its replicas go together, so the next key goes only when all of them fit
  // under max_replication_in_flight (or nothing is in flight: a k above it still progresses).
  void pump_replication(core::time_point now) {
    while (!replication_round.empty() && pending_requests.size() < max_pending_requests) {
      const core::node_id key = replication_round.front();
      auto v = values.get(key, now);  // as held now: it may have expired or been replaced
      std::optional<wire::store> s;
      if (v && !v->original) s = to_store(*v, now);
      if (!s || s->ttl_seconds == 0) {
        replication_round.pop_front();
        continue;
      }
      const std::vector<contact> replicas = table.closest(key, k());
      if (replication_in_flight != 0 && replication_in_flight + replicas.size() > max_replication_in_flight) return;
      replication_round.pop_front();
      for (const contact& c : replicas) {
        send(request_kind::replicate, 0, c, *s, now);
        ++replication_in_flight;
      }
    }
  }

  void on_timeout(core::time_point now) {
    arm(now);
    if (auto e = values.next_expiry(); e && *e <= now) values.expire(now);

    std::vector<operation_id> due;
    for (const auto& [id, op] : ops)
      if (op.wake && *op.wake <= now) due.push_back(id);
    for (operation_id id : due) {
      pump(id, now);
      pump_consensus(id, now);
    }

    if (table.next_refresh() <= now)
      for (const core::node_id& t : table.refresh_targets(now, random)) {
        if (table.bucket_empty(t)) probe(t, now);
        else queue_maintenance(true, t);
      }
    if (now >= *next_republish) {
      for (const stored_value& v : values.all(now))
        if (v.original) queue_maintenance(false, v.key);
      // Forget TTLs of originals no longer held (expired, or replaced by a newer version).
      std::erase_if(original_ttl, [&](const auto& e) {
        auto held = values.get(e.first, now);
        return !held || !held->original;
      });
      next_republish = now + config.republish_interval;
    }
    if (now >= *next_replicate) {
      replicate(now);
      next_replicate = now + config.replicate_interval;
    }
    for (const core::node_id& key : watches.due(now, config.listen.refresh))
      start_lookup(new_op(op_kind::listen_refresh, key), now);
    start_maintenance(now);
  }

  std::optional<core::time_point> deadline() const {
    std::optional<core::time_point> d;
    auto fold = [&](std::optional<core::time_point> t) {
      if (t && (!d || *t < *d)) d = t;
    };
    fold(values.next_expiry());
    fold(table.next_refresh());
    fold(next_republish);
    fold(next_replicate);
    fold(watches.next_refresh());
    for (const auto& [id, op] : ops) fold(op.wake);
    return d;
  }

  void reply_in(request_token token, const core::reply& r, core::time_point now) {
    arm(now);
    auto it = pending_requests.find(token);
    if (it == pending_requests.end()) return;
    pending p = it->second;
    pending_requests.erase(it);

    const bool dead = unreachable(r);
    auto rtt = std::chrono::duration_cast<std::chrono::microseconds>(now - p.sent);
    if (p.kind == request_kind::ping) {
      if (dead) table.on_ping_failed(p.to.id);
      else table.on_ping_answered(p.to.id, now, rtt);
      return;
    }
    // A SHOUT that outlived its few RTTs on a session that was up may still be queued behind other
    // traffic to a live peer: not a failure the table should hold against it (its timeouts would
    // evict busy contacts). A dial that timed out still counts.
    const bool soft_timeout = p.own_timeout && p.to.connected && r.ec == core::errc::timeout;
    if (dead && !soft_timeout) table.on_request_failed(p.to.id);
    else if (!dead) table.on_seen(p.to.id, now, rtt);

    auto op = ops.find(p.op);
    switch (p.kind) {
      case request_kind::lookup:
        if (op == ops.end() || !op->second.search) return;
        lookup_reply(op->second, p.to, r, now);
        pump(p.op, now);
        break;
      case request_kind::store:
      case request_kind::store_diff:
        if (op == ops.end()) return;
        store_reply(op->second, p, r, dead, now);
        break;
      case request_kind::cas:
        if (op == ops.end() || !op->second.proposer) return;
        op->second.proposer->on_reply(p.replica, p.tag, r, now);
        pump_consensus(p.op, now);
        break;
      case request_kind::shout:
        shouts().on_reply(p.op, r, now);
        flush_shouts(now);
        break;
      case request_kind::probe:
        if (!r.ec) {
          std::vector<wire_contact> contacts;
          if (!decode_contacts(r.data, contacts)) learn_contacts(contacts, now);
        }
        break;
      case request_kind::listen:
        if (op == ops.end()) return;
        registration_reply(op->second, p, r, now);
        break;
      case request_kind::notify:
        notify_reply(token, p, r, dead, now);
        break;
      case request_kind::replicate:
        --replication_in_flight;
        pump_replication(now);
        break;
      case request_kind::store_quiet:
      case request_kind::listen_cancel:
      case request_kind::ping:
        break;
    }
    start_maintenance(now);
  }
};

dht_node::dht_node(const core::identity& self, dht_config config, value_store& store,
                   std::function<void(mutable_byte_span)> random)
    : impl_(std::make_unique<impl>(self, std::move(config), store, std::move(random))) {}

dht_node::~dht_node() = default;

void dht_node::on_peer_connected(const core::node_id& peer, core::time_point now) {
  impl_->arm(now);
  contact c;
  c.id = peer;
  c.last_seen = now;
  impl_->insert_contact(c, now);
  impl_->table.set_connected(peer, true);
}

void dht_node::on_peer_announced(const core::node_id& peer, std::vector<std::string> addresses,
                                 core::time_point now) {
  impl_->arm(now);
  contact c;
  c.id = peer;
  c.addresses = std::move(addresses);
  c.last_seen = now;
  impl_->insert_contact(c, now);
}

void dht_node::on_peer_disconnected(const core::node_id& peer) {
  impl_->table.set_connected(peer, false);
  // Without an address nobody can reach it any more; with one, it stays until requests fail.
  auto c = impl_->table.find(peer);
  if (c && !c->dialable()) impl_->table.remove(peer);
}

core::wire::message_body dht_node::handle_request(const core::node_id& from,
                                                  const core::wire::message& m,
                                                  core::time_point now) {
  impl_->arm(now);
  if (from != impl_->self.id()) {
    // A request is a sign of life; insert keeps known addresses when the list is empty. It came
    // over a session: a contact dropped since on_peer_connected and learned again here is
    // reachable over it (and on_peer_disconnected forgets it again if it has no address).
    contact c;
    c.id = from;
    c.last_seen = now;
    impl_->insert_contact(c, now);
    impl_->table.set_connected(from, true);
  }
  return impl_->answer(from, m, now);
}

std::optional<dht_node::outgoing> dht_node::poll_request() {
  if (impl_->out.empty()) return std::nullopt;
  outgoing o = std::move(impl_->out.front());
  impl_->out.pop_front();
  return o;
}

void dht_node::on_reply(request_token token, const core::reply& r, core::time_point now) {
  impl_->reply_in(token, r, now);
}

operation_id dht_node::bootstrap(core::time_point now) {
  return impl_->start_plain_lookup(op_kind::bootstrap, impl_->self.id(), now);
}

operation_id dht_node::find_node(const core::node_id& target, core::time_point now) {
  return impl_->start_plain_lookup(op_kind::find_node, target, now);
}

operation_id dht_node::get(const core::node_id& key, core::time_point now) {
  return impl_->start_plain_lookup(op_kind::get, key, now);
}

operation_id dht_node::put(const core::node_id& key, byte_vector value, put_options options,
                           core::time_point now) {
  // Every replica with our limit would refuse it: said here, before any lookup.
  if (value.size() > impl_->config.limits.max_value_size) return impl_->refuse<put_outcome>(core::errc::too_large);
  impl_->arm(now);
  auto& op = impl_->new_op(op_kind::put, key);
  op.value = std::move(value);
  op.options = options;
  operation_id id = op.id;
  impl_->start_lookup(op, now);
  return id;
}

namespace {
patch_limits limits_of(const dht_config& c) { return patch_limits{.max_value = c.limits.max_value_size}; }
}  // namespace

operation_id dht_node::patch(const core::node_id& key, std::uint64_t base_version, byte_span base_value,
                             byte_vector next_value, patch_options options, core::time_point now) {
  if (next_value.size() > impl_->config.limits.max_value_size || base_version == UINT64_MAX)
    return impl_->refuse<patch_outcome>(next_value.size() > impl_->config.limits.max_value_size ? core::errc::too_large
                                                                                                 : core::errc::bad_field);
  return impl_->start_patch(key, base_version, patch_from_values(base_value, std::move(next_value)), options, now);
}

operation_id dht_node::patch(const core::node_id& key, std::uint64_t base_version, byte_span base_value,
                             const value_patch& diff, patch_options options, core::time_point now) {
  patch_body body;
  auto ec = patch_from_diff(base_value, diff, limits_of(impl_->config), body);
  if (!ec && base_version == UINT64_MAX) ec = core::errc::bad_field;
  if (ec) return impl_->refuse<patch_outcome>(ec);
  return impl_->start_patch(key, base_version, std::move(body), options, now);
}

operation_id dht_node::cas(const core::node_id& key, std::uint64_t expected_version, byte_vector value,
                           core::time_point now) {
  impl_->arm(now);
  auto& op = impl_->new_op(op_kind::cas, key);
  op.expected_version = expected_version;
  op.value = std::move(value);
  operation_id id = op.id;
  impl_->start_lookup(op, now);
  return id;
}

operation_id dht_node::update(const core::node_id& key, update_function fn, core::time_point now) {
  if (!fn) throw std::invalid_argument("dht_node::update: no function");
  impl_->arm(now);
  auto& op = impl_->new_op(op_kind::cas, key);
  op.update_fn = std::move(fn);
  operation_id id = op.id;
  impl_->start_lookup(op, now);
  return id;
}

operation_id dht_node::lock(const core::node_id& key, std::chrono::milliseconds lease, core::time_point now) {
  check_lease(lease);
  return impl_->start_lock(key, lock_request{lock_action::acquire, 0, lease}, now);
}

operation_id dht_node::renew(const core::node_id& key, std::uint64_t token, std::chrono::milliseconds lease,
                             core::time_point now) {
  check_lease(lease);
  return impl_->start_lock(key, lock_request{lock_action::renew, token, lease}, now);
}

operation_id dht_node::unlock(const core::node_id& key, std::uint64_t token, core::time_point now) {
  return impl_->start_lock(key, lock_request{lock_action::release, token, {}}, now);
}

void dht_node::set_wall_offset(std::chrono::milliseconds offset) {
  impl_->config.broadcast.wall_offset = offset;
  if (impl_->broadcasts) impl_->broadcasts->set_wall_offset(offset);
}

operation_id dht_node::shout(byte_vector payload, core::time_point now) {
  impl_->arm(now);
  operation_id id = impl_->next_op++;
  if (!impl_->shouts().originate(std::move(payload), id, now))
    impl_->events.push_back(operation_done{id, shout_outcome{core::make_error_code(core::errc::too_large), 0, 0}});
  impl_->flush_shouts(now);
  return id;
}

operation_id dht_node::listen(const core::node_id& key, core::time_point now) {
  impl_->arm(now);
  auto& op = impl_->new_op(op_kind::listen, key);
  operation_id id = op.id;
  impl_->watches.add(key, id, now + impl_->config.listen.refresh);
  impl_->start_lookup(op, now);
  return id;
}

bool dht_node::cancel(operation_id subscription, core::time_point now) {
  return impl_->end_subscription(subscription, now);
}

std::optional<listen_delivery> dht_node::poll_listen() { return impl_->watches.poll(); }

bool dht_node::abandon(operation_id id) {
  auto it = impl_->ops.find(id);
  if (it == impl_->ops.end()) return false;
  const op_kind kind = it->second.kind;
  if (!reported(kind) || kind == op_kind::listen) return false;
  impl_->ops.erase(it);  // its pending requests find no operation when they end
  return true;
}

std::optional<shout_delivery> dht_node::poll_shout() {
  if (!impl_->broadcasts) return std::nullopt;
  return impl_->broadcasts->poll_delivery();
}

std::optional<dht_node::operation_done> dht_node::poll_event() {
  if (impl_->events.empty()) return std::nullopt;
  operation_done e = std::move(impl_->events.front());
  impl_->events.pop_front();
  return e;
}

void dht_node::handle_timeout(core::time_point now) { impl_->on_timeout(now); }

std::optional<core::time_point> dht_node::next_deadline() const { return impl_->deadline(); }

const routing_table& dht_node::table() const { return impl_->table; }

const value_store& dht_node::store() const { return impl_->values; }

const broadcast_counters& dht_node::broadcast_stats() const {
  static const broadcast_counters none;
  return impl_->broadcasts ? impl_->broadcasts->counters() : none;
}

}  // namespace kadnet::dht
