// node_driver's DHT side: routes session events and DHT requests between the engine and the
// sans-I/O dht_node, sends the requests the DHT wants over existing sessions or new dials, and
// completes DHT operations. (Split from node_driver.cpp: one concern per file.)
#include "kadnet/transports/node_driver.hpp"

#include <algorithm>

#include "kadnet/core/errors.hpp"
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include "kadnet/dht/engine_bridge.hpp"

namespace kadnet::transports {

namespace asio = boost::asio;

using core::errc;

bool is_dht_request(std::uint8_t op) { return dht::is_dht_request(op); }

void node_driver::on_dht_event(core::node_engine::event& ev) {
  if (dht_) dht::feed_engine_event(*dht_, engine_, ev, std::chrono::steady_clock::now());
}

bool node_driver::pump_dht() {
  if (!dht_ || stopped_) return false;
  bool progress = false;
  // A completion handler may stop the node (dht_ gone) from inside these loops.
  while (dht_ && !stopped_) {
    auto out = dht_->poll_request();
    if (!out) break;
    progress = true;
    send_dht_request(std::move(*out));
  }
  while (dht_ && !stopped_) {
    auto done = dht_->poll_event();
    if (!done) break;
    progress = true;
    auto it = dht_ops_.find(done->id);
    if (it == dht_ops_.end()) continue;  // an operation the DHT runs for itself
    auto waiter = std::move(it->second);
    dht_ops_.erase(it);
    if (waiter.call != 0) dht_calls_.erase(waiter.call);
    waiter.done(*done);
  }
  if (deliver_shouts()) progress = true;
  if (deliver_listens()) progress = true;
  return progress;
}

bool node_driver::deliver_listens() {
  bool any = false;
  while (dht_ && !stopped_) {
    auto delivery = dht_->poll_listen();
    if (!delivery) break;
    any = true;
    if (!listen_handlers_.contains(delivery->subscription)) continue;
    asio::post(strand_, [self = shared_from_this(), d = std::move(*delivery)] {
      if (self->stopped_) return;
      // Looked up again: the subscription may have been cancelled since.
      auto it = self->listen_handlers_.find(d.subscription);
      if (it != self->listen_handlers_.end()) it->second(d);
    });
  }
  return any;
}

bool node_driver::cancel_listen(dht::operation_id subscription) {
  listen_handlers_.erase(subscription);
  if (!dht_ || stopped_) return false;
  bool known = dht_->cancel(subscription, std::chrono::steady_clock::now());
  pump();
  return known;
}

void node_driver::send_dht_request(dht::dht_node::outgoing out) {
  auto token = out.token;
  auto report = [this, token](boost::system::error_code ec, core::reply r) {
    if (!dht_) return;
    if (ec && !r.ec) r.ec = ec;
    dht_->on_reply(token, r, std::chrono::steady_clock::now());
  };
  // Over the session we have with it; else dial the first address we can parse, checking that
  // whoever answers holds the contact's key.
  if (auto c = engine_.connection_to(out.to.id)) {
    auto id = engine_.request(std::chrono::steady_clock::now(), *c, out.opcode, std::move(out.body), out.timeout);
    requests_.emplace(id, reply_handler(std::move(report)));
    return;
  }
  for (const auto& text : out.to.addresses) {
    auto where = parse_uri(text);
    if (!where) continue;
    auto body = std::make_shared<core::wire::message_body>(std::move(out.body));
    auto opcode = out.opcode;
    dial(*where, out.to.id,
         [this, body, opcode, timeout = out.timeout, report = std::move(report)](boost::system::error_code ec,
                                                                                 core::connection_id c) mutable {
           if (ec) {
             core::reply r;
             r.ec = ec;
             return report(ec, std::move(r));
           }
           auto id = engine_.request(std::chrono::steady_clock::now(), c, opcode, std::move(*body), timeout);
           requests_.emplace(id, reply_handler(std::move(report)));
           pump();
         });
    return;
  }
  core::reply r;
  r.ec = errc::not_connected;
  report(r.ec, std::move(r));
}

void node_driver::run_dht(std::function<dht::operation_id(dht::dht_node&, core::time_point)> start,
                          dht_done done, std::uint64_t call) {
  if (!dht_ || stopped_) {
    dht::dht_node::operation_done failed{0, dht::get_result{stopped_ ? errc::shutting_down : errc::dht_disabled, std::nullopt, {}}};
    return done(failed);
  }
  auto id = start(*dht_, std::chrono::steady_clock::now());
  dht_ops_.emplace(id, dht_waiter{std::move(done), call});
  if (call != 0) dht_calls_.emplace(call, id);
  pump();
}

void node_driver::cancel_dht(std::uint64_t call) {
  auto found = dht_calls_.find(call);
  if (found == dht_calls_.end()) return;  // done already
  const dht::operation_id id = found->second;
  dht_calls_.erase(found);
  auto it = dht_ops_.find(id);
  if (it == dht_ops_.end()) return;
  auto waiter = std::move(it->second);
  dht_ops_.erase(it);
  if (dht_) dht_->abandon(id);
  dht::dht_node::operation_done aborted{id, dht::get_result{boost::asio::error::operation_aborted, std::nullopt, {}}};
  waiter.done(aborted);
  pump();
}

void node_driver::save_dht_snapshot() {
  if (!sqlite_ || !dht_) return;
  // An empty table (a restart that has not rejoined yet) would only wipe the snapshot it needs.
  auto contacts = dht_->table().all();
  if (contacts.empty()) return;
  // A table still filling (a restart that reached few contacts so far) keeps the saved ones
  // behind its own, up to the k a rejoin dials: a stop now must not leave it fewer to dial.
  if (contacts.size() < dht::default_k) {
    for (auto& saved : sqlite_->load_contacts()) {
      if (contacts.size() >= dht::default_k) break;
      if (std::none_of(contacts.begin(), contacts.end(), [&](const dht::contact& c) { return c.id == saved.id; }))
        contacts.push_back(std::move(saved));
    }
  }
  sqlite_->save_contacts(contacts);
}

void node_driver::save_dht_snapshot_if_due() {
  if (!sqlite_ || !dht_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_snapshot_) return;
  next_snapshot_ = now + snapshot_interval_;
  save_dht_snapshot();
}

void node_driver::dial_all(std::vector<uri> targets, std::function<void(std::size_t, boost::system::error_code)> then) {
  if (targets.empty()) return then(0, {});
  struct tally {
    std::size_t pending, answered = 0;
    boost::system::error_code last;
    std::function<void(std::size_t, boost::system::error_code)> then;
  };
  auto t = std::make_shared<tally>(tally{targets.size(), 0, {}, std::move(then)});
  for (auto& where : targets) {
    connect(std::move(where), std::nullopt, 0, [t](boost::system::error_code ec, core::node_id) {
      if (ec) t->last = ec;
      else ++t->answered;
      if (--t->pending == 0) t->then(t->answered, t->last);
    });
  }
}

void node_driver::rejoin_from_snapshot(std::function<void(std::size_t)> then) {
  std::vector<std::pair<uri, core::node_id>> targets;
  if (sqlite_ && dht_) {
    for (const auto& c : sqlite_->load_contacts()) {
      for (const auto& text : c.addresses) {
        if (auto where = parse_uri(text)) {
          targets.emplace_back(*where, c.id);
          break;
        }
      }
      if (targets.size() == dht::default_k) break;
    }
  }
  if (targets.empty()) return then(0);
  // A restarted node dials the contacts it knew; each that answers is back in its table.
  struct tally {
    std::size_t pending, answered = 0;
    std::function<void(std::size_t)> then;
  };
  auto t = std::make_shared<tally>(tally{targets.size(), 0, std::move(then)});
  for (auto& [where, id] : targets) {
    dial(where, id, [t](boost::system::error_code ec, core::connection_id) {
      if (!ec) ++t->answered;
      if (--t->pending == 0) t->then(t->answered);
    });
  }
}

}  // namespace kadnet::transports
