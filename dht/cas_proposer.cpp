#include "kadnet/dht/cas_proposer.hpp"

#include <algorithm>
#include <stdexcept>

#include "kadnet/core/errors.hpp"
#include "kadnet/dht/dht_codec.hpp"

namespace kadnet::dht {
namespace {

namespace wire = core::wire;
using core::errc;

bool nacked_with(const core::reply& r, wire::nack_code code) {
  return r.ec == errc::nack && r.code == code;
}

}  // namespace

cas_proposer::cas_proposer(settings s, std::uint64_t expected_version, byte_vector value)
    : settings_(std::move(s)), expected_(expected_version), cas_value_(std::move(value)) {
  if (!settings_.random) throw std::invalid_argument("cas_proposer: no random source");
}

cas_proposer::cas_proposer(settings s, update_function fn)
    : settings_(std::move(s)), update_(std::move(fn)) {
  if (!settings_.random) throw std::invalid_argument("cas_proposer: no random source");
  if (!update_) throw std::invalid_argument("cas_proposer: no update function");
}

cas_proposer::action cas_proposer::next(core::time_point now) {
  now_ = now;
  for (;;) {
    if (!to_send_.empty()) {
      send s = std::move(to_send_.front());
      to_send_.pop_front();
      return s;
    }
    if (result_) return finished{*result_};
    switch (stage_) {
      case stage::start:
        if (settings_.replicas == 0) {
          finish(errc::not_connected, {});
          continue;
        }
        start_read();
        continue;
      case stage::backoff:
        if (now < wake_) return waiting{wake_};
        switch (after_backoff_) {
          case resume::read: start_read(); break;
          case resume::prepare: start_prepare(); break;
          case resume::next_slot: on_current(base_); break;
        }
        continue;
      default:
        return waiting{std::nullopt};  // replies will come: the driver reports every request
    }
  }
}

void cas_proposer::on_reply(std::size_t replica, std::uint64_t tag, const core::reply& r,
                            core::time_point now) {
  if (result_ || tag == 0 || tag != tag_ || replica >= answered_.size() || answered_[replica]) return;
  answered_[replica] = true;
  now_ = now;
  switch (stage_) {
    case stage::read: on_read_reply(r); break;
    case stage::prepare: on_prepare_reply(r); break;
    case stage::accept: on_accept_reply(r); break;
    default: return;
  }
  if (!result_) check_failed();
}

// --- the exchanges ---

bool cas_proposer::begin_attempt(stage s) {
  if (attempts_ >= settings_.config.max_attempts) {
    // Out of attempts: the last thing learned stands.
    finish(errc::no_quorum, base_, false, my_accept_sent_);
    return false;
  }
  ++attempts_;
  if (s == stage::read) ++reads_;
  open_exchange(s);
  return true;
}

void cas_proposer::open_exchange(stage s) {
  stage_ = s;
  ++tag_;  // replies to anything sent before are ignored from now on
  answered_.assign(settings_.replicas, false);
  yes_ = no_ = 0;
  locked_by_.reset();
}

void cas_proposer::send_all(const wire::message_body& body, std::uint64_t tag) {
  for (std::size_t i = 0; i < settings_.replicas; ++i) to_send_.push_back(send{i, tag, body});
  messages_ += settings_.replicas;
}

wire::store cas_proposer::consensus_store(wire::consensus_phase phase, const byte_vector& value,
                                          const proposal_id& proposal) const {
  wire::store s;
  s.key = settings_.key;
  s.version = slot();
  s.ttl_seconds = static_cast<std::uint32_t>(std::clamp<std::int64_t>(settings_.ttl.count(), 1, UINT32_MAX));
  s.value = value;
  s.consensus = wire::store_consensus{phase, round_, settings_.self, proposal};
  return s;
}

void cas_proposer::start_read() {
  if (!begin_attempt(stage::read)) return;
  best_read_.reset();
  send_all(wire::find_value{settings_.key}, tag_);
}

void cas_proposer::start_prepare() {
  // Rounds never wrap: any peer can make a replica promise the highest round there is, and a
  // round past it would be 0 again, reusing ballots already used. With no round left above the
  // highest seen (0 from take_round), the proposer gives up.
  const std::uint64_t above = std::max(round_, highest_round_seen_);
  const std::uint64_t next = above == UINT64_MAX  ? 0
                             : settings_.take_round ? settings_.take_round(above)
                                                    : above + 1;
  if (next == 0) return finish(errc::no_quorum, base_, false, my_accept_sent_);
  if (!begin_attempt(stage::prepare)) return;
  round_ = next;
  highest_accepted_.reset();
  // The base travels with the prepare: a replica that lags stores it before it promises.
  send_all(consensus_store(wire::consensus_phase::prepare, base_.value, my_proposal_), tag_);
}

void cas_proposer::start_accept(byte_vector value, const proposal_id& proposal) {
  // Not a new attempt: the same round goes on with its second phase.
  open_exchange(stage::accept);
  proposing_value_ = std::move(value);
  proposing_ = proposal;
  if (proposing_ == my_proposal_) my_accept_sent_ = true;
  send_all(consensus_store(wire::consensus_phase::accept, proposing_value_, proposing_), tag_);
}

void cas_proposer::chosen() {
  // Replicas learn the decision; nobody waits for them (a lagging one learns from the next
  // prepare's base, or a conflict tells its proposer).
  send_all(consensus_store(wire::consensus_phase::commit, proposing_value_, proposing_), 0);
  versioned_value now_current{slot(), proposing_value_};
  if (proposing_ == my_proposal_) {
    finish({}, std::move(now_current), true);
    return;
  }
  // We completed another writer's value: the slot is theirs.
  lost_slot(std::move(now_current));
}

void cas_proposer::on_current(versioned_value current) {
  if (expected_) {
    if (current.version != *expected_) return finish(errc::cas_conflict, std::move(current));
    mine_ = cas_value_;
  } else {
    std::optional<versioned_value> arg;
    if (current.version != 0) arg = current;
    auto next = update_(arg);
    if (!next) return finish({}, std::move(current));
    mine_ = std::move(*next);
  }
  if (mine_.size() > settings_.max_value_size) return finish(errc::too_large, std::move(current));
  base_ = std::move(current);
  value_since_ = now_;
  settings_.random(my_proposal_);
  my_accept_sent_ = false;
  undecided_.reset();
  start_prepare();
}

// --- replies ---

void cas_proposer::on_read_reply(const core::reply& r) {
  find_value_reply reply;
  // status 2 answers only a listen request: from a read it is a broken reply.
  if (r.ec || decode_find_value_reply(r.data, reply, settings_.max_value_size) ||
      std::holds_alternative<wire_current>(reply)) {
    ++no_;
    return;
  }
  versioned_value read;  // a replica without the value holds version 0
  if (auto* v = std::get_if<wire_value>(&reply)) {
    if (v->owner) return finish(errc::owned_key, {});
    read = versioned_value{v->version, std::move(v->value)};
  }
  if (!best_read_ || read.version > best_read_->version) best_read_ = std::move(read);
  if (++yes_ < majority()) return;
  failures_in_a_row_ = 0;
  on_current(std::move(*best_read_));
}

void cas_proposer::on_prepare_reply(const core::reply& r) {
  if (!r.ec) {
    cas_promise p;
    if (decode_promise(r.data, p, settings_.max_value_size)) {
      ++no_;
      return;
    }
    if (p.accepted && (!highest_accepted_ || highest_accepted_->by < p.accepted->by))
      highest_accepted_ = std::move(p.accepted);
    if (++yes_ < majority()) return;
    // Paxos: a value accepted by anyone in this majority may have been chosen; finish it.
    if (highest_accepted_) start_accept(std::move(highest_accepted_->value), highest_accepted_->proposal);
    else start_accept(mine_, my_proposal_);
    return;
  }
  if (nacked_with(r, wire::nack_code::version_conflict)) {
    cas_conflict c;
    if (!decode_conflict(r.data, c, settings_.max_value_size)) return on_decided(c);
  }
  on_outbid(r);
}

void cas_proposer::on_accept_reply(const core::reply& r) {
  if (!r.ec) {
    if (++yes_ >= majority()) chosen();
    return;
  }
  if (nacked_with(r, wire::nack_code::version_conflict)) {
    cas_conflict c;
    if (!decode_conflict(r.data, c, settings_.max_value_size)) return on_decided(c);
  }
  on_outbid(r);
}

void cas_proposer::on_decided(const cas_conflict& c) {
  versioned_value current{c.version, c.value};
  if (c.version >= slot()) {
    if (c.writer == my_proposal_) return finish({}, versioned_value{slot(), mine_}, true);
    if (!c.writer && my_accept_sent_) {
      // Decided, but by whom is forgotten and it may be us: other replicas may remember.
      undecided_ = std::move(current);
      ++no_;
      return;
    }
  }
  // Another writer's slot (or, below the slot, the same version with other bytes written outside
  // compare-and-swap).
  lost_slot(std::move(current));
}

void cas_proposer::lost_slot(versioned_value current) {
  if (expected_) return finish(errc::cas_conflict, std::move(current));
  // A short random pause before the next slot, so that the losers do not all prepare it at once.
  ++failures_in_a_row_;
  base_ = std::move(current);
  back_off(resume::next_slot);
}

void cas_proposer::on_outbid(const core::reply& r) {
  ballot promised;
  lock_refusal lease;
  if (nacked_with(r, wire::nack_code::locked)) {
    if (!decode_ballot(r.data, promised)) highest_round_seen_ = std::max(highest_round_seen_, promised.round);
    else if (!decode_lock_refusal(r.data, lease) && (!locked_by_ || locked_by_->remaining < lease.remaining))
      locked_by_ = lease;
  }
  ++no_;
}

void cas_proposer::check_failed() {
  if (stage_ != stage::read && stage_ != stage::prepare && stage_ != stage::accept) return;
  if (no_ <= settings_.replicas - majority()) return;  // a majority may still come
  if (undecided_) {
    // Nobody could say whether the slot went to us: report it rather than risk writing twice.
    finish(errc::no_quorum, *undecided_, false, true);
    return;
  }
  if (locked_by_) {
    // Another node's lease runs at replicas we needed: retrying now would only be refused again.
    auto held = *locked_by_;
    finish(errc::locked, base_, false, my_accept_sent_);
    result_->locked_by = held;
    return;
  }
  ++failures_in_a_row_;
  back_off(stage_ == stage::read ? resume::read : resume::prepare);
}

void cas_proposer::back_off(resume then) {
  auto cap = settings_.config.backoff_min.count();
  for (std::size_t i = 1; i < failures_in_a_row_ && cap < settings_.config.backoff_max.count(); ++i) cap *= 2;
  cap = std::min<std::int64_t>(cap, settings_.config.backoff_max.count());
  std::uint64_t draw = 0;
  settings_.random(mutable_byte_span(reinterpret_cast<std::uint8_t*>(&draw), sizeof draw));
  auto wait = cap > 0 ? static_cast<std::int64_t>(draw % static_cast<std::uint64_t>(cap + 1)) : 0;
  stage_ = stage::backoff;
  after_backoff_ = then;
  wake_ = now_ + std::chrono::milliseconds(wait);
}

void cas_proposer::finish(boost::system::error_code ec, versioned_value current, bool written,
                          bool maybe_written) {
  cas_outcome o;
  o.ec = ec;
  o.version = current.version;
  if (current.version != 0) o.value = std::move(current.value);
  o.written = written;
  o.maybe_written = maybe_written;
  o.attempts = attempts_;
  o.reads = reads_;
  o.messages = messages_;
  o.value_since = value_since_;
  result_ = std::move(o);
  stage_ = stage::done;
}

}  // namespace kadnet::dht
