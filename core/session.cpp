#include "kadnet/core/session.hpp"

#include <algorithm>
#include <array>

#include <sodium.h>

#include "kadnet/core/errors.hpp"

namespace kadnet::core {
namespace {
constexpr std::uint8_t fragment_fin = 0x01;
constexpr int max_hellos = 3;  // the first, and up to two more after cookie challenges
// Largest fragment that fits one stream_data packet: payload limit less the seal and flags.
constexpr std::size_t max_fragment =
    wire::max_stream_payload - (crypto::packet_sealer::overhead - wire::packet_header_size) - 1;
// On a datagram path a fragment is one channel unit: a datagram less the seal, the channel's
// largest header and the flags.
constexpr std::size_t max_datagram_fragment =
    wire::max_datagram_size - crypto::packet_sealer::overhead - reliable_channel::max_header - 1;
// The first byte of a sealed unreliable_data packet: what it carries (PROTOCOL.md 9.4).
constexpr std::uint8_t farewell = 0x01;
constexpr std::uint8_t unreliable_message_tag = 0x02;

std::uint64_t to_ms(time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

// The plaintext of one sealed datagram, opened on the stack: it is used up within the call, so
// no session keeps a buffer for it. A conforming datagram always fits (PROTOCOL.md 9: at most
// 1,200 bytes); a larger one fails to open and is dropped, as the protocol says.
struct datagram_plaintext {
  std::array<std::uint8_t, wire::max_datagram_size> bytes;
  std::size_t size = 0;
  byte_span view() const { return byte_span(bytes.data(), size); }
};
}  // namespace

session::session(session_limits limits, std::shared_ptr<const datagram_settings> settings)
    : limits_(limits), handshake_(std::make_unique<handshake_state>()) {
  static const auto defaults = std::make_shared<const datagram_settings>();
  settings_ = settings ? std::move(settings) : defaults;
}

session session::dial(const identity& self, const crypto::hello_options& options, std::optional<node_id> expected,
                      session_limits limits, crypto::random_source random,
                      std::shared_ptr<const datagram_settings> settings) {
  session s(limits, std::move(settings));
  s.dialer_ = true;
  s.handshake_->initiator = std::make_unique<crypto::initiator_handshake>(self, options, expected, std::move(random));
  byte_vector hello = s.handshake_->initiator->first_packet();
  s.transmit_.insert(s.transmit_.end(), hello.begin(), hello.end());
  return s;
}

session session::accept(responder_context& context, byte_vector peer_address,
                        session_limits limits, std::shared_ptr<const datagram_settings> settings) {
  session s(limits, std::move(settings));
  s.handshake_->responder = &context;
  s.handshake_->peer_address = std::move(peer_address);
  return s;
}

session session::dial_datagram(const identity& self, const crypto::hello_options& options, std::optional<node_id> expected,
                               session_limits limits, std::shared_ptr<const datagram_settings> settings,
                               time_point now, crypto::random_source random) {
  session s = dial(self, options, expected, limits, std::move(random), std::move(settings));
  s.framing_ = framing::datagram;
  s.now_ = now;
  auto& h = *s.handshake_;
  h.last_hello_out = s.transmit_;
  h.hello_resend_wait = s.settings_->first_hello_resend;
  h.hello_resend_at = now + h.hello_resend_wait;
  return s;
}

session session::accept_datagram(responder_context& context, byte_vector peer_address,
                                 session_limits limits, std::shared_ptr<const datagram_settings> settings,
                                 time_point now) {
  session s = accept(context, std::move(peer_address), limits, std::move(settings));
  s.framing_ = framing::datagram;
  s.now_ = now;
  return s;
}

session::hello_digest session::digest_of(byte_span hello) {
  hello_digest d;
  crypto_generichash(d.data(), d.size(), hello.data(), hello.size(), nullptr, 0);
  return d;
}

bool session::handle_datagram(byte_span datagram, time_point now, bool hold_output) {
  if (state_ == state::failed) return false;
  now_ = std::max(now_, now);
  counters_.bytes_in += datagram.size();
  wire::packet_view p;
  if (wire::parse_packet(datagram, p)) {
    ++counters_.malformed;  // a datagram is not a stream: one bad one does not end the session
    return false;
  }
  ++counters_.packets_in;
  if (state_ == state::handshaking) {
    // Sealed packets that overtook the responder's hello are lost; the channel resends them.
    if (wire::is_sealed(p.type)) return false;
    if (!dialer_ && p.type == wire::packet_type::hello) answered_hello_ = digest_of(datagram);
    on_handshake_packet(p, to_ms(now_));
  } else if (!wire::is_sealed(p.type)) {
    // A repeated hello means our answer was lost: answer again, unless the initiator has since
    // sealed a packet (it had the answer then, and this hello is a late duplicate or a replay).
    // Other plaintext is stale.
    if (!is_repeated_hello(datagram)) ++counters_.malformed;
    else if (handshake_) transmit_.insert(transmit_.end(), handshake_->last_hello_out.begin(), handshake_->last_hello_out.end());
  } else {
    // Forged datagrams cost an attacker nothing on UDP: they are dropped (the caller counts
    // them), never held against the session.
    datagram_plaintext plaintext;
    if (auto ec = opener_->open(p, plaintext.bytes, plaintext.size)) {
      if (ec == errc::replayed) ++counters_.replays;
      return false;
    }
    handshake_.reset();  // a responder's answer evidently arrived: it is not sent again
    on_channel_packet(p, plaintext.view());
  }
  if (state_ == state::established) hold_output ? deliver_input() : pump_channel();
  return true;
}

void session::flush_output() {
  if (framing_ == framing::datagram && state_ == state::established) pump_channel();
}

bool session::is_repeated_hello(byte_span datagram) const {
  return framing_ == framing::datagram && !dialer_ && state_ == state::established && answered_hello_ &&
         *answered_hello_ == digest_of(datagram);
}

void session::keep_early(byte_span datagram) {
  constexpr std::size_t max_early = 16;
  if (initiator() && state_ == state::handshaking && handshake_->early.size() < max_early)
    handshake_->early.emplace_back(datagram.begin(), datagram.end());
}

bool session::awaits_hello(byte_span datagram) const {
  wire::packet_view p;
  return initiator() && state_ == state::handshaking && !wire::parse_packet(datagram, p) &&
         initiator()->answers_us(p);
}

void session::handle_timeout(time_point now) {
  if (state_ == state::failed || (framing_ != framing::datagram && !streams_)) return;
  now_ = std::max(now_, now);
  if (state_ == state::handshaking) {
    auto& h = *handshake_;
    if (h.initiator && h.hello_resend_at && now_ >= *h.hello_resend_at) {
      transmit_.insert(transmit_.end(), h.last_hello_out.begin(), h.last_hello_out.end());
      h.hello_resend_wait *= 2;
      h.hello_resend_at = now_ + h.hello_resend_wait;
    }
    return;
  }
  if (channel_) channel_->handle_timeout(now_);
  if (streams_) streams_->handle_timeout(now_);
  pump_channel();
}

std::optional<time_point> session::next_deadline() const {
  if (state_ == state::failed || (framing_ != framing::datagram && !streams_)) return std::nullopt;
  if (state_ == state::handshaking) return handshake_->initiator ? handshake_->hello_resend_at : std::nullopt;
  auto next = channel_ ? channel_->next_deadline() : std::nullopt;
  auto streams = streams_ ? streams_->next_deadline() : std::nullopt;
  if (streams && (!next || *streams < *next)) next = streams;
  return next;
}

stream_mux* session::ensure_streams() {
  if (state_ != state::established) return nullptr;
  if (!streams_) streams_ = std::make_unique<stream_mux>(dialer_, settings_->streams, framing_ == framing::stream);
  // Every open and every frame comes through here. A stream session has no estimate of its own.
  if (channel_) streams_->set_path_rtt(channel_->path_rtt());
  return streams_.get();
}

void session::say_farewell() {
  if (framing_ != framing::datagram || state_ != state::established) return;
  const std::uint8_t bye[] = {farewell};
  sealer_->seal(wire::packet_type::unreliable_data, byte_span(bye, 1), transmit_);
  ++counters_.packets_out;
}

void session::pump_channel() {
  seal_frames();
  deliver_input();
}

void session::seal_frames() {
  while (state_ == state::established && channel_) {
    auto f = channel_->poll_transmit(now_);
    if (!f) break;
    std::size_t before = transmit_.size();
    sealer_->seal(f->type, f->plaintext, transmit_);
    counters_.bytes_out += transmit_.size() - before;
    ++counters_.packets_out;
  }
  while (state_ == state::established && streams_) {
    auto f = streams_->poll_transmit(now_);
    if (!f) break;
    std::size_t before = transmit_.size();
    sealer_->seal(wire::packet_type::stream, *f, transmit_);
    counters_.bytes_out += transmit_.size() - before;
    ++counters_.packets_out;
  }
}

void session::deliver_input() {
  if (streams_)
    while (auto e = streams_->poll_event()) events_.push_back(*e);
  while (state_ == state::established && channel_) {
    auto unit = channel_->poll_delivered();
    if (!unit) break;
    channel_->release(1);
    on_fragment(*unit);
  }
  if (state_ == state::established && channel_ && channel_->failure())
    fail(channel_->failure(), "the peer went silent");
}

void session::on_channel_packet(const wire::packet_view& p, byte_span plaintext) {
  if (p.type == wire::packet_type::unreliable_data) {
    if (!plaintext.empty() && plaintext[0] == farewell) return fail(errc::connection_closed, "the peer closed the session");
    if (plaintext.size() > 1 && plaintext[0] == unreliable_message_tag) {
      ++counters_.messages_in;
      events_.push_back(unreliable_message{byte_vector(plaintext.begin() + 1, plaintext.end())});
      return;
    }
    ++counters_.malformed;
    return;
  }
  if (p.type == wire::packet_type::stream) return on_stream_frame(plaintext);
  if (p.type != wire::packet_type::reliable_data && p.type != wire::packet_type::unreliable_data_ack) {
    ++counters_.malformed;  // a type of a later version: ignored
    return;
  }
  if (channel_->on_frame(p.type, plaintext, now_)) ++counters_.malformed;
}

void session::on_stream_frame(byte_span plaintext) {
  // A stream frame fits a datagram on every path: on a stream session a larger one would let a
  // peer make every unit of a stream's window 64 KiB.
  if (plaintext.size() > wire::max_datagram_size - crypto::packet_sealer::overhead) {
    ++counters_.malformed;
    return;
  }
  auto* mux = ensure_streams();  // null once the session failed (an early farewell before it)
  if (mux && mux->on_frame(plaintext, now_)) ++counters_.malformed;
}

void session::handle_bytes(byte_span bytes, std::uint64_t now_ms) {
  if (state_ == state::failed) return;
  counters_.bytes_in += bytes.size();
  if (!reader_) reader_ = std::make_unique<wire::stream_packet_reader>();
  reader_->feed(bytes);
  while (state_ != state::failed) {
    boost::system::error_code ec;
    auto packet = reader_->next(ec);
    if (ec) {
      ++counters_.malformed;
      return fail(ec, "unparseable packet header");
    }
    if (!packet) break;
    ++counters_.packets_in;
    on_packet(*packet, now_ms);
  }
  if (streams_) pump_channel();  // what the streams answer, and what they delivered
}

void session::on_packet(const wire::packet_view& p, std::uint64_t now_ms) {
  if (state_ == state::handshaking) return on_handshake_packet(p, now_ms);
  if (!wire::is_sealed(p.type) || p.version != wire::protocol_version) {
    ++counters_.malformed;
    return fail(errc::handshake_failed, "plaintext packet after the handshake");
  }
  on_sealed_packet(p);
}

void session::on_handshake_packet(const wire::packet_view& p, std::uint64_t now_ms) {
  auto& h = *handshake_;
  if (h.initiator) {
    auto step = h.initiator->on_packet(p);
    if (!step.reply.empty()) queue_handshake(step.reply);
    if (step.done) return complete_handshake(std::move(*step.done));
    if (step.ec) return fail(step.ec, std::move(step.refusal_text));
    return;
  }
  if (p.type != wire::packet_type::hello || ++h.hellos_seen > max_hellos) {
    ++counters_.malformed;
    return fail(errc::handshake_failed, "expected a hello");
  }
  auto response = h.responder->responder->on_hello(p, h.peer_address, now_ms, h.responder->under_load,
                                                  *h.responder->cookies);
  if (!response.reply.empty()) queue_handshake(response.reply);
  if (response.done) return complete_handshake(std::move(*response.done));
  if ((response.ec == errc::cookie_required || response.ec == errc::bad_cookie) &&
      !response.reply.empty()) {
    ++counters_.cookie_challenges;
    return;  // challenged: the initiator retries with the cookie
  }
  if (response.ec == errc::version_mismatch)
    return fail(response.ec, "refused a peer speaking protocol version " + std::to_string(p.version) +
                                 "; this node speaks " + std::to_string(wire::protocol_version));
  ++counters_.malformed;
  fail(response.ec ? response.ec : make_error_code(errc::handshake_failed));
}

void session::queue_handshake(byte_span packet) {
  transmit_.insert(transmit_.end(), packet.begin(), packet.end());
  if (framing_ != framing::datagram) return;
  auto& h = *handshake_;
  h.last_hello_out.assign(packet.begin(), packet.end());
  if (h.initiator) {
    h.hello_resend_wait = settings_->first_hello_resend;
    h.hello_resend_at = now_ + h.hello_resend_wait;
  }
}

void session::complete_handshake(crypto::handshake_result result) {
  sealer_.emplace(result.keys.tx, result.cipher);
  opener_.emplace(result.keys.rx, result.cipher);
  peer_ = session_peer{result.peer, result.peer_dynamic_ip};
  auto h = std::move(handshake_);
  if (framing_ == framing::datagram) {
    channel_.emplace(std::shared_ptr<const reliable_config>(settings_, &settings_->channel), now_);
    // A responder keeps its answer until the initiator's first sealed packet: see is_repeated_hello.
    if (!dialer_) {
      handshake_ = std::make_unique<handshake_state>();
      handshake_->last_hello_out = std::move(h->last_hello_out);
    }
  }
  state_ = state::established;
  events_.push_back(established{*peer_});
  for (const auto& d : h->early) {
    wire::packet_view p;
    datagram_plaintext plaintext;
    if (!wire::parse_packet(d, p) && !opener_->open(p, plaintext.bytes, plaintext.size))
      on_channel_packet(p, plaintext.view());
  }
}

void session::on_sealed_packet(const wire::packet_view& p) {
  byte_vector plaintext;  // up to 64 KiB on a stream: not worth keeping between packets
  if (auto ec = opener_->open(p, plaintext)) {
    // Dropped and counted; on a stream a corrupted packet does not desynchronise the framing,
    // so the session goes on unless the peer keeps doing it.
    if (ec == errc::replayed) ++counters_.replays;
    else ++counters_.auth_failures;
    if (static_cast<int>(counters_.auth_failures + counters_.replays) > limits_.max_auth_failures)
      fail(errc::peer_cut_off, "too many forged or replayed packets");
    return;
  }
  if (p.type == wire::packet_type::stream) return on_stream_frame(plaintext);
  if (p.type != wire::packet_type::stream_data) return;  // datagram-only types: ignored here
  on_fragment(plaintext);
}

void session::on_fragment(byte_span plaintext) {
  byte_reader r(plaintext);
  std::uint8_t flags = 0;
  if (!r.u8(flags) || (flags & ~fragment_fin) != 0) {
    ++counters_.malformed;
    return fail(errc::bad_field, "bad fragment flags");
  }
  byte_span fragment = r.rest();
  // The envelope adds at most 5 bytes to a message.
  if (reassembly_.size() + fragment.size() > limits_.max_message_size + 5) {
    ++counters_.malformed;
    return fail(errc::too_large, "message exceeds the maximum size");
  }
  const bool last = flags & fragment_fin;
  // Most messages fit one fragment: they are unwrapped where they lie, with no copy.
  if (last && reassembly_.empty()) return on_envelope(fragment);
  reassembly_.insert(reassembly_.end(), fragment.begin(), fragment.end());
  if (!last) return;
  // Only messages over a fragment (~1.1 KB on a datagram path) come here; the buffer goes with
  // the message rather than stay at its size for the rest of the session.
  byte_vector envelope;
  envelope.swap(reassembly_);
  on_envelope(envelope);
}

void session::on_envelope(byte_span envelope) {
  byte_vector message_bytes;
  if (auto ec = decode_envelope(envelope, accepted_codecs_, limits_.max_message_size, message_bytes)) {
    ++counters_.malformed;
    return fail(ec, "bad message envelope");
  }
  ++counters_.messages_in;
  events_.push_back(message{std::move(message_bytes)});
}

boost::system::error_code session::send(byte_span opcode_message,
                                        std::optional<compression::codec_id> compress_with) {
  if (state_ != state::established) return errc::not_connected;
  if (opcode_message.size() > limits_.max_message_size) return errc::too_large;
  // Used up within this call (the channel copies each fragment): not kept between messages.
  byte_vector envelope;
  encode_envelope(opcode_message, compress_with, limits_.compression_threshold, envelope);
  const bool datagram = framing_ == framing::datagram;
  const std::size_t fragment_limit = datagram ? max_datagram_fragment : max_fragment;
  if (datagram && channel_->queued() + envelope.size() / fragment_limit + 1 > settings_->channel.max_send_queue) {
    // The peer does not take what we send: cut it off, as a stream transport's full buffer does.
    fail(errc::peer_cut_off, "the peer does not acknowledge what it is sent");
    return errc::peer_cut_off;
  }
  byte_vector fragment;
  fragment.reserve(std::min(envelope.size(), fragment_limit) + 1);
  for (std::size_t offset = 0; offset < envelope.size() || offset == 0;) {
    std::size_t n = std::min(fragment_limit, envelope.size() - offset);
    bool last = offset + n == envelope.size();
    fragment.clear();
    fragment.push_back(last ? fragment_fin : 0);
    fragment.insert(fragment.end(), envelope.begin() + static_cast<std::ptrdiff_t>(offset),
                    envelope.begin() + static_cast<std::ptrdiff_t>(offset + n));
    offset += n;
    if (datagram) {
      channel_->queue(fragment);
      if (last) break;
      continue;
    }
    std::size_t before = transmit_.size();
    sealer_->seal(wire::packet_type::stream_data, fragment, transmit_);
    counters_.bytes_out += transmit_.size() - before;
    ++counters_.packets_out;
    if (last) break;
  }
  ++counters_.messages_out;
  if (datagram) pump_channel();
  return {};
}

boost::system::error_code session::send_unreliable(byte_span opcode_message) {
  if (framing_ != framing::datagram) return errc::not_supported;
  if (state_ != state::established) return errc::not_connected;
  if (opcode_message.size() > max_unreliable_message) return errc::too_large;
  byte_vector plaintext;
  plaintext.reserve(opcode_message.size() + 1);
  plaintext.push_back(unreliable_message_tag);
  plaintext.insert(plaintext.end(), opcode_message.begin(), opcode_message.end());
  std::size_t before = transmit_.size();
  sealer_->seal(wire::packet_type::unreliable_data, plaintext, transmit_);
  counters_.bytes_out += transmit_.size() - before;
  ++counters_.packets_out;
  ++counters_.messages_out;
  return {};
}

std::size_t session::buffer_capacity() const {
  std::size_t total = reassembly_.capacity() + transmit_.capacity();
  if (!handshake_) return total;
  const auto& h = *handshake_;
  total += sizeof(h) + h.last_hello_out.capacity() + h.peer_address.capacity() +
           h.early.capacity() * sizeof(byte_vector);
  for (const auto& d : h.early) total += d.capacity();
  return total;
}

byte_vector session::take_transmit() {
  byte_vector out;
  out.swap(transmit_);
  return out;
}

std::optional<session::event> session::poll_event() {
  if (events_.empty()) return std::nullopt;
  event e = std::move(events_.front());
  events_.pop_front();
  return e;
}

void session::fail(boost::system::error_code ec, std::string text) {
  if (state_ == state::failed) return;
  state_ = state::failed;
  events_.push_back(failed{ec, std::move(text)});
}

}  // namespace kadnet::core
