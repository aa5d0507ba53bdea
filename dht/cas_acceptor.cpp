#include "kadnet/dht/cas_acceptor.hpp"

#include <algorithm>
#include <string>

namespace kadnet::dht {
namespace {

namespace wire = core::wire;

constexpr auto store_opcode = static_cast<std::uint8_t>(wire::opcode::store);

wire::nack refuse(wire::nack_code code, std::string text, byte_vector data = {}) {
  return wire::nack{store_opcode, code, std::move(text), std::move(data)};
}

ballot ballot_of(const wire::store& s) { return ballot{s.consensus->round, s.consensus->proposer}; }

stored_value version_of(const wire::store& s, std::uint64_t version, core::time_point now) {
  stored_value v;
  v.key = s.key;
  v.version = version;
  v.value = s.value;
  v.expires = now + std::chrono::seconds(s.ttl_seconds);
  return v;
}

}  // namespace

cas_acceptor::cas_acceptor(value_store& store, cas_acceptor_limits limits)
    : store_(store), limits_(limits) {}

wire::message_body cas_acceptor::handle(const wire::store& s, core::time_point now) {
  return dispatch(s, nullptr, now);
}

wire::message_body cas_acceptor::handle(const wire::store& s, const core::node_id& from, core::time_point now) {
  return dispatch(s, &from, now);
}

std::optional<wire::nack> cas_acceptor::leased(const core::node_id& key, const core::node_id* from,
                                               core::time_point now) {
  if (!guard_ || !from) return std::nullopt;
  return guard_->check(*from, store_.get(key, now), now);
}

wire::message_body cas_acceptor::dispatch(const wire::store& s, const core::node_id* from, core::time_point now) {
  if (s.version == 0) return refuse(wire::nack_code::bad_request, "version 0 is no slot: versions start at 1");
  if (s.ttl_seconds == 0) return refuse(wire::nack_code::bad_request, "a compare-and-swap value needs a ttl");
  if (s.value.size() > limits_.max_value_size) return make_nack(put_result::too_large);
  auto held = store_.get(s.key, now);
  if (held && held->signed_value())
    return refuse(wire::nack_code::bad_request, "owner-signed key: compare-and-swap is for unowned keys");
  switch (s.consensus->phase) {
    case wire::consensus_phase::prepare: return prepare(s, std::move(held), from, now);
    case wire::consensus_phase::accept: return accept(s, std::move(held), from, now);
    case wire::consensus_phase::commit: return commit(s, held ? held->version : 0, from, now);
  }
  return refuse(wire::nack_code::bad_request, "unknown consensus phase");
}

wire::message_body cas_acceptor::prepare(const wire::store& s, std::optional<stored_value> held,
                                         const core::node_id* from, core::time_point now) {
  const std::uint64_t slot = s.version;
  std::uint64_t version = held ? held->version : 0;
  if (version >= slot) return conflict(s, version, std::move(held->value));
  if (version < slot - 1) {
    // Behind: the base was chosen (the sender read it from a majority), so catch up to it; but
    // nothing here can tell a chosen base from a forged one, so not over another's live lease.
    if (auto refused = leased(s.key, from, now)) return *refused;
    put_result r = store_.put(version_of(s, slot - 1, now), now);
    if (!accepted(r)) return make_nack(r);
  } else if (version > 0 && held->value != s.value) {
    // Same version, other bytes: someone wrote this key outside compare-and-swap.
    return conflict(s, version, std::move(held->value));
  }
  auto promised = promise(s, slot, from, now);
  if (auto* refusal = std::get_if<wire::message_body>(&promised)) return std::move(*refusal);
  slot_state* st = std::get<slot_state*>(promised);
  wire::ack a{store_opcode, {}};
  encode_promise(cas_promise{st->accepted}, a.data);
  return a;
}

std::variant<cas_acceptor::slot_state*, wire::message_body> cas_acceptor::promise(const wire::store& s,
                                                                                  std::uint64_t slot,
                                                                                  const core::node_id* from,
                                                                                  core::time_point now) {
  if (auto refused = leased(s.key, from, now)) return wire::message_body{*refused};
  slot_state* st = open_slot(s.key, slot, now);
  if (!st) return make_nack(put_result::quota_full);
  ballot b = ballot_of(s);
  if (st->promised && b < *st->promised) return outbid(*st->promised);
  st->promised = b;
  st->used = now;
  return st;
}

wire::message_body cas_acceptor::accept(const wire::store& s, std::optional<stored_value> held,
                                        const core::node_id* from, core::time_point now) {
  const std::uint64_t slot = s.version;
  const std::uint64_t version = held ? held->version : 0;
  if (version >= slot) return conflict(s, version, std::move(held->value));
  if (version < slot - 1) {
    byte_vector data;
    encode_version(version, data);
    return refuse(wire::nack_code::not_found, "the version before the slot is not held here", std::move(data));
  }
  auto promised = promise(s, slot, from, now);
  if (auto* refusal = std::get_if<wire::message_body>(&promised)) return std::move(*refusal);
  slot_state* st = std::get<slot_state*>(promised);
  st->accepted = accepted_proposal{*st->promised, s.consensus->proposal, s.value};
  st->accepted_ttl = std::chrono::seconds(s.ttl_seconds);
  return wire::ack{store_opcode, {}};
}

wire::message_body cas_acceptor::commit(const wire::store& s, std::uint64_t version, const core::node_id* from,
                                        core::time_point now) {
  const std::uint64_t slot = s.version;
  if (version < slot) {
    if (auto refused = leased(s.key, from, now)) return *refused;
    put_result r = store_.put(version_of(s, slot, now), now);
    if (!accepted(r)) return make_nack(r);
  }
  if (slot_state* st = find_or_make(s.key, now)) {
    remember(*st, slot, s.consensus->proposal);
    if (st->slot <= std::max(version, slot)) close_slot(*st);
  }
  return wire::ack{store_opcode, {}};
}

cas_acceptor::slot_state* cas_acceptor::find_or_make(const core::node_id& key, core::time_point now) {
  auto it = slots_.find(key);
  if (it != slots_.end()) return &it->second;
  if (slots_.size() >= limits_.max_keys && !make_room(now)) return nullptr;
  return &slots_[key];
}

cas_acceptor::slot_state* cas_acceptor::open_slot(const core::node_id& key, std::uint64_t slot,
                                                  core::time_point now) {
  slot_state* st = find_or_make(key, now);
  if (st && st->slot != slot) {
    // The held version moved (a commit, a plain STORE, an expiry): the old slot is over.
    close_slot(*st);
    st->slot = slot;
  }
  return st;
}

void cas_acceptor::close_slot(slot_state& st) {
  st.slot = 0;
  st.promised.reset();
  st.accepted.reset();
}

bool cas_acceptor::make_room(core::time_point now) {
  // A key without a promise loses only its history; a promised slot the store has moved past is
  // over. A live promise is never dropped.
  auto over = [&](const std::pair<const core::node_id, slot_state>& e) {
    if (!e.second.promised) return true;
    auto held = store_.get(e.first, now);
    return held && held->version >= e.second.slot;
  };
  auto it = std::find_if(slots_.begin(), slots_.end(), over);
  if (it == slots_.end()) {
    // Else the state idle longest among those that may go: a bare promise (nothing accepted)
    // nobody went on with for idle_lifetime, or an accepted value idle for longer than the TTL it
    // was proposed with (capped at max_ttl). Until then an accepted value stays: it may be the
    // chosen one, whose commits were lost, and the next prepare must find it; after that it
    // would have expired even had it been committed.
    auto may_go = [&](const slot_state& st) {
      const auto idle = now - st.used;
      if (!st.accepted) return idle >= limits_.idle_lifetime;
      return idle >= std::max<std::chrono::milliseconds>(limits_.idle_lifetime, std::min(st.accepted_ttl, limits_.max_ttl));
    };
    auto oldest = slots_.end();
    for (auto e = slots_.begin(); e != slots_.end(); ++e)
      if (may_go(e->second) && (oldest == slots_.end() || e->second.used < oldest->second.used)) oldest = e;
    if (oldest == slots_.end()) return false;
    it = oldest;
  }
  slots_.erase(it);
  return true;
}

void cas_acceptor::remember(slot_state& st, std::uint64_t version, const proposal_id& proposal) {
  auto known = std::find_if(st.chosen.begin(), st.chosen.end(), [&](const auto& e) { return e.first == version; });
  if (known != st.chosen.end()) return;
  st.chosen.emplace_back(version, proposal);
  while (st.chosen.size() > limits_.history) st.chosen.pop_front();
}

std::optional<proposal_id> cas_acceptor::writer_of(const core::node_id& key, std::uint64_t version) const {
  auto it = slots_.find(key);
  if (it == slots_.end()) return std::nullopt;
  for (const auto& [v, p] : it->second.chosen)
    if (v == version) return p;
  return std::nullopt;
}

wire::nack cas_acceptor::conflict(const wire::store& s, std::uint64_t version, byte_vector value) const {
  cas_conflict c{version, writer_of(s.key, s.version), std::move(value)};
  wire::nack n = refuse(wire::nack_code::version_conflict, "the slot is decided: version " + std::to_string(version));
  encode_conflict(c, n.data);
  return n;
}

wire::nack cas_acceptor::outbid(const ballot& promised) const {
  wire::nack n = refuse(wire::nack_code::locked, "promised a higher ballot");
  encode_ballot(promised, n.data);
  return n;
}

}  // namespace kadnet::dht
