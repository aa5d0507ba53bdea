#include "kadnet/core/stream_mux.hpp"

#include <algorithm>
#include <cstring>

#include "kadnet/core/errors.hpp"

namespace kadnet::core {
namespace {
enum frame_kind : std::uint8_t { data = 0, ack = 1, reset_frame = 2 };
constexpr std::uint8_t fin = 0x01;
}  // namespace

stream_mux::stream_mux(bool dialer, stream_limits limits, bool lossless)
    : dialer_(dialer),
      limits_(limits),
      max_window_(std::max(limits.max_window_units, limits.window_units)),
      next_local_(dialer ? 1 : 2) {
  reliable_config c;
  c.receive_window = limits_.window_units;
  c.max_send_queue = limits_.window_units;
  // The session watches the peer's liveness (its channel, or the transport's connection); a
  // quiet stream is not a dead one, however long it stays quiet.
  c.keepalive = std::chrono::hours(24 * 365 * 10);
  c.idle_timeout = std::chrono::hours(24 * 365 * 10);
  c.lossless = lossless;
  // A stream's first units must fit the window the peer gives a stream it did not open (the
  // same default on both sides): past it they would be dropped and cost a window cut.
  const std::uint32_t unaccepted_window = std::min(limits_.unaccepted_window_units, limits_.window_units);
  c.initial_peer_window = unaccepted_window;
  channel_config_ = std::make_shared<const reliable_config>(c);
  c.receive_window = unaccepted_window;
  unaccepted_config_ = std::make_shared<const reliable_config>(c);
}

stream_mux::stream_state& stream_mux::create(stream_id id, time_point now, bool by_peer) {
  auto& s = streams_.try_emplace(id, by_peer ? unaccepted_config_ : channel_config_, now).first->second;
  if (path_rtt_) s.channel.assume_path_rtt(*path_rtt_);
  return s;
}

stream_mux::stream_map::iterator stream_mux::erase(stream_map::iterator it) {
  receive_growth_ -= it->second.receive_growth;
  send_growth_ -= it->second.send_growth;
  return streams_.erase(it);
}

void stream_mux::widen_receive_window(stream_state& s) {
  const std::uint32_t window = s.channel.receive_window();
  if (s.read_since_widening < window || window >= max_window_) return;
  s.read_since_widening = 0;
  const std::uint32_t growth =
      std::min({window, max_window_ - window, limits_.session_window_units - receive_growth_});
  if (growth == 0) return;
  receive_growth_ += growth;
  s.receive_growth += growth;
  s.channel.widen_receive_window(window + growth);
}

bool stream_mux::lengthen_send_queue(stream_state& s) {
  const std::size_t queue = s.channel.max_send_queue();
  if (queue >= max_window_ || s.channel.peer_window() <= queue) return false;
  const std::uint32_t growth = static_cast<std::uint32_t>(
      std::min<std::size_t>({queue, max_window_ - queue, limits_.session_window_units - send_growth_}));
  if (growth == 0) return false;
  send_growth_ += growth;
  s.send_growth += growth;
  s.channel.set_max_send_queue(queue + growth);
  return true;
}

std::optional<stream_id> stream_mux::open(time_point now) {
  now_ = std::max(now_, now);
  if (streams_.size() >= limits_.max_streams || next_local_ > 0xFFFFFFF0u) return std::nullopt;
  stream_id id = next_local_;
  next_local_ += 2;
  // An empty unit opens the stream at the peer at once, so its accept completes before any
  // bytes are written (as a TCP accept does).
  create(id, now_, false).channel.queue(byte_vector{0});
  return id;
}

void stream_mux::accept(stream_id id) {
  auto it = streams_.find(id);
  if (it != streams_.end()) it->second.channel.widen_receive_window(limits_.window_units);
}

std::size_t stream_mux::write(stream_id id, byte_span bytes) {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.fin_wanted) return 0;
  stream_state& s = it->second;
  std::size_t taken = 0;
  while (taken < bytes.size() && (s.channel.writable() || lengthen_send_queue(s))) {
    std::size_t n = std::min(max_unit_bytes, bytes.size() - taken);
    byte_vector unit;
    unit.reserve(n + 1);
    unit.push_back(0);
    unit.insert(unit.end(), bytes.begin() + static_cast<std::ptrdiff_t>(taken),
                bytes.begin() + static_cast<std::ptrdiff_t>(taken + n));
    if (!s.channel.queue(std::move(unit))) break;  // the channel failed: nothing more goes
    taken += n;
  }
  if (taken < bytes.size()) s.write_blocked = true;
  return taken;
}

