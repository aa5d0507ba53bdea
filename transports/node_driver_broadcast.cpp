// node_driver's SPEAK, WHISPER and SHOUT as the application sees them (PROTOCOL.md 5.5–5.7).
// The engine ACKs an incoming SPEAK or WHISPER itself (a WHISPER's ACK being its receipt) and
// passes it up as an `incoming` event; this file dedups speaks, opens sealed whispers and runs
// the application's handlers. SHOUT is the DHT's (dht/broadcast.hpp): it answers them and hands
// out each new shout once, through poll_shout().
#include "kadnet/transports/node_driver.hpp"

#include <algorithm>
#include <unordered_set>

#include <boost/asio/post.hpp>

#include "kadnet/core/crypto/random_source.hpp"
#include "kadnet/core/crypto/sealed_box.hpp"
#include "kadnet/core/errors.hpp"
#include "kadnet/dht/engine_bridge.hpp"

namespace kadnet::transports {

namespace asio = boost::asio;
namespace wire = core::wire;
using core::errc;

std::uint64_t node_driver::random_sequence_start() {
  // A random start keeps a restarted node's speaks from reusing names its peers still remember.
  std::uint64_t start = 0;
  core::crypto::fill_random({}, mutable_byte_span(reinterpret_cast<std::uint8_t*>(&start), sizeof start));
  return start;
}

void node_driver::speak(byte_vector payload, std::function<void(boost::system::error_code, std::size_t)> done) {
  wire::speak s{self_.id(), next_speak_sequence_++, std::move(payload)};
  speaks_seen_.insert(s.origin, s.sequence, std::chrono::steady_clock::now());
  send_speak(s, std::nullopt, std::move(done));
}

void node_driver::send_speak(const wire::speak& s, std::optional<core::node_id> except,
                             std::function<void(boost::system::error_code, std::size_t)> done) {
  // One SPEAK per peer, over the session the engine uses for it (a peer may have dialed us
  // while we dialed it).
  std::unordered_set<core::connection_id> sessions;
  for (const auto& p : engine_.peers())
    if (p.peer != except && p.peer != s.origin)
      if (auto c = engine_.connection_to(p.peer)) sessions.insert(*c);
  struct tally {
    std::size_t pending = 0, acked = 0;
    boost::system::error_code last_error = errc::not_connected;
    std::function<void(boost::system::error_code, std::size_t)> done;
  };
  auto t = std::make_shared<tally>(tally{sessions.size(), 0, errc::not_connected, std::move(done)});
  auto finish = [t] {
    if (t->done) t->done(t->acked > 0 ? boost::system::error_code{} : t->last_error, t->acked);
  };
  if (sessions.empty()) return finish();
  auto now = std::chrono::steady_clock::now();
  for (auto c : sessions) {
    auto id = engine_.request(now, c, static_cast<std::uint8_t>(wire::opcode::speak), s);
    requests_.emplace(id, reply_handler([t, finish](boost::system::error_code ec, core::reply) {
      if (ec) t->last_error = ec;
      else ++t->acked;
      if (--t->pending == 0) finish();
    }));
  }
  pump();
}

void node_driver::on_message_event(core::node_engine::event& ev) {
  auto* in = std::get_if<core::node_engine::incoming>(&ev);
  if (!in) return;
  if (auto* s = std::get_if<wire::speak>(&in->message.body)) return on_speak(in->peer, std::move(*s));
  if (auto* w = std::get_if<wire::whisper>(&in->message.body)) return on_whisper(in->peer, std::move(*w));
}

void node_driver::on_speak(const core::node_id& from, wire::speak s) {
  // Our own speak, forwarded back to us, is a duplicate too.
  if (s.origin == self_.id() || !speaks_seen_.insert(s.origin, s.sequence, std::chrono::steady_clock::now())) {
    ++message_counters_.speaks_duplicate;
    return;
  }
  ++message_counters_.speaks_received;
  if (!speak_handler_) return;  // nobody to ask: not forwarded (PROTOCOL.md 5.6)
  asio::post(strand_, [self = shared_from_this(), from, s = std::move(s)] {
    if (self->stopped_ || !self->speak_handler_) return;
    if (!self->speak_handler_(s.origin, from, s.payload)) return;
    // Forwarded copies keep origin and sequence, so every node handles the speak once. Their
    // ACKs matter to nobody: the origin learnt of its direct peers only.
    ++self->message_counters_.speaks_forwarded;
    self->send_speak(s, from, nullptr);
  });
}

void node_driver::on_whisper(const core::node_id& from, wire::whisper w) {
  // Never forwarded, so the writer is the session's peer; a `sender` naming anyone else is a lie.
  // (The engine has ACKed it already: the receipt proves arrival, not acceptance.) Drops are
  // counted, not logged: a peer could flood the log.
  if (w.sender != from) {
    ++message_counters_.whispers_misattributed;
    return;
  }
  byte_vector plaintext;
  if (w.sealed) {
    auto opened = core::crypto::open_sealed(self_, w.payload);
    if (!opened) {
      ++message_counters_.whispers_unopened;
      return;
    }
    plaintext = std::move(*opened);
  } else {
    plaintext = std::move(w.payload);
  }
  ++message_counters_.whispers_received;
  if (!whisper_handler_) return;
  asio::post(strand_, [self = shared_from_this(), from, plaintext = std::move(plaintext), sealed = w.sealed] {
    if (!self->stopped_ && self->whisper_handler_) self->whisper_handler_(from, plaintext, sealed);
  });
}

void node_driver::whisper(core::node_id target, byte_vector payload, bool sealed, std::uint64_t call,
                          std::function<void(boost::system::error_code)> done) {
  if (target == self_.id()) return done(errc::own_id);
  if (sealed) {
    auto box = core::crypto::seal_to(target, payload);
    if (!box) return done(errc::bad_field);  // no node can hold that key
    payload = std::move(*box);
  }
  // The receipt the target must send back: the hash of exactly the bytes we send.
  auto receipt = core::node_id::hash_of(payload);
  request(target, static_cast<std::uint8_t>(wire::opcode::whisper), wire::whisper{self_.id(), target, sealed, std::move(payload)},
          call, [receipt, done = std::move(done)](boost::system::error_code ec, core::reply r) {
            if (!ec && !std::ranges::equal(r.data, receipt.bytes())) ec = errc::receipt_mismatch;
            done(ec);
          });
}

void node_driver::reach(const core::node_id& peer, ready_handler then, wanted_fn wanted) {
  if (auto c = engine_.connection_to(peer)) return then({}, *c);
  run_dht([peer](dht::dht_node& d, core::time_point now) { return d.find_node(peer, now); },
          [this, peer, then = std::move(then), wanted](dht::dht_node::operation_done& done) {
            // The lookup may have dialed the peer itself (it asks the closest nodes, and the
            // peer is the closest there is).
            if (auto c = engine_.connection_to(peer)) return then({}, *c);
            auto* found = std::get_if<dht::find_node_result>(&done.result);
            if (!found) return then(dht::error_of(done), 0);
            // Not handed out with an address it can be dialed at (a node behind a NAT never
            // is): the nodes closest to it are those it keeps sessions with; one of them may
            // introduce us (PROTOCOL.md 5.14) or relay for us (5.15).
            std::vector<core::node_id> introducers;
            std::vector<uri> addresses;
            for (const auto& contact : found->closest) {
              if (contact.id != peer) {
                introducers.push_back(contact.id);
                continue;
              }
              for (const auto& text : contact.addresses)
                if (auto where = parse_uri(text)) addresses.push_back(std::move(*where));
            }
            auto failed = found->ec ? found->ec : make_error_code(errc::peer_not_found);
            if (addresses.empty()) return reach_through_others(peer, std::move(introducers), failed, then, wanted);
            dial_any(std::move(addresses), peer,
                     [this, peer, introducers = std::move(introducers), then, wanted](boost::system::error_code ec,
                                                                                      core::connection_id c) mutable {
                       if (!ec || ec == errc::shutting_down) return then(ec, c);
                       reach_through_others(peer, std::move(introducers), ec, then, wanted);
                     },
                     wanted);
          });
}

bool node_driver::deliver_shouts() {
  bool any = false;
  while (dht_ && !stopped_) {
    auto shout = dht_->poll_shout();
    if (!shout) break;
    any = true;
    ++message_counters_.shouts_received;
    if (shout_handler_)
      asio::post(strand_, [self = shared_from_this(), shout = std::move(*shout)] {
        if (!self->stopped_ && self->shout_handler_) self->shout_handler_(shout);
      });
  }
  return any;
}

}  // namespace kadnet::transports
