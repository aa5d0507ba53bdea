#include "kadnet/core/node_engine.hpp"

#include <algorithm>
#include <exception>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/peer_address.hpp"

namespace kadnet::core {
namespace {

std::uint64_t to_ms(time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

// What the node's hellos say (PROTOCOL.md 3.1), dialing and answering alike.
crypto::hello_options hello_options_of(const node_config& c) {
  return {.dynamic_ip = c.dynamic_ip, .offer_aes_gcm = c.prefer_aes_gcm};
}

// Maps a NACK code to the error a caller sees.
boost::system::error_code nack_error(wire::nack_code code) {
  switch (code) {
    case wire::nack_code::unsupported_opcode: return errc::unsupported_opcode;
    case wire::nack_code::handler_failed: return errc::handler_failed;
    case wire::nack_code::option_refused: return errc::option_refused;
    default: return errc::nack;
  }
}

// NACK text must be valid UTF-8 of at most 1,024 bytes (PROTOCOL.md 5.2), whatever a handler's
// exception said: invalid bytes become '?', and the text is cut at a character boundary.
std::string nack_text(std::string text) {
  std::string out;
  out.reserve(std::min<std::size_t>(text.size(), 1024));
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool valid = len > 0 && i + len <= text.size();
    for (std::size_t k = 1; valid && k < len; ++k)
      valid = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    if (!valid) len = 1;
    if (out.size() + len > 1024) break;
    if (valid) out.append(text, i, len);
    else out.push_back('?');
    i += len;
  }
  return out;
}

}  // namespace

node_engine::node_engine(const identity& self, node_config config, crypto::random_source random)
    : self_(self),
      config_(std::move(config)),
      datagram_(std::make_shared<const datagram_settings>(config_.datagram)),
      random_(std::move(random)),
      responder_(self_, hello_options_of(config_), random_),
      cookies_(random_) {
  config_.validate();
  responder_context_.responder = &responder_;
  responder_context_.cookies = &cookies_;
}

static session_limits limits_of(const node_config& c) {
  session_limits l;
  l.max_message_size = c.max_message_size;
  l.compression_threshold = c.compression_threshold;
  return l;
}

connection_id node_engine::dial(time_point now, std::optional<node_id> expected,
                                byte_vector peer_address) {
  return add_connection(session::dial(self_, hello_options_of(config_), expected, limits_of(config_), random_, datagram_),
                        false, now, fixed_address(peer_address));
}

connection_id node_engine::accept(time_point now, byte_vector peer_address) {
  update_load(now);
  ++handshakes_in_window_;
  const fixed_address address(peer_address);
  return add_connection(session::accept(responder_context_, std::move(peer_address),
                                        limits_of(config_), datagram_),
                        true, now, address);
}

connection_id node_engine::dial_datagram(time_point now, std::optional<node_id> expected,
                                         byte_vector peer_address,
                                         std::optional<std::chrono::milliseconds> handshake_timeout) {
  last_now_ = std::max(last_now_, now);
  return add_connection(session::dial_datagram(self_, hello_options_of(config_), expected, limits_of(config_),
                                               datagram_, now, random_),
                        false, now, fixed_address(peer_address), handshake_timeout);
}

void node_engine::on_datagram(time_point now, const byte_vector& peer_address, byte_span datagram) {
  last_now_ = std::max(last_now_, now);
  const fixed_address address(peer_address);
  // A copy: feeding a session may add or remove connections at this address. Oldest first.
  std::vector<connection_id> here;
  for (auto [it, end] = by_address_.equal_range(address); it != end; ++it) here.push_back(it->second);
  std::sort(here.begin(), here.end());
  auto type = datagram.size() >= 2 ? static_cast<wire::packet_type>(datagram[1]) : wire::packet_type::stream_data;
  auto state_of = [&](connection_id c) -> connection_state* {
    auto it = connections_.find(c);
    return it == connections_.end() || it->second.closing ? nullptr : &it->second;
  };
  if (datagram.size() >= 2 && type == wire::packet_type::punch) {
    // It only opened the sender's NAT towards us (PROTOCOL.md 5.14): nothing to answer.
    ++(datagram.size() == wire::packet_header_size ? counters_.punches_received : counters_.datagrams_dropped);
    return;
  }
  if (datagram.size() >= 2 && !wire::is_sealed(type)) {
    // Handshake packets: the answer to our own dial first, then a responder that is mid-way
    // (a hello again after a cookie) or that already answered this very hello.
    for (auto c : here)
      if (auto* st = state_of(c); st && !st->inbound && st->sess.awaits_hello(datagram)) {
        feed_datagram(c, now, datagram);
        return;
      }
    if (type != wire::packet_type::hello) {
      ++counters_.datagrams_dropped;
      return;
    }
    for (auto c : here)
      if (auto* st = state_of(c);
          st && st->inbound && (!st->sess.is_established() || st->sess.is_repeated_hello(datagram))) {
        feed_datagram(c, now, datagram);
        return;
      }
    // A new session: a first contact, the peer dialing us as we dial it, or a restarted peer.
    if (here.size() >= config_.max_sessions_per_address) {
      ++counters_.datagrams_dropped;
      return;
    }
    update_load(now);
    ++handshakes_in_window_;
    connection_id c = add_connection(session::accept_datagram(responder_context_, peer_address, limits_of(config_),
                                                              datagram_, now),
                                     true, now, address);
    feed_datagram(c, now, datagram);
    return;
  }
  for (auto c : here)
    if (auto* st = state_of(c); st && st->sess.is_established() && feed_datagram(c, now, datagram)) return;
  // Sealed packets can overtake the responder's hello: a dial still waiting for it keeps them.
  for (auto c : here)
    if (auto* st = state_of(c); st && !st->inbound && !st->sess.is_established()) {
      st->sess.keep_early(datagram);
      return;
    }
  ++counters_.datagrams_dropped;
}

bool node_engine::feed_datagram(connection_id c, time_point now, byte_span datagram) {
  auto it = connections_.find(c);
  if (it == connections_.end() || it->second.closing) return false;
  it->second.last_active = now;
  bool taken = it->second.sess.handle_datagram(datagram, now, batching_);
  if (batching_ && taken) {
    if (holding_.empty() || holding_.back() != c) holding_.push_back(c);
    if (++held_datagrams_ >= max_held_datagrams) {
      flush_held(now);
      it = connections_.find(c);  // flushing ran handlers, which may have closed it
      if (it == connections_.end()) return taken;
    }
  }
  pump_session(c, it->second, now);
  return taken;
}

void node_engine::end_datagram_batch(time_point now) {
  flush_held(now);
  batching_ = false;
}

void node_engine::flush_held(time_point now) {
  held_datagrams_ = 0;
  std::vector<connection_id> held;
  held.swap(holding_);
  for (connection_id c : held) {
    auto it = connections_.find(c);
    if (it == connections_.end() || it->second.closing) continue;
    it->second.sess.flush_output();  // only queues packets and events: runs no handler
    pump_session(c, it->second, now);
  }
}

void node_engine::reschedule(connection_id c, connection_state& st) {
  auto next = st.closing ? std::nullopt : st.sess.next_deadline();
  // A deadline that moved later (or went away) keeps the earlier wake-up already filed: waking a
  // session early is harmless, as it acts only on what is due and then files its real deadline.
  // Moving the entry instead cost a tree erase and insert on nearly every acknowledgement.
  if (!next || (st.timer && *st.timer <= *next)) return;
  st.timer = next;  // the earlier entry, if any, is stale from now on
  timers_.file(*next, c);
  if (timers_.size() > 2 * connections_.size() + 64)
    timers_.compact([this](connection_id k, time_point at) { return timer_is_current(k, at); });
}

bool node_engine::timer_is_current(connection_id c, time_point at) const {
  auto it = connections_.find(c);
  return it != connections_.end() && it->second.timer == at;
}

byte_span node_engine::transport_address(connection_id c) const {
  auto it = connections_.find(c);
  return it == connections_.end() ? byte_span() : it->second.address.bytes();
}

bool node_engine::is_datagram(connection_id c) const {
  auto it = connections_.find(c);
  return it != connections_.end() && it->second.sess.transport_framing() == framing::datagram;
}

std::vector<connection_id> node_engine::datagram_connections() const {
  std::vector<connection_id> out;
  for (const auto& [address, c] : by_address_) out.push_back(c);
  return out;
}

connection_id node_engine::add_connection(session s, bool inbound, time_point now,
                                          fixed_address peer_address,
                                          std::optional<std::chrono::milliseconds> handshake_timeout) {
  connection_id c = next_connection_++;
  auto [it, _] = connections_.emplace(c, connection_state(std::move(s), inbound));
  it->second.address = peer_address;
  if (it->second.sess.transport_framing() == framing::datagram)
    by_address_.emplace(peer_address, c);
  it->second.handshake_deadline = now + handshake_timeout.value_or(config_.handshake_timeout);
  handshake_deadlines_.emplace(it->second.handshake_deadline, c);
  ++counters_.sessions_opened;
  pump_session(c, it->second, now);
  return c;
}

void node_engine::update_load(time_point now) {
  if (now - load_window_start_ >= std::chrono::seconds(1)) {
    load_window_start_ = now;
    handshakes_in_window_ = 0;
  }
  responder_context_.under_load = handshakes_in_window_ > config_.cookie_threshold_per_second;
}

void node_engine::on_bytes(connection_id c, time_point now, byte_span bytes) {
  last_now_ = std::max(last_now_, now);
  auto it = connections_.find(c);
  if (it == connections_.end() || it->second.closing) return;
  if (!it->second.sess.is_established()) update_load(now);
  it->second.last_active = now;
  it->second.sess.advance_clock(now);  // for its byte streams, if it carries any
  it->second.sess.handle_bytes(bytes, to_ms(now));
  pump_session(c, it->second, now);
}

// Moves what a session produced into engine events and transmissions.
void node_engine::pump_session(connection_id c, connection_state& first, time_point now) {
  // Handlers run below (plugins) may close connections: look this one up again each time
  // rather than trust a reference across them.
  for (connection_state* current = &first;;) {
    connection_state& st = *current;
    auto ev = st.sess.poll_event();
    if (!ev) break;
    if (std::holds_alternative<session::established>(*ev)) {
      on_established(c, st, now);
    } else if (auto* m = std::get_if<session::message>(&*ev)) {
      on_message(c, st, std::move(m->bytes));
    } else if (auto* u = std::get_if<session::unreliable_message>(&*ev)) {
      on_unreliable(c, st, u->bytes);
    } else if (auto* se = std::get_if<session::stream_event>(&*ev)) {
      events_.push_back(stream_event{c, st.sess.peer()->peer, se->stream, se->kind, se->ec});
    } else if (auto* f = std::get_if<session::failed>(&*ev)) {
      if (f->ec == errc::version_mismatch) ++counters_.version_refusals;
      if (!st.sess.is_established() && !st.established_reported) ++counters_.handshakes_failed;
      cut_off(c, f->ec, std::move(f->text));
    }
    auto it = connections_.find(c);
    if (it == connections_.end() || it->second.closing) return;
    current = &it->second;
  }
  auto it = connections_.find(c);
  if (it == connections_.end()) return;
  if (it->second.sess.has_transmit()) mark_dirty(c);
  reschedule(c, it->second);
}

void node_engine::on_established(connection_id c, connection_state& st, time_point now) {
  const auto& peer = *st.sess.peer();
  st.established_reported = true;
  handshake_deadlines_.erase({st.handshake_deadline, c});
  st.last_active = now;
  if (!st.inbound) enforce_outbound_limit(c);
  by_peer_[peer.peer] = c;
  events_.push_back(connected{c, peer.peer, st.inbound, peer.peer_dynamic_ip});
  // Offer every method we accept, then name the one we prefer (PROTOCOL.md 6).
  auto offer = [&](wire::connection_option option, compression::codec_id method) {
    start_request(now, c, static_cast<std::uint8_t>(wire::opcode::set_connection_opt),
                  wire::set_connection_opt{static_cast<std::uint8_t>(option), static_cast<std::uint8_t>(method)},
                  std::nullopt, true);
  };
  for (auto method : config_.compression) offer(wire::connection_option::compression_enabled, method);
  if (!config_.compression.empty())
    offer(wire::connection_option::preferred_compression, config_.compression.front());
  if (!config_.announce_addresses.empty() || config_.ask_observed_address)
    start_request(now, c, static_cast<std::uint8_t>(wire::opcode::announce),
                  wire::announce{config_.announce_addresses}, std::nullopt, true);
}

void node_engine::on_message(connection_id c, connection_state& st, byte_vector bytes) {
  wire::message m;
  wire::decode_limits limits;
  limits.max_payload = config_.max_message_size;
  if (auto ec = wire::decode(bytes, m, limits)) {
    ++counters_.malformed_messages;
    std::uint8_t opcode = 0;
    std::uint32_t id = 0;
    if (wire::decode_header(bytes, opcode, id)) return;  // not even a header: drop
    if (opcode == static_cast<std::uint8_t>(wire::opcode::ack) ||
        opcode == static_cast<std::uint8_t>(wire::opcode::nack))
      return;  // never answer a reply
    if (ec == errc::unknown_opcode)
      return send_nack(c, opcode, id, wire::nack_code::unsupported_opcode, "unsupported opcode");
    return send_nack(c, opcode, id, wire::nack_code::bad_request, "malformed request: " + ec.message());
  }
  if (m.opcode == static_cast<std::uint8_t>(wire::opcode::ack) ||
      m.opcode == static_cast<std::uint8_t>(wire::opcode::nack))
    return on_reply(c, m);
  on_request(c, st, std::move(m));
}

void node_engine::on_unreliable(connection_id c, connection_state& st, const byte_vector& bytes) {
  wire::message m;
  wire::decode_limits limits;
  limits.max_payload = config_.max_message_size;
  const auto* call = wire::decode(bytes, m, limits) ? nullptr : std::get_if<wire::plugin_call>(&m.body);
  if (!call) {
    ++counters_.malformed_messages;  // only plugin messages travel unreliably; nothing to answer
    return;
  }
  events_.push_back(datagram_in{c, st.sess.peer()->peer, m.opcode, call->payload});
}

boost::system::error_code node_engine::send_unreliable(connection_id c, std::uint8_t opcode, byte_span payload) {
  if (opcode < wire::first_plugin_opcode) return errc::bad_field;
  auto it = connections_.find(c);
  if (it == connections_.end() || it->second.closing) return errc::not_connected;
  scratch_.clear();
  wire::encode(wire::message{opcode, 0, wire::plugin_call{byte_vector(payload.begin(), payload.end())}}, scratch_);
  auto ec = it->second.sess.send_unreliable(scratch_);
  if (!ec) mark_dirty(c);
  return ec;
}

void node_engine::on_reply(connection_id c, const wire::message& m) {
  auto entry = rpcs_.take(c, m.id);
  if (!entry) {
    ++counters_.replies_unmatched;  // late (after a timeout) or forged
    return;
  }
  reply r;
  if (const auto* a = std::get_if<wire::ack>(&m.body)) {
    r.data = a->data;
  } else {
    const auto& n = std::get<wire::nack>(m.body);
    r.ec = nack_error(n.code);
    r.code = n.code;
    r.text = n.text;
    r.data = n.data;
  }
  if (entry->internal && entry->opcode == static_cast<std::uint8_t>(wire::opcode::announce)) {
    // The peer's answer to our ANNOUNCE: how it sees us (STUN-like; seed 002).
    // Kept only when it has the form every node answers with (address_text): it is handed to
    // the application as our public address.
    if (std::string seen(r.data.begin(), r.data.end()); !r.ec && r.data.size() <= 64 && is_address_text(seen))
      observed_self_ = std::move(seen);
    return;
  }
  if (entry->internal && finish_passed_on(*entry, r)) return;
  if (entry->internal) {
    // Our SET_CONNECTION_OPT: an ACK of option 0 lets us send with that method.
    auto it = connections_.find(c);
    if (it != connections_.end() && !r.ec && r.data.size() == 2 &&
        r.data[0] == static_cast<std::uint8_t>(wire::connection_option::compression_enabled) &&
        r.data[1] < compression::codec_count)
      it->second.peer_acked.set(r.data[1]);
    return;
  }
  events_.push_back(request_done{entry->request, std::move(r)});
}

void node_engine::on_request(connection_id c, connection_state& st, wire::message m) {
  ++counters_.requests_received;
  using wire::opcode;
  switch (static_cast<opcode>(m.opcode)) {
    case opcode::ping:
      return send_reply(c, m.id, wire::ack{m.opcode, {}});
    case opcode::set_connection_opt: {
      const auto& opt = std::get<wire::set_connection_opt>(m.body);
      bool enabled = false;
      for (auto method : config_.compression)
        enabled |= static_cast<std::uint8_t>(method) == opt.setting;
      bool known_option =
          opt.option <= static_cast<std::uint8_t>(wire::connection_option::preferred_compression);
      if (!enabled || !known_option)
        return send_nack(c, m.opcode, m.id, wire::nack_code::option_refused,
                         "option " + std::to_string(opt.option) + " setting " +
                             std::to_string(opt.setting) + " not supported",
                         {opt.option, opt.setting});
      if (opt.option == static_cast<std::uint8_t>(wire::connection_option::compression_enabled))
        st.sess.accepted_codecs().set(opt.setting);
      else
        st.peer_prefers = static_cast<compression::codec_id>(opt.setting);
      return send_reply(c, m.id, wire::ack{m.opcode, {opt.option, opt.setting}});
    }
    case opcode::speak:
      send_reply(c, m.id, wire::ack{m.opcode, {}});
      events_.push_back(incoming{c, st.sess.peer()->peer, std::move(m)});
      return;
    case opcode::whisper: {
      const auto& w = std::get<wire::whisper>(m.body);
      if (w.target != self_.id())
        return send_nack(c, m.opcode, m.id, wire::nack_code::bad_request, "whisper for another node");
      // The receipt: BLAKE2b-256 of the payload as it arrived (PROTOCOL.md 5.7).
      node_id receipt = node_id::hash_of(w.payload);
      send_reply(c, m.id, wire::ack{m.opcode, byte_vector(receipt.bytes().begin(), receipt.bytes().end())});
      events_.push_back(incoming{c, st.sess.peer()->peer, std::move(m)});
      return;
    }
    case opcode::announce:
      return on_announce(c, st, m);
    case opcode::introduce:
      return on_introduce(c, st, m);
    case opcode::relay:
      return on_relay(c, st, m);
    case opcode::shout:  // broadcast along the routing table: the DHT's job
    case opcode::find_node:
    case opcode::find_value:
    case opcode::store:
      if (config_.serve_dht) {
        events_.push_back(incoming{c, st.sess.peer()->peer, std::move(m)});
        return;
      }
      return send_nack(c, m.opcode, m.id, wire::nack_code::unsupported_opcode,
                       "unsupported opcode: this node runs no DHT");
    default:
      break;
  }
  dispatch_plugin(c, st, m);
}

// Keeps the announced URIs whose host is the address the peer's packets come from (a wildcard
// host stands for it); seed 001: an announcement must match the sender's real source address.
void node_engine::on_announce(connection_id c, connection_state& st, const wire::message& m) {
  const std::string observed = address_text(st.address.bytes());  // "" when the transport gave none
  const auto& announced_now = std::get<wire::announce>(m.body).addresses;
  // No address: the peer listens nowhere and only asks how it is seen.
  if (announced_now.empty()) return send_reply(c, m.id, wire::ack{m.opcode, byte_vector(observed.begin(), observed.end())});
  std::string ip = host_of_address_text(observed);
  std::vector<std::string> kept;
  for (const auto& a : announced_now) {
    auto checked = checked_announcement(a, ip);
    if (checked) kept.push_back(std::move(*checked));
  }
  if (kept.empty())
    return send_nack(c, m.opcode, m.id, wire::nack_code::bad_request,
                     "announced addresses do not match your source address " + observed);
  st.announced = kept;
  events_.push_back(announced{c, st.sess.peer()->peer, std::move(kept)});
  send_reply(c, m.id, wire::ack{m.opcode, byte_vector(observed.begin(), observed.end())});
}

void node_engine::dispatch_plugin(connection_id c, connection_state& st, const wire::message& m) {
  const plugin_handler* found = plugins_.find(m.opcode);
  if (!found) return send_nack(c, m.opcode, m.id, wire::nack_code::unsupported_opcode, "unsupported opcode");
  const node_id peer = st.sess.peer()->peer;
  if (auto waiting = handlers_waiting_.find(peer);
      waiting != handlers_waiting_.end() && waiting->second >= config_.max_inbound_requests_per_peer)
    return send_nack(c, m.opcode, m.id, wire::nack_code::rate_limited, "too many requests in flight");
  ++st.inbound_pending;
  ++handlers_waiting_[peer];
  plugin_handler handler = *found;  // a copy: the handler may replace itself
  if (!st.alive) st.alive = std::make_shared<bool>(true);
  std::weak_ptr<bool> alive = st.alive;
  auto answered = std::make_shared<bool>(false);
  std::uint8_t op = m.opcode;
  std::uint32_t id = m.id;
  auto wait = handler_deadlines_.emplace(last_now_ + config_.handler_timeout, handler_wait{c, peer, op, id, answered});
  plugin_reply reply = [this, c, op, id, alive, answered, wait](plugin_result result) {
    // Answered twice, or too late (expire_handler_waits answered and erased it), or the peer is gone.
    if (*answered || alive.expired()) return;
    *answered = true;
    handler_wait_over(wait->second);
    handler_deadlines_.erase(wait);
    auto it = connections_.find(c);
    if (it == connections_.end()) return;
    --it->second.inbound_pending;
    if (auto* data = std::get_if<byte_vector>(&result))
      return send_reply(c, id, wire::ack{op, std::move(*data)});
    auto& err = std::get<plugin_error>(result);
    send_nack(c, op, id, err.code, std::move(err.text));
  };
  try {
    handler(peer, std::get<wire::plugin_call>(m.body).payload, reply);
  } catch (const std::exception& e) {
    // The exception's text goes to the caller: handlers should not put secrets in it.
    reply(plugin_error{wire::nack_code::handler_failed, e.what()});
  } catch (...) {
    reply(plugin_error{wire::nack_code::handler_failed, ""});
  }
}

void node_engine::send_reply(connection_id c, std::uint32_t id, wire::message_body body) {
  auto it = connections_.find(c);
  if (it == connections_.end() || it->second.closing) return;
  std::uint8_t request_opcode = 0;
  if (const auto* a = std::get_if<wire::ack>(&body)) request_opcode = a->request_opcode;
  bool is_ack = std::holds_alternative<wire::ack>(body);
  if (send_message(c, it->second, wire::make_message(id, std::move(body))) && is_ack) {
    // A reply over the size limit becomes a NACK, so the caller learns why at once.
    send_message(c, it->second,
                 wire::make_message(id, wire::nack{request_opcode, wire::nack_code::too_large,
                                                   "reply exceeds the maximum message size", {}}));
  }
}

void node_engine::respond(connection_id c, std::uint32_t message_id, wire::message_body body) {
  send_reply(c, message_id, std::move(body));
}

void node_engine::send_nack(connection_id c, std::uint8_t opcode, std::uint32_t id,
                            wire::nack_code code, std::string text, byte_vector data) {
  ++counters_.nacks_sent;
  send_reply(c, id, wire::nack{opcode, code, nack_text(std::move(text)), std::move(data)});
}

boost::system::error_code node_engine::send_message(connection_id c, connection_state& st,
                                                    const wire::message& m) {
  scratch_.clear();
  wire::encode(m, scratch_);
  st.sess.advance_clock(last_now_);
  auto ec = st.sess.send(scratch_, send_method(st));
  if (!ec) mark_dirty(c);
  if (ec == errc::peer_cut_off) cut_off(c, ec, "the peer does not acknowledge what it is sent");
  reschedule(c, st);
  return ec;
}

std::optional<compression::codec_id> node_engine::send_method(const connection_state& st) const {
  if (st.peer_prefers && st.peer_acked.test(static_cast<std::size_t>(*st.peer_prefers)))
    return st.peer_prefers;
  for (auto method : config_.compression)
    if (st.peer_acked.test(static_cast<std::size_t>(method))) return method;
  return std::nullopt;
}

request_id node_engine::request(time_point now, connection_id c, std::uint8_t opcode,
                                wire::message_body body,
                                std::optional<std::chrono::milliseconds> timeout) {
  return start_request(now, c, opcode, std::move(body), timeout, false);
}

request_id node_engine::start_request(time_point now, connection_id c, std::uint8_t opcode,
                                      wire::message_body body,
                                      std::optional<std::chrono::milliseconds> timeout,
                                      bool internal) {
  last_now_ = std::max(last_now_, now);
  request_id r = next_request_++;
  auto it = connections_.find(c);
  if (it == connections_.end() || it->second.closing || !it->second.sess.is_established()) {
    events_.push_back(request_done{r, reply{errc::not_connected, {}, {}, {}}});
    return r;
  }
  it->second.last_active = now;
  std::uint32_t id = rpcs_.add(r, c, opcode, internal, now + timeout.value_or(config_.request_timeout));
  wire::message m{opcode, id, std::move(body)};
  ++counters_.requests_sent;
  if (auto ec = send_message(c, it->second, m)) {
    // Too large to send: fail now rather than at the deadline.
    rpcs_.take(c, id);
    if (!internal) events_.push_back(request_done{r, reply{ec, {}, {}, {}}});
  }
  return r;
}

void node_engine::enforce_outbound_limit(connection_id keep) {
  // Stream and datagram sessions have limits of their own: a TCP session costs a descriptor,
  // a UDP one only memory.
  const framing kind = connections_.at(keep).sess.transport_framing();
  const std::size_t limit = kind == framing::datagram ? config_.max_outbound_datagram_sessions
                                                      : config_.max_outbound_sessions;
  if (connections_.size() <= limit) return;  // cannot be over it: no need to count
  std::size_t outbound = 0;
  for (const auto& [c, st] : connections_)
    if (!st.inbound && !st.closing && st.sess.is_established() && st.sess.transport_framing() == kind) ++outbound;
  while (outbound > limit) {
    // The least recently active dialed session with no request of ours in flight.
    connection_id victim = 0;
    time_point oldest = time_point::max();
    for (const auto& [c, st] : connections_) {
      if (c == keep || st.inbound || st.closing || !st.sess.is_established()) continue;
      if (st.sess.transport_framing() != kind) continue;
      if (rpcs_.in_flight(c) != 0 || st.inbound_pending != 0) continue;
      // It carries relayed sessions of ours. Circuits a peer opened (to us, or relayed by us)
      // cannot pin it: closing it ends them, and their ends may open them again.
      if (!circuits_.empty() && carries_own_circuit(c)) continue;
      // Closing it would break streams the application opened (a peer's cannot pin it).
      if (st.sess.streams_opened_here() != 0) continue;
      if (st.last_active < oldest) oldest = st.last_active, victim = c;
    }
    if (victim == 0) return;  // all busy: allow more for now
    cut_off(victim, errc::connection_closed, {});
    --outbound;
  }
}

stream_mux* node_engine::streams_of(connection_id c) {
  auto it = connections_.find(c);
  if (it == connections_.end() || it->second.closing) return nullptr;
  return it->second.sess.streams();
}

void node_engine::flush_streams(connection_id c) {
  auto it = connections_.find(c);
  if (it == connections_.end()) return;
  it->second.sess.flush();
  // Events the streams raised (e.g. `closed` after a reset) reach the driver like any other.
  pump_session(c, it->second, last_now_);
}

std::optional<stream_id> node_engine::open_stream(connection_id c, boost::system::error_code& ec) {
  auto it = connections_.find(c);
  if (it == connections_.end() || it->second.closing || !it->second.sess.is_established()) {
    ec = errc::not_connected;
    return std::nullopt;
  }
  auto* mux = it->second.sess.ensure_streams();  // established: never null
  // The engine's latest time: a stream's channel measures its silences from it.
  auto id = mux->open(last_now_);
  if (!id) ec = errc::too_many;
  else flush_streams(c);  // the opening unit goes at once: the peer's accept need not wait for bytes
  return id;
}

void node_engine::accept_stream(connection_id c, stream_id s) {
  if (auto* mux = streams_of(c)) {
    mux->accept(s);
    flush_streams(c);
  }
}

std::size_t node_engine::write_stream(connection_id c, stream_id s, byte_span bytes) {
  auto* mux = streams_of(c);
  if (!mux) return 0;
  std::size_t n = mux->write(s, bytes);
  flush_streams(c);
  return n;
}

std::size_t node_engine::read_stream(connection_id c, stream_id s, mutable_byte_span out) {
  auto* mux = streams_of(c);
  if (!mux) return 0;
  std::size_t n = mux->read(s, out);
  flush_streams(c);  // the window may have opened
  return n;
}

bool node_engine::stream_at_end(connection_id c, stream_id s) {
  auto* mux = streams_of(c);
  return !mux || mux->at_end(s);
}

void node_engine::shutdown_stream(connection_id c, stream_id s) {
  if (auto* mux = streams_of(c)) {
    mux->shutdown(s);
    flush_streams(c);
  }
}

void node_engine::close_stream(connection_id c, stream_id s) {
  if (auto* mux = streams_of(c)) {
    mux->close(s);
    flush_streams(c);
  }
}

void node_engine::reset_stream(connection_id c, stream_id s, stream_mux::reset_code code) {
  if (auto* mux = streams_of(c)) {
    mux->reset(s, code);
    flush_streams(c);
  }
}

void node_engine::cut_off(connection_id c, boost::system::error_code ec, std::string why) {
  auto it = connections_.find(c);
  if (it == connections_.end() || it->second.closing) return;
  it->second.sess.say_farewell();
  it->second.closing = true;
  reschedule(c, it->second);
  it->second.alive.reset();
  if (ec == errc::peer_cut_off || ec == errc::too_large) ++counters_.peers_cut_off;
  mark_dirty(c);
  fail_requests(c, errc::connection_closed);
  if (!circuits_.empty()) drop_circuits_of(c);  // circuits that ran on this session
  it = connections_.find(c);  // ending circuits may have changed the table
  if (it == connections_.end()) return;
  const auto& peer = it->second.sess.peer();
  if (peer) rebind_peer(peer->peer, c);
  events_.push_back(disconnected{c, peer ? std::optional(peer->peer) : std::nullopt, ec, std::move(why)});
}

void node_engine::on_transport_closed(connection_id c, boost::system::error_code ec) {
  auto it = connections_.find(c);
  if (it == connections_.end()) return;
  if (!it->second.closing) {
    if (!it->second.sess.is_established()) ++counters_.handshakes_failed;
    cut_off(c, ec ? ec : make_error_code(errc::connection_closed), {});
  }
  const auto& peer = it->second.sess.peer();
  if (peer) rebind_peer(peer->peer, c);
  counters_.sessions += it->second.sess.counters();
  dirty_.erase(c);
  handshake_deadlines_.erase({it->second.handshake_deadline, c});
  if (it->second.sess.transport_framing() == framing::datagram) {
    for (auto [a, end] = by_address_.equal_range(it->second.address); a != end; ++a)
      if (a->second == c) {
        by_address_.erase(a);
        break;
      }
  }
  connections_.erase(it);
}

bool node_engine::finish_passed_on(const rpc_tracker::entry& e, const reply& result) {
  switch (static_cast<wire::opcode>(e.opcode)) {
    case wire::opcode::introduce: finish_introduction(e.request, result); return true;
    case wire::opcode::relay: finish_relay_request(e.request, result); return true;
    default: return false;
  }
}

void node_engine::nack_passed_on(connection_id asker, std::uint8_t opcode, std::uint32_t message_id,
                                 const reply& result) {
  // A NACK is the far node's answer; silence or a lost session is "not found" from here.
  const bool refused = result.ec != errc::timeout && result.ec != errc::not_connected &&
                       result.ec != errc::connection_closed;
  send_nack(asker, opcode, message_id, refused ? result.code : wire::nack_code::not_found,
            refused ? "the peer refused: " + result.text : "the peer did not answer: " + result.ec.message());
}

void node_engine::fail_requests(connection_id c, boost::system::error_code ec) {
  for (const auto& e : rpcs_.take_connection(c)) {
    if (!e.internal) events_.push_back(request_done{e.request, reply{ec, {}, {}, {}}});
    else finish_passed_on(e, reply{ec, {}, {}, {}});
  }
}

void node_engine::handle_timeout(time_point now) {
  last_now_ = std::max(last_now_, now);
  for (const auto& e : rpcs_.take_expired(now)) {
    if (e.internal) {
      finish_passed_on(e, reply{errc::timeout, {}, {}, {}});
      continue;
    }
    ++counters_.timeouts;
    events_.push_back(request_done{e.request, reply{errc::timeout, {}, {}, {}}});
  }
  std::vector<connection_id> stalled;
  while (!handshake_deadlines_.empty() && handshake_deadlines_.begin()->first <= now) {
    connection_id c = handshake_deadlines_.begin()->second;
    handshake_deadlines_.erase(handshake_deadlines_.begin());
    auto it = connections_.find(c);
    if (it != connections_.end() && !it->second.closing && !it->second.sess.is_established()) stalled.push_back(c);
  }
  for (auto c : stalled) {
    ++counters_.handshakes_failed;
    cut_off(c, errc::timeout, "handshake timed out");
  }
  expire_handler_waits(now);
  // Only what is due now: a session may file a new deadline that is already due.
  auto due = timers_.take_due(now, [this](connection_id c, time_point at) {
    if (!timer_is_current(c, at)) return false;
    connections_.at(c).timer.reset();  // taken: nothing is filed for c until it files again
    return true;
  });
  for (auto c : due) {
    auto it = connections_.find(c);
    if (it == connections_.end()) continue;
    it->second.sess.handle_timeout(now);
    pump_session(c, it->second, now);
  }
}

void node_engine::handler_wait_over(const handler_wait& w) {
  auto it = handlers_waiting_.find(w.peer);
  if (it != handlers_waiting_.end() && --it->second == 0) handlers_waiting_.erase(it);
}

void node_engine::expire_handler_waits(time_point now) {
  while (!handler_deadlines_.empty() && handler_deadlines_.begin()->first <= now) {
    handler_wait w = std::move(handler_deadlines_.begin()->second);
    handler_deadlines_.erase(handler_deadlines_.begin());
    handler_wait_over(w);
    if (*w.answered) continue;
    *w.answered = true;  // the handler's reply, should it still come, is dropped
    auto it = connections_.find(w.connection);
    if (it == connections_.end()) continue;
    --it->second.inbound_pending;
    send_nack(w.connection, w.opcode, w.message_id, wire::nack_code::handler_failed,
              "the handler did not reply within " + std::to_string(config_.handler_timeout.count()) + " ms");
  }
}

std::optional<time_point> node_engine::next_deadline() const {
  std::optional<time_point> next = rpcs_.next_deadline();
  if (!handler_deadlines_.empty() && (!next || handler_deadlines_.begin()->first < *next))
    next = handler_deadlines_.begin()->first;
  if (!handshake_deadlines_.empty() && (!next || handshake_deadlines_.begin()->first < *next))
    next = handshake_deadlines_.begin()->first;
  if (auto t = timers_.earliest(); t && (!next || *t < *next)) next = t;
  return next;
}

std::vector<connection_id> node_engine::take_dirty() {
  if (!relayed_.empty()) {
    // Relayed sessions' bytes go out in RELAY messages on other sessions, which become dirty.
    // Flushing may close one, which makes it dirty again: until none is left.
    for (bool again = true; again;) {
      std::vector<connection_id> relayed;
      for (auto c : dirty_)
        if (relayed_.contains(c)) relayed.push_back(c);
      for (auto c : relayed) {
        dirty_.erase(c);
        flush_relayed(c);
      }
      again = !relayed.empty();
    }
  }
  std::vector<connection_id> out(dirty_.begin(), dirty_.end());
  dirty_.clear();
  return out;
}

byte_vector node_engine::take_transmit(connection_id c) {
  auto it = connections_.find(c);
  if (it == connections_.end()) return {};
  return it->second.sess.take_transmit();
}

bool node_engine::wants_close(connection_id c) const {
  auto it = connections_.find(c);
  return it != connections_.end() && it->second.closing;
}

std::optional<node_engine::event> node_engine::poll_event() {
  if (events_.empty()) return std::nullopt;
  event e = std::move(events_.front());
  events_.pop_front();
  return e;
}

void node_engine::rebind_peer(const node_id& peer, connection_id gone) {
  auto p = by_peer_.find(peer);
  if (p == by_peer_.end() || p->second != gone) return;
  // Both ends may have dialed at once: another session to the same peer can take over.
  for (const auto& [c, st] : connections_) {
    if (c != gone && !st.closing && st.sess.is_established() && st.sess.peer()->peer == peer) {
      p->second = c;
      return;
    }
  }
  by_peer_.erase(p);
}

std::optional<node_id> node_engine::peer_of(connection_id c) const {
  auto it = connections_.find(c);
  if (it == connections_.end() || !it->second.sess.is_established()) return std::nullopt;
  return it->second.sess.peer()->peer;
}

std::optional<connection_id> node_engine::connection_to(const node_id& peer) const {
  auto it = by_peer_.find(peer);
  if (it == by_peer_.end()) return std::nullopt;
  return it->second;
}

std::vector<node_engine::peer_info> node_engine::peers() const {
  std::vector<peer_info> out;
  for (const auto& [c, st] : connections_) {
    if (st.closing || !st.sess.is_established()) continue;
    out.push_back(peer_info{c, st.sess.peer()->peer, st.inbound, send_method(st), st.announced,
                            st.sess.counters(), address_text(st.address.bytes()), relayed_.contains(c)});
  }
  return out;
}

engine_counters node_engine::stats() const {
  engine_counters out = counters_;
  for (const auto& [c, st] : connections_) out.sessions += st.sess.counters();
  return out;
}

}  // namespace kadnet::core