std::size_t stream_mux::read(stream_id id, mutable_byte_span out) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return 0;
  stream_state& s = it->second;
  std::size_t copied = 0;
  while (copied < out.size() && !s.incoming.empty()) {
    byte_vector& front = s.incoming.front();
    std::size_t n = std::min(out.size() - copied, front.size() - s.read_offset);
    std::memcpy(out.data() + copied, front.data() + s.read_offset, n);
    copied += n;
    s.read_offset += n;
    if (s.read_offset == front.size()) {
      s.incoming.pop_front();
      s.read_offset = 0;
      s.channel.release(1);  // the reader took it: the window opens again
      ++s.read_since_widening;
    }
  }
  widen_receive_window(s);
  check_done(id, s, now_);
  return copied;
}

std::optional<reliable_counters> stream_mux::counters_of(stream_id id) const {
  auto it = streams_.find(id);
  if (it == streams_.end()) return std::nullopt;
  return it->second.channel.counters();
}

std::optional<stream_mux::windows> stream_mux::windows_of(stream_id id) const {
  auto it = streams_.find(id);
  if (it == streams_.end()) return std::nullopt;
  return windows{it->second.channel.receive_window(), it->second.channel.max_send_queue()};
}

bool stream_mux::at_end(stream_id id) const {
  auto it = streams_.find(id);
  return it == streams_.end() || (it->second.fin_received && it->second.incoming.empty());
}

void stream_mux::shutdown(stream_id id) {
  auto it = streams_.find(id);
  if (it == streams_.end() || it->second.fin_wanted) return;
  it->second.fin_wanted = true;
  queue_fin(it->second);
}

void stream_mux::queue_fin(stream_state& s) {
  // The FIN is a unit of its own: when the send queue is full it waits for room like data.
  if (s.fin_wanted && !s.fin_queued && s.channel.queue(byte_vector{fin})) s.fin_queued = true;
}

void stream_mux::close(stream_id id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  shutdown(id);
  stream_state& s = it->second;
  s.discarding = true;
  s.channel.release(s.incoming.size());
  s.incoming.clear();
  s.read_offset = 0;
  check_done(id, s, now_);
}

void stream_mux::queue_reset(stream_id id, reset_code code) {
  byte_vector f;
  byte_writer w(f);
  w.u32(id);
  w.u8(reset_frame);
  w.u8(static_cast<std::uint8_t>(code));
  resets_out_.push_back(std::move(f));
}

void stream_mux::reset(stream_id id, reset_code code) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  erase(it);
  queue_reset(id, code);
  events_.push_back({id, event_kind::closed, {}});
}

boost::system::error_code stream_mux::on_frame(byte_span plaintext, time_point now) {
  now_ = std::max(now_, now);
  byte_reader r(plaintext);
  std::uint32_t id = 0;
  std::uint8_t kind = 0;
  if (!r.u32(id) || !r.u8(kind) || kind > reset_frame || id == 0) {
    ++malformed_;
    return errc::bad_field;
  }
  auto it = streams_.find(id);
  const bool peers_parity = !opened_here(id);
  if (kind == reset_frame) {
    std::uint8_t code = 0;  // unknown codes mean abandoned
    r.u8(code);
    if (it != streams_.end()) {
      erase(it);
      events_.push_back({id, event_kind::failed,
                         code == static_cast<std::uint8_t>(reset_code::protocol_not_served)
                             ? errc::protocol_not_served
                             : errc::connection_closed});
    }
    return {};
  }
  if (it == streams_.end()) {
    // Only new data opens a stream; anything for a freed or unknown stream is stale.
    if (kind != data || !peers_parity || id <= highest_peer_) return {};
    highest_peer_ = id;
    if (streams_.size() >= limits_.max_streams) {
      queue_reset(id);
      return {};
    }
    create(id, now_, true);
    it = streams_.find(id);
    events_.push_back({id, event_kind::opened, {}});
  }
  auto type = kind == data ? wire::packet_type::reliable_data : wire::packet_type::unreliable_data_ack;
  if (auto ec = it->second.channel.on_frame(type, r.rest(), now_)) {
    ++malformed_;
    return ec;
  }
  after_input(id, it->second, now_);
  return {};
}

