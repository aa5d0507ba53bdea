#include "core/session.hpp"

#include <algorithm>

#include "core/errors.hpp"

namespace kadnet::core {
namespace {
constexpr std::uint8_t fragment_fin = 0x01;
constexpr int max_hellos = 3;  // the first, and up to two more after cookie challenges
// Largest fragment that fits one stream_data packet: payload limit less the seal and flags.
constexpr std::size_t max_fragment =
    wire::max_stream_payload - (crypto::packet_sealer::overhead - wire::packet_header_size) - 1;
}  // namespace

session session::dial(const identity& self, bool dynamic_ip, std::optional<node_id> expected,
                      session_limits limits) {
  session s(limits);
  s.initiator_ = std::make_unique<crypto::initiator_handshake>(self, dynamic_ip, expected);
  byte_vector hello = s.initiator_->first_packet();
  s.transmit_.insert(s.transmit_.end(), hello.begin(), hello.end());
  return s;
}

session session::accept(responder_context& context, byte_vector peer_address,
                        session_limits limits) {
  session s(limits);
  s.responder_ = &context;
  s.peer_address_ = std::move(peer_address);
  return s;
}

void session::handle_bytes(byte_span bytes, std::uint64_t now_ms) {
  if (state_ == state::failed) return;
  counters_.bytes_in += bytes.size();
  reader_.feed(bytes);
  while (state_ != state::failed) {
    boost::system::error_code ec;
    auto packet = reader_.next(ec);
    if (ec) {
      ++counters_.malformed;
      return fail(ec, "unparseable packet header");
    }
    if (!packet) return;
    ++counters_.packets_in;
    on_packet(*packet, now_ms);
  }
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
  if (initiator_) {
    auto step = initiator_->on_packet(p);
    if (!step.reply.empty()) transmit_.insert(transmit_.end(), step.reply.begin(), step.reply.end());
    if (step.done) return complete_handshake(std::move(*step.done));
    if (step.ec) return fail(step.ec, std::move(step.refusal_text));
    return;
  }
  if (p.type != wire::packet_type::hello || ++hellos_seen_ > max_hellos) {
    ++counters_.malformed;
    return fail(errc::handshake_failed, "expected a hello");
  }
  auto response = responder_->responder->on_hello(p, peer_address_, now_ms,
                                                  responder_->under_load, *responder_->cookies);
  if (!response.reply.empty())
    transmit_.insert(transmit_.end(), response.reply.begin(), response.reply.end());
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

void session::complete_handshake(crypto::handshake_result result) {
  sealer_.emplace(result.keys.tx);
  opener_.emplace(result.keys.rx);
  peer_ = std::move(result);
  initiator_.reset();
  state_ = state::established;
  events_.push_back(established{*peer_});
}

void session::on_sealed_packet(const wire::packet_view& p) {
  if (auto ec = opener_->open(p, plaintext_)) {
    // Dropped and counted; on a stream a corrupted packet does not desynchronise the framing,
    // so the session goes on unless the peer keeps doing it.
    if (ec == errc::replayed) ++counters_.replays;
    else ++counters_.auth_failures;
    if (static_cast<int>(counters_.auth_failures + counters_.replays) > limits_.max_auth_failures)
      fail(errc::peer_cut_off, "too many forged or replayed packets");
    return;
  }
  if (p.type != wire::packet_type::stream_data) return;  // datagram-only types: ignored here
  on_fragment(plaintext_);
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
  reassembly_.insert(reassembly_.end(), fragment.begin(), fragment.end());
  if (!(flags & fragment_fin)) return;
  byte_vector message_bytes;
  auto ec = decode_envelope(reassembly_, accepted_codecs_, limits_.max_message_size, message_bytes);
  reassembly_.clear();
  if (ec) {
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
  envelope_.clear();
  encode_envelope(opcode_message, compress_with, limits_.compression_threshold, envelope_);
  byte_vector fragment;
  fragment.reserve(std::min(envelope_.size(), max_fragment) + 1);
  for (std::size_t offset = 0; offset < envelope_.size() || offset == 0;) {
    std::size_t n = std::min(max_fragment, envelope_.size() - offset);
    bool last = offset + n == envelope_.size();
    fragment.clear();
    fragment.push_back(last ? fragment_fin : 0);
    fragment.insert(fragment.end(), envelope_.begin() + static_cast<std::ptrdiff_t>(offset),
                    envelope_.begin() + static_cast<std::ptrdiff_t>(offset + n));
    std::size_t before = transmit_.size();
    sealer_->seal(wire::packet_type::stream_data, fragment, transmit_);
    counters_.bytes_out += transmit_.size() - before;
    ++counters_.packets_out;
    offset += n;
    if (last) break;
  }
  ++counters_.messages_out;
  return {};
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
