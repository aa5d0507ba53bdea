// INTRODUCE (PROTOCOL.md 5.14): introducing two peers that both have a UDP session with this
// node, and being the one introduced to (asking the driver for a punch).
#include "kadnet/core/errors.hpp"
#include "kadnet/core/node_engine.hpp"

namespace kadnet::core {

// INTRODUCE (PROTOCOL.md 5.14). Both roles need datagram sessions: the addresses exchanged are
// the ones this node's UDP socket sees, which is what the peers' NATs mapped for that socket.
void node_engine::on_introduce(connection_id c, connection_state& st, const wire::message& m) {
  const auto& in = std::get<wire::introduce>(m.body);
  if (config_.introductions_per_second == 0)
    return send_nack(c, m.opcode, m.id, wire::nack_code::unsupported_opcode, "this node does not introduce peers");
  if (st.sess.transport_framing() != framing::datagram || st.address.empty())
    return send_nack(c, m.opcode, m.id, wire::nack_code::bad_request, "introductions are for datagram (UDP) sessions");
  if (!take_introduction_budget(last_now_)) {
    ++counters_.introductions_refused;
    return send_nack(c, m.opcode, m.id, wire::nack_code::rate_limited, "too many introductions; retry later");
  }
  const node_id asker = st.sess.peer()->peer;
  if (!in.address.empty()) {
    // We are the one introduced to: `peer` will dial us from `address`. Our punch opens our NAT
    // towards it; it leaves with the ACK, which has three hops to go before the dial arrives.
    ++counters_.punches_wanted;
    events_.push_back(punch_wanted{in.peer, in.address});
    return send_reply(c, m.id, wire::ack{m.opcode, {}});
  }
  if (in.peer == asker || in.peer == self_.id())
    return send_nack(c, m.opcode, m.id, wire::nack_code::bad_request, "cannot introduce a node to itself");
  auto target = connection_to(in.peer);
  auto t = target ? connections_.find(*target) : connections_.end();
  if (t == connections_.end() || t->second.closing || t->second.address.empty() ||
      t->second.sess.transport_framing() != framing::datagram)
    return send_nack(c, m.opcode, m.id, wire::nack_code::not_found, "no datagram session with that peer");
  // Filed under the id start_request is about to use, before it runs: a send that fails at
  // once (cutting the target off) answers through finish_introduction like any failure.
  introductions_[next_request_] = pending_introduction{c, m.id, *target};
  start_request(last_now_, *target, m.opcode,
                wire::introduce{asker, byte_vector(st.address.bytes().begin(), st.address.bytes().end())},
                std::nullopt, true);
}

bool node_engine::take_introduction_budget(time_point now) {
  if (now - introduction_window_start_ >= std::chrono::seconds(1)) {
    introduction_window_start_ = now;
    introductions_in_window_ = 0;
  }
  if (introductions_in_window_ >= config_.introductions_per_second) return false;
  ++introductions_in_window_;
  return true;
}

void node_engine::finish_introduction(request_id r, const reply& result) {
  auto it = introductions_.find(r);
  if (it == introductions_.end()) return;
  const pending_introduction p = it->second;
  introductions_.erase(it);
  auto asker = connections_.find(p.asker);
  if (asker == connections_.end() || asker->second.closing) return;
  if (result.ec) return nack_passed_on(p.asker, static_cast<std::uint8_t>(wire::opcode::introduce), p.message_id, result);
  auto target = connections_.find(p.target);
  if (target == connections_.end() || target->second.address.empty())
    return send_nack(p.asker, static_cast<std::uint8_t>(wire::opcode::introduce), p.message_id,
                     wire::nack_code::not_found, "the session with that peer ended");
  ++counters_.introductions;
  byte_span address = target->second.address.bytes();
  send_reply(p.asker, p.message_id, wire::ack{static_cast<std::uint8_t>(wire::opcode::introduce),
                                                byte_vector(address.begin(), address.end())});
}

byte_vector node_engine::punch_packet() {
  byte_vector out;
  wire::append_packet(out, wire::packet_type::punch, {});
  return out;
}

}  // namespace kadnet::core