void stream_mux::after_input(stream_id id, stream_state& s, time_point now) {
  bool arrived = false;
  while (auto unit = s.channel.poll_delivered()) {
    if (unit->empty() || (unit->front() & ~fin) != 0 || s.fin_received) {
      ++malformed_;  // bad flags, or bytes after the end: dropped
      s.channel.release(1);
      continue;
    }
    if (unit->front() & fin) s.fin_received = true;
    arrived = arrived || (unit->front() & fin) || unit->size() > 1;
    if (s.discarding || unit->size() == 1) {
      s.channel.release(1);
    } else {
      unit->erase(unit->begin());
      s.incoming.push_back(std::move(*unit));
    }
  }
  if (arrived && !s.discarding) events_.push_back({id, event_kind::readable, {}});
  queue_fin(s);
  if (s.write_blocked && s.channel.writable()) {
    s.write_blocked = false;
    events_.push_back({id, event_kind::writable, {}});
  }
  check_done(id, s, now);
}

void stream_mux::check_done(stream_id, stream_state& s, time_point now) {
  if (s.linger_until) return;
  bool sent_all = s.fin_queued && s.channel.queued() == 0;
  bool read_all = s.fin_received && s.incoming.empty();
  if (sent_all && read_all) s.linger_until = now + limits_.linger;
}

std::optional<byte_vector> stream_mux::poll_transmit(time_point now) {
  now_ = std::max(now_, now);
  if (!resets_out_.empty()) {
    byte_vector f = std::move(resets_out_.front());
    resets_out_.pop_front();
    return f;
  }
  const bool new_data = !channel_config_->lossless || units_in_flight() < limits_.lossless_flight_units;
  for (auto& [id, s] : streams_) {
    if (auto f = s.channel.poll_transmit(now_, new_data)) {
      byte_vector out;
      out.reserve(5 + f->plaintext.size());
      byte_writer w(out);
      w.u32(id);
      w.u8(f->type == wire::packet_type::reliable_data ? data : ack);
      w.bytes(f->plaintext);
      return out;
    }
  }
  return std::nullopt;
}

std::size_t stream_mux::units_in_flight() const {
  std::size_t total = 0;
  for (const auto& [id, s] : streams_) total += s.channel.in_flight();
  return total;
}

std::size_t stream_mux::opened_here_and_open() const {
  std::size_t count = 0;
  for (const auto& [id, s] : streams_) count += opened_here(id) && !s.discarding;
  return count;
}

std::optional<stream_mux::event> stream_mux::poll_event() {
  if (events_.empty()) return std::nullopt;
  event e = events_.front();
  events_.pop_front();
  return e;
}

void stream_mux::handle_timeout(time_point now) {
  now_ = std::max(now_, now);
  for (auto it = streams_.begin(); it != streams_.end();) {
    stream_state& s = it->second;
    if (s.linger_until && *s.linger_until <= now_) {
      events_.push_back({it->first, event_kind::closed, {}});
      it = erase(it);
      continue;
    }
    s.channel.handle_timeout(now_);
    ++it;
  }
}

std::optional<time_point> stream_mux::next_deadline() const {
  std::optional<time_point> next;
  for (const auto& [id, s] : streams_) {
    for (auto d : {s.linger_until, s.channel.next_deadline()})
      if (d && (!next || *d < *next)) next = d;
  }
  return next;
}

}  // namespace kadnet::core
