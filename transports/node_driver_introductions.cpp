// Reaching a peer that cannot be dialed, through a node both sides have a session with: UDP
// hole punching (PROTOCOL.md 5.14) — asking for an introduction, and punching when we are the
// one introduced to — and, when that is not possible or fails, a relayed session (5.15).
#include "kadnet/core/errors.hpp"
#include "kadnet/transports/node_driver.hpp"

namespace kadnet::transports {

namespace wire = core::wire;
using core::errc;

void node_driver::reach_through_others(core::node_id peer, std::vector<core::node_id> helpers,
                                       boost::system::error_code failed, ready_handler then, wanted_fn wanted) {
  auto relay_next = [this, peer, helpers, then, wanted](boost::system::error_code ec, core::connection_id c) {
    if (!ec || ec == errc::shutting_down) return then(ec, c);
    reach_by_relay(peer, helpers, ec, then, wanted);
  };
  reach_by_introduction(peer, std::move(helpers), failed, relay_next, wanted);
}

void node_driver::reach_by_relay(core::node_id peer, std::vector<core::node_id> helpers,
                                 boost::system::error_code failed, ready_handler then, wanted_fn wanted,
                                 std::size_t asked) {
  if (stopped_) return then(errc::shutting_down, 0);
  if (gone(wanted)) return then(boost::asio::error::operation_aborted, 0);
  while (!helpers.empty() && asked < max_helpers) {
    auto via = engine_.connection_to(helpers.front());
    helpers.erase(helpers.begin());
    if (!via || engine_.is_relayed(*via)) continue;  // one relay per path
    auto c = engine_.dial_relayed(std::chrono::steady_clock::now(), *via, peer);
    // Its handshake runs through the relay; the waiters hear of it as of any dial.
    waiting_[c].push_back([this, peer, helpers, failed, then, wanted, asked](boost::system::error_code ec,
                                                                            core::connection_id c) {
      if (!ec || ec == errc::shutting_down) return then(ec, c);
      reach_by_relay(peer, helpers, failed, then, wanted, asked + 1);
    });
    pump();
    return;
  }
  then(failed, 0);
}

void node_driver::reach_by_introduction(core::node_id peer, std::vector<core::node_id> introducers,
                                        boost::system::error_code failed, ready_handler then, wanted_fn wanted,
                                        std::size_t asked) {
  if (stopped_) return then(errc::shutting_down, 0);
  if (gone(wanted)) return then(boost::asio::error::operation_aborted, 0);
  while (!introducers.empty() && asked < max_helpers) {
    core::node_id via = introducers.front();
    introducers.erase(introducers.begin());
    auto c = engine_.connection_to(via);
    if (!c || !engine_.is_datagram(*c) || !udp_) continue;  // its address would not be our socket's
    auto id = engine_.request(std::chrono::steady_clock::now(), *c, static_cast<std::uint8_t>(wire::opcode::introduce),
                              wire::introduce{peer, {}});
    requests_.emplace(id, reply_handler([this, peer, introducers = std::move(introducers), failed, then, wanted,
                                         asked](boost::system::error_code ec, core::reply r) mutable {
      if (gone(wanted)) return then(boost::asio::error::operation_aborted, 0);  // no punched dial for nobody
      // This one could not (no session with the peer, refused, silent): keep the lookup's reason.
      if (ec || r.data.size() != wire::introduce_address_size || stopped_ || !udp_)
        return reach_by_introduction(peer, std::move(introducers), failed, std::move(then), std::move(wanted), asked + 1);
      // The peer punched towards our socket as it answered: our hello gets through its NAT (or
      // is resent until it does), and the handshake checks that whoever answers holds `peer`'s key.
      // If that fails within punched_dial_timeout, the NATs do not let us through (one maps per
      // destination, say): another introducer would give the same address, so the dial's error
      // is the answer.
      auto c = engine_.dial_datagram(std::chrono::steady_clock::now(), peer, r.data,
                                     engine_.config().punched_dial_timeout);
      datagram_peers_[c] = udp_->endpoint_of(r.data);
      waiting_[c].push_back(std::move(then));
      pump();
    }));
    pump();
    return;
  }
  then(failed, 0);
}

void node_driver::on_introduction_event(core::node_engine::event& ev) {
  auto* punch = std::get_if<core::node_engine::punch_wanted>(&ev);
  if (!punch || !udp_) return;
  static const byte_vector packet = core::node_engine::punch_packet();
  udp_->send_packets(udp_->endpoint_of(punch->address), packet);
}

}  // namespace kadnet::transports
