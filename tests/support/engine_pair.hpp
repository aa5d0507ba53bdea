#pragma once
// Two node engines joined by an in-memory stream, on virtual time: the sans-I/O counterpart of
// two nodes over TCP. exchange() carries bytes both ways until neither has anything to send;
// a tamper hook may alter or drop bytes in flight.
#include <functional>
#include <vector>

#include "kadnet/core/node_engine.hpp"
#include "tests/support/fixed_keys.hpp"

namespace kadnet::testing {

class engine_pair {
 public:
  using tamper_fn = std::function<void(byte_vector& bytes)>;

  engine_pair(core::node_config a_config = {}, core::node_config b_config = {})
      : a_id(fixed_identity(1)), b_id(fixed_identity(2)),
        a(a_id, std::move(a_config)), b(b_id, std::move(b_config)) {}

  // A dials B; returns after both ends processed everything the handshake produced.
  // `a_seen_by_b` / `b_seen_by_a`: the transport addresses each side sees for the other.
  void connect(std::optional<core::node_id> expected = std::nullopt,
               byte_vector a_seen_by_b = byte_vector(18, 0), byte_vector b_seen_by_a = byte_vector(18, 0)) {
    a_conn = a.dial(now, expected, std::move(b_seen_by_a));
    b_conn = b.accept(now, std::move(a_seen_by_b));
    exchange();
  }

  // Moves bytes until both sides are quiet. Returns the number of rounds taken.
  int exchange() {
    int rounds = 0;
    for (bool moved = true; moved; ++rounds) {
      moved = carry(a, a_conn, b, b_conn, a_to_b) | carry(b, b_conn, a, a_conn, b_to_a);
      drain(a, a_events);
      drain(b, b_events);
    }
    return rounds;
  }

  void advance(std::chrono::milliseconds d) {
    now += d;
    a.handle_timeout(now);
    b.handle_timeout(now);
    exchange();
  }

  template <typename Event>
  std::vector<Event> events_of(std::vector<core::node_engine::event>& log) {
    std::vector<Event> out;
    for (auto& e : log)
      if (auto* x = std::get_if<Event>(&e)) out.push_back(*x);
    return out;
  }

  core::identity a_id, b_id;
  core::node_engine a, b;
  core::connection_id a_conn = 0, b_conn = 0;
  core::time_point now{std::chrono::hours(1)};
  std::vector<core::node_engine::event> a_events, b_events;
  tamper_fn a_to_b, b_to_a;
  bool a_closed = false, b_closed = false;

 private:
  bool carry(core::node_engine& from, core::connection_id from_conn, core::node_engine& to,
             core::connection_id to_conn, const tamper_fn& tamper) {
    bool moved = false;
    for (auto c : from.take_dirty()) {
      byte_vector bytes = from.take_transmit(c);
      bool closing = from.wants_close(c);
      if (tamper && !bytes.empty()) tamper(bytes);
      if (!bytes.empty() && c == from_conn) {
        to.on_bytes(to_conn, now, bytes);
        moved = true;
      }
      if (closing) {
        from.on_transport_closed(c, {});
        to.on_transport_closed(to_conn, {});
        moved = true;
      }
    }
    return moved;
  }
  static void drain(core::node_engine& e, std::vector<core::node_engine::event>& log) {
    while (auto ev = e.poll_event()) log.push_back(std::move(*ev));
  }
};

}  // namespace kadnet::testing
