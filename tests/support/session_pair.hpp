#pragma once
// Two sessions, a dialer and its responder, that hand each other their packets directly on
// virtual time: no engine, no loss. Datagram sessions unless told otherwise (stream sessions get
// the packets as a byte stream). For tests of what one session does.
#include <algorithm>
#include <functional>
#include <optional>
#include <vector>

#include "kadnet/core/crypto/cookie_jar.hpp"
#include "kadnet/core/crypto/handshake.hpp"
#include "kadnet/core/session.hpp"
#include "tests/support/fixed_keys.hpp"

namespace kadnet::testing {

struct session_pair {
  core::identity dialer_id = fixed_identity(1);
  core::identity responder_id = fixed_identity(2);
  core::crypto::responder responder{responder_id, {}};
  core::crypto::cookie_jar cookies;
  core::responder_context context{&responder, &cookies, false};
  core::time_point now{};
  core::framing framing;
  core::session dialer, accepter;
  std::vector<core::session::event> dialer_events, accepter_events;

  explicit session_pair(core::framing f = core::framing::datagram)
      : framing(f),
        dialer(f == core::framing::datagram
                   ? core::session::dial_datagram(dialer_id, {}, responder_id.id(), {}, {}, now)
                   : core::session::dial(dialer_id, {}, responder_id.id(), {})),
        accepter(f == core::framing::datagram ? core::session::accept_datagram(context, byte_vector(18, 1), {}, {}, now)
                                              : core::session::accept(context, byte_vector(18, 1), {})) {}

  // Moves packets both ways, and time on to the sessions' deadlines, until `done` holds or
  // `limit` of virtual time passed (false).
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const core::time_point end = now + limit;
    for (;;) {
      while (dialer.has_transmit() || accepter.has_transmit()) {
        deliver(dialer, accepter);
        deliver(accepter, dialer);
      }
      while (auto e = dialer.poll_event()) dialer_events.push_back(std::move(*e));
      while (auto e = accepter.poll_event()) accepter_events.push_back(std::move(*e));
      if (done()) return true;
      if (dialer.has_transmit() || accepter.has_transmit()) continue;  // `done` sent something
      std::optional<core::time_point> next;
      for (auto* s : {&dialer, &accepter})
        if (auto d = s->next_deadline(); d && (!next || *d < *next)) next = d;
      if (!next || *next > end) return false;
      now = std::max(now, *next);
      dialer.handle_timeout(now);
      accepter.handle_timeout(now);
    }
  }

  // Moves what is queued both ways until neither side has anything to send.
  void exchange() {
    run_until([] { return true; });
  }

  void establish() { run_until([&] { return dialer.is_established() && accepter.is_established(); }); }

  // One datagram per packet: the packets of a transmit lie back to back, each with its length.
  // A stream session takes them as they are.
  void deliver(core::session& from, core::session& to) {
    byte_vector packets = from.take_transmit();
    if (framing == core::framing::stream) {
      to.advance_clock(now);
      to.handle_bytes(packets, static_cast<std::uint64_t>(
                                   std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count()));
      return;
    }
    for (std::size_t off = 0; off + core::wire::packet_header_size <= packets.size();) {
      std::size_t len = core::wire::packet_header_size + ((std::size_t{packets[off + 2]} << 8) | packets[off + 3]);
      to.handle_datagram(byte_span(packets).subspan(off, len), now);
      off += len;
    }
  }
};

}  // namespace kadnet::testing
