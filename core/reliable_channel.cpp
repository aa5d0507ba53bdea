#include "kadnet/core/reliable_channel.hpp"

#include <algorithm>

#include "kadnet/core/errors.hpp"

namespace kadnet::core {
namespace {
using std::chrono::microseconds;
constexpr std::uint32_t max_window = (1u << 24) - 1;
constexpr std::uint32_t packet_threshold = 3;  // later packets acknowledged before a loss is declared
constexpr std::uint32_t max_reorder_packets = 1024;
constexpr std::uint32_t max_cwnd = 1u << 20;
constexpr int max_backoff = 6;
constexpr std::uint32_t pacing_burst = 10;  // packets that may leave back to back
constexpr std::size_t small_unit = 256;     // a resend of a unit this small goes out twice
// Losses in one window of data that may be chance, whatever the window: below this count "more
// than one in eight" is a few units of a small window, which random loss (and reordering taken
// for loss) reaches often enough to cut the window again and again.
constexpr std::uint32_t min_congestion_losses = 8;
// Sequence numbers never wrap: a session that sent this many units ends (PROTOCOL.md 9).
constexpr std::uint32_t last_sequence = 0xFFFFFFF0u;
}  // namespace

reliable_channel::reliable_channel(reliable_config config, time_point now)
    : reliable_channel(std::make_shared<const reliable_config>(config), now) {}

reliable_channel::reliable_channel(std::shared_ptr<const reliable_config> config, time_point now)
    : config_(std::move(config)),
      receive_window_(std::clamp<std::uint32_t>(config_->receive_window, 1, max_window)),
      max_send_queue_(config_->max_send_queue),
      // Our first guess of the peer's window is only a guess: units past its real one are
      // dropped and resent, or on a lossless path never resent. There the guess is one unit (a
      // stream's opening one), and the rest waits for the acknowledgement that says the window.
      peer_window_(config_->lossless ? 1 : std::max<std::uint32_t>(config_->initial_peer_window, 1)),
      cwnd_(std::max(config_->initial_window, config_->min_window)),
      reorder_packets_(packet_threshold),
      last_sent_any_(now),
      last_heard_(now) {}

reliable_channel::buffers& reliable_channel::buf() {
  if (!buffers_) buffers_ = std::make_unique<buffers>();
  return *buffers_;
}

const reliable_channel::buffers& reliable_channel::view() const {
  static const buffers none;
  return buffers_ ? *buffers_ : none;
}

void reliable_channel::free_buffers_if_idle() {
  if (buffers_ && buffers_->send_queue.empty() && buffers_->in_flight.empty() &&
      buffers_->out_of_order.empty() && buffers_->delivered.empty())
    buffers_.reset();
}

bool reliable_channel::queue(byte_vector unit) {
  if (!writable() || timed_out_) return false;
  buf().send_queue.push_back(std::move(unit));
  return true;
}

boost::system::error_code reliable_channel::failure() const {
  return timed_out_ ? make_error_code(errc::timeout) : boost::system::error_code{};
}

void reliable_channel::release(std::size_t units) {
  bool was_closed = advertised_window() == 0;
  unreleased_ -= std::min(units, unreleased_);
  if (was_closed && advertised_window() > 0) ack_now_ = true;  // tell the sender it may go on
}

void reliable_channel::widen_receive_window(std::uint32_t units) {
  units = std::min(units, max_window);
  if (units <= receive_window_) return;
  receive_window_ = units;
  ack_now_ = true;
}

std::uint32_t reliable_channel::advertised_window() const {
  std::size_t used = view().out_of_order.size() + unreleased_;
  return used >= receive_window_ ? 0 : static_cast<std::uint32_t>(receive_window_ - used);
}

// --- receiving ---

boost::system::error_code reliable_channel::on_frame(wire::packet_type type, byte_span plaintext,
                                                     time_point now) {
  const idle_check check{*this};
  boost::system::error_code ec;
  byte_reader r(plaintext);
  std::uint32_t seq = 0;
  if (type == wire::packet_type::reliable_data && !r.u32(seq)) ec = errc::truncated;
  else if (type != wire::packet_type::reliable_data && type != wire::packet_type::unreliable_data_ack)
    ec = errc::bad_field;
  if (!ec) on_ack_block(r, now, ec);
  if (ec) {
    ++counters_.malformed;
    return ec;
  }
  last_heard_ = now;
  if (type != wire::packet_type::reliable_data) return {};

  byte_span unit = r.rest();
  if (seq < rcv_nxt_ || buf().out_of_order.count(seq)) {
    ++counters_.duplicates_in;
    ack_now_ = true;  // our acknowledgement was probably lost
    return {};
  }
  std::size_t room = receive_window_ > unreleased_ ? receive_window_ - unreleased_ : 0;
  if (seq - rcv_nxt_ >= room) {
    ++counters_.out_of_window;
    ack_now_ = true;
    return {};
  }
  if (seq == rcv_nxt_) {
    bool filled_gap = !buf().out_of_order.empty();
    buf().delivered.emplace_back(unit.begin(), unit.end());
    ++unreleased_;
    ++rcv_nxt_;
    for (auto it = buf().out_of_order.begin(); it != buf().out_of_order.end() && it->first == rcv_nxt_;) {
      buf().delivered.push_back(std::move(it->second));
      ++unreleased_;
      ++rcv_nxt_;
      it = buf().out_of_order.erase(it);
    }
    if (filled_gap) ack_now_ = true;
    // A lossless sender sends one unit until it hears our window: tell it at once.
    if (config_->lossless && seq == 0) ack_now_ = true;
  } else {
    // The sender should hear at once of a new gap, of a unit that arrived below others
    // (reordering), and of the first units above a gap, which its packet threshold counts for a
    // fast retransmit. Later units that continue in order above the gap are acknowledged as
    // in-order ones are (RFC 9000 13.2.1): acking each would double the acknowledgements while
    // a hole stays open, and on a reordering path one nearly always does.
    auto& held = buf().out_of_order;
    const std::uint32_t highest = held.empty() ? rcv_nxt_ - 1 : held.rbegin()->first;
    if (seq != highest + 1 || held.size() < packet_threshold) ack_now_ = true;
    held.emplace(seq, byte_vector(unit.begin(), unit.end()));
  }
  if (++unacked_in_ >= 2) ack_now_ = true;
  else if (!ack_due_) ack_due_ = now + config_->ack_delay;
  return {};
}

std::optional<byte_vector> reliable_channel::poll_delivered() {
  const idle_check check{*this};
  if (buf().delivered.empty()) return std::nullopt;
  byte_vector unit = std::move(buf().delivered.front());
  buf().delivered.pop_front();
  return unit;
}

// --- acknowledgements in ---

void reliable_channel::on_ack_block(byte_reader& r, time_point now, boost::system::error_code& ec) {
  std::uint32_t ack = 0, window = 0;
  std::uint8_t ranges = 0;
  if (!r.u32(ack) || !r.u24(window) || !r.u8(ranges)) {
    ec = errc::truncated;
    return;
  }
  const std::uint32_t snd_nxt = snd_una_ + static_cast<std::uint32_t>(buf().in_flight.size());
  if (ranges > max_ranges || ack > snd_nxt) {
    ec = errc::bad_field;
    return;
  }
  std::pair<std::uint32_t, std::uint32_t> range[max_ranges];
  for (std::uint8_t i = 0; i < ranges; ++i) {
    if (!r.u32(range[i].first) || !r.u32(range[i].second)) {
      ec = errc::truncated;
      return;
    }
    if (range[i].first >= range[i].second || range[i].second > snd_nxt) {
      ec = errc::bad_field;
      return;
    }
  }

  bool progress = false, rtt_sampled = false;
  // Newest first, so the RTT sample comes from the packet that left last (Karn: never a resend).
  auto ack_range = [&](std::uint32_t from, std::uint32_t to) {
    from = std::max(from, snd_una_);
    for (std::uint32_t s = to; s > from; --s) {
      sent_unit& u = buf().in_flight[s - 1 - snd_una_];
      if (u.acked) continue;
      // Declared lost, yet acknowledged before its resend left or sooner after it than any
      // round trip: the first copy arrived, only late.
      const bool spurious = !u.loss_probed && (u.lost || (u.retransmitted && have_rtt_ && now - u.sent_at < min_rtt_ / 2));
      if (spurious) on_spurious_loss(u, std::max(highest_acked_, to) - s);
      on_unit_acked(u, now, rtt_sampled);
      progress = true;
    }
    highest_acked_ = std::max(highest_acked_, to);
  };
  for (std::uint8_t i = ranges; i-- > 0;) ack_range(range[i].first, range[i].second);
  if (ack > snd_una_) ack_range(snd_una_, ack);
  while (!buf().in_flight.empty() && snd_una_ < ack) {
    buf().in_flight.pop_front();
    ++snd_una_;
  }
  // The window counts from the cumulative ack; an older ack must not shrink what a newer allowed.
  if (ack >= snd_una_) peer_window_ = std::min(window, max_window), peer_window_known_ = true;
  if (peer_window_ > 0) probe_due_ = false;
  if (progress) {
    rto_backoff_ = 0;
    loss_probes_ = 0;
    rto_started_ = now;
    if (in_recovery_ && snd_una_ >= recovery_end_) in_recovery_ = false;
  }
  detect_losses(now);
}

void reliable_channel::on_unit_acked(sent_unit& u, time_point now, bool& rtt_sampled) {
  u.acked = true;
  largest_acked_sent_at_ = std::max(largest_acked_sent_at_, u.sent_at);
  if (u.lost) {
    u.lost = false;
    --lost_pending_;
  } else {
    --outstanding_;
  }
  u.data = {};
  if (!rtt_sampled && !u.retransmitted) {
    sample_rtt(std::chrono::duration_cast<microseconds>(now - u.sent_at));
    rtt_sampled = true;
  }
  if (in_recovery_) return;
  if (cwnd_ < ssthresh_) {
    ++cwnd_;
  } else if (++cwnd_credit_ >= cwnd_) {
    ++cwnd_;
    cwnd_credit_ = 0;
  }
  cwnd_ = std::min(cwnd_, max_cwnd);
}

void reliable_channel::detect_losses(time_point now) {
  // RFC 9002 6.1: a unit is lost once a unit sent after it was acknowledged and either three
  // later sequence numbers were acknowledged or it has waited 9/8 of an RTT. Sending order
  // also judges resends: a resend is lost when a unit sent after it was acknowledged and it
  // waited that long, without waiting for new data to be sent behind it.
  loss_time_.reset();
  if (config_->lossless) return;
  const auto rtt = std::max(srtt_, latest_rtt_);
  const microseconds loss_delay = std::max<microseconds>(rtt * 9 / 8, microseconds(1000));
  std::uint32_t lost_now = 0;
  std::vector<std::uint32_t> lost_seqs;
  for (std::uint32_t s = snd_una_; s < highest_acked_; ++s) {
    sent_unit& u = buf().in_flight[s - snd_una_];
    if (u.acked || u.lost || u.sent_at > largest_acked_sent_at_) continue;
    const bool by_count = u.retransmitted ? highest_acked_ >= u.resend_mark + reorder_packets_
                                          : highest_acked_ >= s + 1 + reorder_packets_;
    if (by_count || now - u.sent_at >= loss_delay) {
      u.lost = true;
      --outstanding_;
      ++lost_pending_;
      ++counters_.fast_retransmits;
      ++lost_now;
      lost_seqs.push_back(s);
    } else if (!loss_time_ || u.sent_at + loss_delay < *loss_time_) {
      loss_time_ = u.sent_at + loss_delay;
    }
  }
  if (lost_now == 0) return;
  const bool was_in_recovery = in_recovery_;
  on_congestion_event(now, lost_now);
  if (was_in_recovery || !in_recovery_) return;
  // These losses cut the window: remember which units they were, to undo the cut if every one
  // of them proves spurious.
  for (sent_unit& u : buf().in_flight) u.cut_window = false;
  for (std::uint32_t s : lost_seqs) buf().in_flight[s - snd_una_].cut_window = true;
  cut_losses_unproven_ = lost_now;
}

void reliable_channel::on_spurious_loss(const sent_unit& u, std::uint32_t overtaken_by) {
  ++counters_.spurious_losses;
  // Tolerate as many later units as overtook this one. The time threshold stays 9/8 RTT: on a
  // path whose delay varies, sparse traffic is reordered too, and waiting longer there delays
  // every real loss (tried: growing it to the late unit's round trip, at most 2 RTTs, cost the
  // latency benchmark's 60–125 ms path 7 ms on average and three of its twenty seeds' targets).
  reorder_packets_ = std::clamp(overtaken_by + 1, reorder_packets_, max_reorder_packets);
  if (!u.cut_window || cut_losses_unproven_ == 0) return;
  if (--cut_losses_unproven_ > 0) return;
  // Every loss behind the last reduction was reordering: the path was never congested.
  cwnd_ = std::max(cwnd_, cwnd_before_cut_);
  ssthresh_ = std::max(ssthresh_, ssthresh_before_cut_);
  in_recovery_ = false;
  ++counters_.reductions_undone;
}

void reliable_channel::on_congestion_event(time_point now, std::uint32_t lost) {
  // Losses in this window of data; a new window starts once everything sent before is acked.
  const std::uint32_t snd_nxt = snd_una_ + static_cast<std::uint32_t>(buf().in_flight.size());
  if (snd_una_ >= loss_window_end_) {
    loss_window_start_ = snd_una_;
    loss_window_end_ = snd_nxt;
    losses_in_window_ = 0;
  }
  losses_in_window_ += lost;
  if (in_recovery_) return;  // one reduction per window of data (NewReno)
  // A loss with no queue behind it (the RTT near its minimum) and few losses is noise on the
  // path, not congestion: the window stays (PROTOCOL.md 9.5).
  const bool queue_building = !have_rtt_ || srtt_ > min_rtt_ + std::max<microseconds>(min_rtt_ / 4, microseconds(1000));
  // The share is of the units sent since the window began, at least a congestion window's worth:
  // units held in flight by holes (acknowledged beyond them) were exposed to loss as well.
  const bool many = losses_in_window_ > min_congestion_losses &&
                    losses_in_window_ * 8 > std::max(cwnd_, snd_nxt - loss_window_start_);
  if (!queue_building && !many) {
    ++counters_.losses_tolerated;
    return;
  }
  (void)now;
  in_recovery_ = true;
  recovery_end_ = snd_una_ + static_cast<std::uint32_t>(buf().in_flight.size());
  cwnd_before_cut_ = cwnd_;
  ssthresh_before_cut_ = ssthresh_;
  ssthresh_ = std::max(cwnd_ / 2, config_->min_window);
  cwnd_ = ssthresh_;
  cwnd_credit_ = 0;
}

std::optional<reliable_channel::rtt_estimate> reliable_channel::path_rtt() const {
  if (!have_rtt_) return std::nullopt;
  return rtt_estimate{srtt_, rttvar_, min_rtt_};
}

void reliable_channel::assume_path_rtt(const rtt_estimate& path) {
  if (have_rtt_) return;
  srtt_ = latest_rtt_ = path.smoothed;
  rttvar_ = path.variation;
  min_rtt_ = path.minimum;
  have_rtt_ = true;
}

void reliable_channel::sample_rtt(microseconds rtt) {
  latest_rtt_ = rtt;
  if (!have_rtt_ || rtt < min_rtt_) min_rtt_ = rtt;
  // RFC 6298 2.2 and 2.3, alpha = 1/8, beta = 1/4.
  if (!have_rtt_) {
    srtt_ = rtt;
    rttvar_ = rtt / 2;
    have_rtt_ = true;
    return;
  }
  microseconds delta = srtt_ > rtt ? srtt_ - rtt : rtt - srtt_;
  rttvar_ = (3 * rttvar_ + delta) / 4;
  srtt_ = (7 * srtt_ + rtt) / 8;
}

microseconds reliable_channel::rto_base() const {
  return have_rtt_ ? srtt_ + std::max<microseconds>(microseconds(1000), 4 * rttvar_) +
                         std::chrono::duration_cast<microseconds>(config_->ack_delay)
                   : std::chrono::duration_cast<microseconds>(config_->initial_rto);
}

microseconds reliable_channel::rto() const {
  const microseconds base = std::clamp<microseconds>(rto_base(), config_->min_rto, config_->max_rto);
  return std::min<microseconds>(base * (1 << rto_backoff_), config_->max_rto);
}

std::optional<time_point> reliable_channel::loss_probe_at() const {
  // Something waits for an acknowledgement and no unit can be sent whose acknowledgement would
  // reveal a loss by sending order (a full window, or nothing queued): typically a lost resend.
  if (!have_rtt_ || outstanding_ == 0 || lost_pending_ > 0 || may_send_new()) return std::nullopt;
  const int backoff = std::min(rto_backoff_ + loss_probes_, max_backoff);
  const time_point at = rto_started_ + std::min<microseconds>(rto_base() * (1 << backoff), config_->max_rto);
  if (at >= rto_started_ + rto()) return std::nullopt;  // the RTO is due as soon: it acts instead
  return at;
}

// --- sending ---

bool reliable_channel::may_send_new() const {
  if (view().send_queue.empty()) return false;
  const std::uint32_t snd_nxt = snd_una_ + static_cast<std::uint32_t>(view().in_flight.size());
  if (snd_nxt >= last_sequence) return false;
  bool window_open = snd_nxt - snd_una_ < peer_window_ || probe_due_;
  return window_open && (config_->lossless || outstanding_ < cwnd_);
}

std::optional<reliable_channel::frame> reliable_channel::poll_transmit(time_point now, bool new_data) {
  const idle_check check{*this};
  if (timed_out_) return std::nullopt;
  auto data_frame = [&](std::uint32_t seq, sent_unit& u) {
    frame f = copy_of(seq, u);
    u.sent_at = now;
    if (outstanding_ == 0 && lost_pending_ == 0) rto_started_ = now;
    ++outstanding_;
    last_sent_any_ = now;
    // Pacing: cwnd packets per smoothed RTT, 25 % headroom, bursts of pacing_burst allowed.
    if (have_rtt_ && !config_->lossless) {
      auto interval = srtt_ * 4 / (5 * std::max<std::uint32_t>(cwnd_, 1));
      next_send_ = std::max(next_send_, now - interval * pacing_burst) + interval;
    }
    return f;
  };
  const bool paced = now < next_send_;

  if (second_copy_) {
    const std::uint32_t seq = *second_copy_;
    second_copy_.reset();
    if (seq >= snd_una_ && seq - snd_una_ < view().in_flight.size()) {
      sent_unit& u = buf().in_flight[seq - snd_una_];
      if (!u.acked && !u.lost) {  // the same unit in flight: no count of the window changes
        ++counters_.retransmits;
        last_sent_any_ = now;
        return copy_of(seq, u);
      }
    }
  }

  if (lost_pending_ > 0 && !paced) {
    for (std::size_t i = 0; i < buf().in_flight.size(); ++i) {
      sent_unit& u = buf().in_flight[i];
      if (!u.lost) continue;
      u.lost = false;
      u.retransmitted = true;
      --lost_pending_;
      ++counters_.retransmits;
      u.resend_mark = snd_una_ + static_cast<std::uint32_t>(buf().in_flight.size());
      // A small unit is resent twice: a second copy costs a few bytes, and losing the resend
      // too would cost another loss-detection delay (about an RTT) on top of the first.
      if (u.data.size() <= small_unit) second_copy_ = snd_una_ + static_cast<std::uint32_t>(i);
      return data_frame(snd_una_ + static_cast<std::uint32_t>(i), u);
    }
  }
  if (new_data && may_send_new() && !paced) {
    probe_due_ = false;
    buf().in_flight.push_back(sent_unit{std::move(buf().send_queue.front())});
    buf().send_queue.pop_front();
    ++counters_.units_sent;
    return data_frame(snd_una_ + static_cast<std::uint32_t>(buf().in_flight.size() - 1), buf().in_flight.back());
  }
  if (ack_now_ || (ack_due_ && now >= *ack_due_) || now - last_sent_any_ >= config_->keepalive) {
    frame f{wire::packet_type::unreliable_data_ack, {}};
    write_ack_block(f.plaintext, max_ranges);
    ++counters_.acks_sent;
    last_sent_any_ = now;
    return f;
  }
  return std::nullopt;
}

reliable_channel::frame reliable_channel::copy_of(std::uint32_t seq, const sent_unit& u) {
  frame f{wire::packet_type::reliable_data, {}};
  f.plaintext.reserve(max_header + u.data.size());
  byte_writer(f.plaintext).u32(seq);
  write_ack_block(f.plaintext, max_ranges);
  f.plaintext.insert(f.plaintext.end(), u.data.begin(), u.data.end());
  return f;
}

void reliable_channel::write_ack_block(byte_vector& out, std::size_t ranges_here) {
  byte_writer w(out);
  w.u32(rcv_nxt_);
  w.u24(advertised_window());
  std::size_t count_at = out.size();
  w.u8(0);
  std::uint8_t count = 0;
  for (auto it = buf().out_of_order.begin(); it != buf().out_of_order.end() && count < ranges_here; ++count) {
    std::uint32_t start = it->first, end = start;
    while (it != buf().out_of_order.end() && it->first == end) ++end, ++it;
    w.u32(start);
    w.u32(end);
  }
  out[count_at] = count;
  ack_now_ = false;
  ack_due_.reset();
  unacked_in_ = 0;
}

// --- time ---

void reliable_channel::handle_timeout(time_point now) {
  const idle_check check{*this};
  if (timed_out_) return;
  // A silent peer, or one that hears but never acknowledges what we resend.
  if (now - last_heard_ >= config_->idle_timeout ||
      (outstanding_ + lost_pending_ > 0 && now - rto_started_ >= config_->idle_timeout)) {
    timed_out_ = true;
    return;
  }
  // Nothing is lost on a lossless path: no loss detection and no resends there.
  if (!config_->lossless) on_loss_timers(now);
  // Zero window: probe with one unit after an RTO's wait, as TCP's persist timer does. (Not on
  // a lossless path: the window's reopening cannot be lost there, and a probe past a closed
  // window is dropped and would never be resent.)
  if (!config_->lossless && peer_window_ == 0 && !buf().send_queue.empty() && outstanding_ == 0 && lost_pending_ == 0 &&
      now >= last_sent_any_ + rto())
    probe_due_ = true;
}

void reliable_channel::on_loss_timers(time_point now) {
  if (loss_time_ && now >= *loss_time_) detect_losses(now);
  if (outstanding_ > 0 && now >= rto_started_ + rto()) {
    // Retransmission timeout (RFC 6298 5.4–5.7; RFC 5681 for the window): resend everything
    // unacknowledged, from the minimum window, with the timer backed off.
    ++counters_.timeouts;
    for (auto& u : buf().in_flight) {
      if (u.acked || u.lost) continue;
      u.lost = true;
      --outstanding_;
      ++lost_pending_;
    }
    ssthresh_ = std::max(cwnd_ / 2, config_->min_window);
    cwnd_ = config_->min_window;
    cwnd_credit_ = 0;
    in_recovery_ = true;
    recovery_end_ = snd_una_ + static_cast<std::uint32_t>(buf().in_flight.size());
    rto_backoff_ = std::min(rto_backoff_ + 1, max_backoff);
    rto_started_ = now;
    next_send_ = now;
  } else if (auto at = loss_probe_at(); at && now >= *at) {
    // Loss probe (RFC 9002 6.2): the RTO's wait without its floor, which is there for a
    // timeout's cost (every unit resent, the window at its minimum). A probe costs one unit: the
    // oldest waiting is resent, the window stays; its acknowledgement reveals any loss behind it.
    for (auto& u : buf().in_flight) {
      if (u.acked || u.lost) continue;
      u.lost = u.loss_probed = true;
      --outstanding_;
      ++lost_pending_;
      break;
    }
    loss_probes_ = std::min(loss_probes_ + 1, max_backoff);
    ++counters_.loss_probes;
  }
}

std::optional<time_point> reliable_channel::next_deadline() const {
  if (timed_out_) return std::nullopt;
  time_point next = std::min(last_heard_ + config_->idle_timeout, last_sent_any_ + config_->keepalive);
  if (ack_due_) next = std::min(next, *ack_due_);
  if (ack_now_) next = std::min(next, last_sent_any_);
  if (!config_->lossless) {
    if (outstanding_ > 0) next = std::min(next, rto_started_ + rto());
    if (auto at = loss_probe_at()) next = std::min(next, *at);
    if (loss_time_) next = std::min(next, *loss_time_);
  }
  if ((lost_pending_ > 0 || may_send_new()) && next_send_ > time_point{})
    next = std::min(next, next_send_);
  if (!config_->lossless && peer_window_ == 0 && !view().send_queue.empty() && outstanding_ == 0 &&
      lost_pending_ == 0)
    next = std::min(next, last_sent_any_ + rto());
  return next;
}

}  // namespace kadnet::core
