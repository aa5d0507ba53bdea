// RELAY (PROTOCOL.md 5.15): sessions between two nodes that cannot reach each other, carried
// through a node both have a session with. The relay sees only sealed bytes of the end-to-end
// session; it holds at most relay_window messages per circuit, and at most
// config.max_relayed_circuits circuits.
#include <algorithm>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/node_engine.hpp"

namespace kadnet::core {

namespace {
constexpr auto relay_op = static_cast<std::uint8_t>(wire::opcode::relay);
}  // namespace

connection_id node_engine::dial_relayed(time_point now, connection_id via, const node_id& peer) {
  last_now_ = std::max(last_now_, now);
  connection_id c = dial(now, peer);
  auto v = connections_.find(via);
  if (v == connections_.end() || v->second.closing || !v->second.sess.is_established() ||
      circuits_on(via) >= max_circuits_per_session) {
    cut_off(c, errc::not_connected, "no session to relay through");
    on_transport_closed(c, errc::not_connected);
    return c;
  }
  circuit_key key{via, fresh_circuit_id(via), true};
  circuits_[key] = circuit{c, std::nullopt};
  relayed_[c] = relayed_connection{key};
  // The hello waits in the session until the relay says the far end accepted the circuit.
  send_relay(key, wire::relay{key.id, wire::relay_kind::open, true, peer, {}}, relay_request{relay_request::open_out, key});
  return c;
}

std::size_t node_engine::circuits_on(connection_id c) const {
  return static_cast<std::size_t>(std::count_if(circuits_.begin(), circuits_.end(),
                                                [&](const auto& kv) { return kv.first.connection == c; }));
}

node_engine::passed_on_count node_engine::passed_on_for(connection_id asker) const {
  auto it = relayed_for_.find(asker);
  return it == relayed_for_.end() ? passed_on_count{} : it->second;
}

bool node_engine::carries_own_circuit(connection_id c) const {
  return std::any_of(circuits_.begin(), circuits_.end(), [&](const auto& kv) {
    return kv.first.connection == c && kv.first.opened_by_us && kv.second.inner != 0;
  });
}

std::uint32_t node_engine::fresh_circuit_id(connection_id via) {
  for (;;) {
    const std::uint32_t id = next_circuit_++;
    if (id != 0 && !circuits_.contains(circuit_key{via, id, true})) return id;
  }
}

void node_engine::send_relay(const circuit_key& leg, wire::relay body, relay_request pending) {
  auto c = connections_.find(leg.connection);
  if (c == connections_.end() || c->second.closing || !c->second.sess.is_established()) return;  // its circuits end with it
  // Filed under the id start_request is about to use, before it runs: a send that fails at once
  // (cutting the session off) comes back through finish_relay_request like any failure.
  relay_requests_[next_request_] = pending;
  if (pending.kind == relay_request::forward_open) ++relayed_for_[pending.asker].opens, ++opens_passed_on_;
  if (pending.kind == relay_request::forward) ++relayed_for_[pending.asker].data;
  start_request(last_now_, leg.connection, relay_op, std::move(body), std::nullopt, true);
}

void node_engine::on_relay(connection_id c, connection_state& st, const wire::message& m) {
  const auto& in = std::get<wire::relay>(m.body);
  const circuit_key key{c, in.circuit, !in.from_opener};
  auto nack = [&](wire::nack_code code, std::string text) { send_nack(c, m.opcode, m.id, code, std::move(text)); };
  // One relay per path: a relayed session carries no circuits of its own (nesting them would
  // let one peer stack sessions without bound).
  if (relayed_.contains(c)) return nack(wire::nack_code::bad_request, "no relaying over a relayed session");
  if (in.kind == wire::relay_kind::open) {
    if (!in.from_opener || circuits_.contains(key)) return nack(wire::nack_code::bad_request, "circuit already open");
    if (in.peer == self_.id()) {
      // We are the far end: a new inbound session whose bytes come through this circuit.
      if (circuits_on(c) >= max_circuits_per_session) return nack(wire::nack_code::rate_limited, "too many circuits");
      connection_id inner = accept(last_now_, {});
      circuits_[key] = circuit{inner, std::nullopt};
      relayed_[inner] = relayed_connection{key, true};
      ++counters_.relayed_sessions_accepted;
      return send_reply(c, m.id, wire::ack{m.opcode, {}});
    }
    if (config_.max_relayed_circuits == 0) return nack(wire::nack_code::unsupported_opcode, "this node relays nothing");
    // Opens still waiting count too, per asker and in all: a circuit closed early leaves its open
    // waiting, and askers may hold many sessions.
    if (circuits_relayed_now_ >= config_.max_relayed_circuits || opens_passed_on_ >= config_.max_relayed_circuits ||
        circuits_on(c) >= max_circuits_per_session || passed_on_for(c).opens >= max_circuits_per_session)
      return nack(wire::nack_code::rate_limited, "too many circuits");
    const node_id asker = st.sess.peer()->peer;
    if (in.peer == asker) return nack(wire::nack_code::bad_request, "cannot relay a node to itself");
    auto target = connection_to(in.peer);
    if (!target || relayed_.contains(*target)) return nack(wire::nack_code::not_found, "no session with that peer");
    if (circuits_on(*target) >= max_circuits_per_session) return nack(wire::nack_code::rate_limited, "too many circuits");
    const circuit_key out{*target, fresh_circuit_id(*target), true};
    circuits_[key] = circuit{0, out};
    circuits_[out] = circuit{0, key};
    ++circuits_relayed_now_;
    return send_relay(out, wire::relay{out.id, wire::relay_kind::open, true, in.peer, {}},
                      relay_request{relay_request::forward_open, out, c, m.id});
  }
  auto it = circuits_.find(key);
  if (it == circuits_.end()) return nack(wire::nack_code::not_found, "no such circuit");
  if (in.kind == wire::relay_kind::close) {
    send_reply(c, m.id, wire::ack{m.opcode, {}});
    return end_leg(key, errc::connection_closed, "the relayed session ended");
  }
  if (it->second.inner) {
    const connection_id inner = it->second.inner;
    send_reply(c, m.id, wire::ack{m.opcode, {}});
    return on_bytes(inner, last_now_, in.data);
  }
  // Passed on in order; the sender's message is answered when the next hop answers ours, so
  // that a slow far end slows the near end down rather than filling this node. A sender that
  // does not keep to the window and the chunk size (5.15) is refused, not buffered.
  if (in.data.size() > relay_chunk) return nack(wire::nack_code::too_large, "relay data over 16 KiB");
  if (it->second.unanswered >= relay_window || passed_on_for(c).data >= max_circuits_per_session * relay_window)
    return nack(wire::nack_code::rate_limited, "relay window full");
  ++it->second.unanswered;
  const circuit_key other = *it->second.other;
  counters_.relayed_bytes += in.data.size();
  send_relay(other, wire::relay{other.id, wire::relay_kind::data, other.opened_by_us, {}, in.data},
             relay_request{relay_request::forward, other, c, m.id});
}

void node_engine::finish_relay_request(request_id r, const reply& result) {
  auto it = relay_requests_.find(r);
  if (it == relay_requests_.end()) return;
  const relay_request p = it->second;
  relay_requests_.erase(it);
  // Copied out before anything is sent: a send may cut a session off, and that ends circuits.
  auto leg = circuits_.find(p.key);
  const bool have_leg = leg != circuits_.end();
  const connection_id inner = have_leg ? leg->second.inner : 0;
  const std::optional<circuit_key> other = have_leg ? leg->second.other : std::nullopt;
  switch (p.kind) {
    case relay_request::close_out:
      return;
    case relay_request::open_out: {
      // Unanswered, the relay may yet open the circuit; answered after our session ended, it
      // did: either way, tell it we are not there.
      if (result.ec == errc::timeout || (!have_leg && !result.ec)) send_relay_close(p.key);
      if (!have_leg) return;
      if (result.ec)
        return end_leg(p.key, result.ec == errc::timeout ? result.ec : make_error_code(errc::peer_not_found),
                       "the relay could not open a circuit: " + (result.text.empty() ? result.ec.message() : result.text));
      if (auto rc = relayed_.find(inner); rc != relayed_.end()) rc->second.open = true;
      return flush_relayed(inner);
    }
    case relay_request::data_out: {
      if (!have_leg) return;
      if (result.ec) return end_leg(p.key, errc::connection_closed, "the relay dropped the circuit");
      if (auto rc = relayed_.find(inner); rc != relayed_.end()) --rc->second.in_flight;
      return flush_relayed(inner);
    }
    case relay_request::forward_open:
    case relay_request::forward: {
      if (auto debt = relayed_for_.find(p.asker); debt != relayed_for_.end()) {
        std::size_t& count = p.kind == relay_request::forward_open ? debt->second.opens : debt->second.data;
        if (count > 0) {
          --count;
          if (p.kind == relay_request::forward_open) --opens_passed_on_;
        }
        if (debt->second.opens == 0 && debt->second.data == 0) relayed_for_.erase(debt);
      }
      // Data: the leg it came in on has one fewer unanswered (an open never counted there).
      if (other && p.kind == relay_request::forward)
        if (auto in = circuits_.find(*other); in != circuits_.end() && in->second.unanswered > 0) --in->second.unanswered;
      if (!result.ec) {
        if (p.kind == relay_request::forward_open) ++counters_.circuits_relayed;
        return send_reply(p.asker, p.asker_message, wire::ack{relay_op, {}});
      }
      // The next hop refused or vanished: the circuit is over on both legs (erased before the
      // NACK goes out, since sending may end sessions and their circuits).
      if (have_leg) {
        circuits_.erase(p.key);
        if (other && circuits_.erase(*other)) --circuits_relayed_now_;
      }
      nack_passed_on(p.asker, relay_op, p.asker_message, result);
      if (have_leg && p.kind == relay_request::forward) send_relay_close(p.key);
      return;
    }
  }
}

void node_engine::flush_relayed(connection_id inner) {
  auto r = relayed_.find(inner);
  if (r == relayed_.end()) return;
  auto ci = connections_.find(inner);
  if (ci != connections_.end()) {
    byte_vector bytes = ci->second.sess.take_transmit();
    r->second.pending.insert(r->second.pending.end(), bytes.begin(), bytes.end());
  }
  // Each send may cut the relay's session off, which ends this circuit and erases its entry:
  // look it up again after every one.
  for (;;) {
    r = relayed_.find(inner);
    if (r == relayed_.end()) return;
    relayed_connection& rc = r->second;
    if (!rc.open || rc.pending_from >= rc.pending.size() || rc.in_flight >= relay_window) break;
    const std::size_t n = std::min(relay_chunk, rc.pending.size() - rc.pending_from);
    const auto from = rc.pending.begin() + static_cast<std::ptrdiff_t>(rc.pending_from);
    byte_vector chunk(from, from + static_cast<std::ptrdiff_t>(n));
    ++rc.in_flight;
    rc.pending_from += n;
    const circuit_key key = rc.key;
    send_relay(key, wire::relay{key.id, wire::relay_kind::data, key.opened_by_us, {}, std::move(chunk)},
               relay_request{relay_request::data_out, key});
  }
  relayed_connection& rc = r->second;
  // What went out is dropped once it is a window's worth, so a long transfer that never drains
  // does not keep all it sent.
  if (rc.pending_from == rc.pending.size() || rc.pending_from >= relay_chunk * relay_window) {
    rc.pending.erase(rc.pending.begin(), rc.pending.begin() + static_cast<std::ptrdiff_t>(rc.pending_from));
    rc.pending_from = 0;
  }
  ci = connections_.find(inner);
  const bool closing = ci == connections_.end() || ci->second.closing;
  if (!closing && rc.pending.size() > config_.max_queued_bytes_per_peer)
    return cut_off(inner, errc::peer_cut_off, "the relayed peer does not read");
  if (closing && (!rc.open || rc.pending.empty())) {
    // Everything the session said (its farewell too) went out: close the circuit after it.
    const circuit_key key = rc.key;
    const bool was_open = rc.open;
    relayed_.erase(r);
    circuits_.erase(key);
    if (was_open) send_relay_close(key);
    on_transport_closed(inner, errc::connection_closed);
  }
}

void node_engine::send_relay_close(const circuit_key& leg) {
  auto c = connections_.find(leg.connection);
  if (c == connections_.end() || c->second.closing || !c->second.sess.is_established()) return;
  send_relay(leg, wire::relay{leg.id, wire::relay_kind::close, leg.opened_by_us, {}, {}},
             relay_request{relay_request::close_out, leg});
}

void node_engine::end_leg(const circuit_key& key, boost::system::error_code ec, const std::string& why) {
  auto it = circuits_.find(key);
  if (it == circuits_.end()) return;
  const circuit leg = it->second;
  circuits_.erase(it);
  if (leg.inner) {
    relayed_.erase(leg.inner);
    cut_off(leg.inner, ec, why);
    on_transport_closed(leg.inner, ec);
    return;
  }
  if (leg.other && circuits_.erase(*leg.other)) {
    --circuits_relayed_now_;
    send_relay_close(*leg.other);
  }
}

void node_engine::drop_circuits_of(connection_id c) {
  std::vector<circuit_key> legs;
  for (const auto& [key, _] : circuits_)
    if (key.connection == c) legs.push_back(key);
  for (const auto& key : legs) end_leg(key, errc::connection_closed, "the relay's session ended");
}

}  // namespace kadnet::core
