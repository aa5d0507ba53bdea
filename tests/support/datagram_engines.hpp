#pragma once
// Node engines joined by an in-memory datagram network on virtual time: the sans-I/O
// counterpart of nodes over UDP. Every datagram takes `delay` (plus up to `jitter`, which
// reorders) and is lost with probability `loss` (seeded), or dropped by a `filter`. run() jumps
// from event to event (a delivery or an engine's deadline) until a condition holds.
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "kadnet/core/node_engine.hpp"
#include "tests/support/fixed_keys.hpp"

namespace kadnet::testing {

class datagram_engines {
 public:
  struct datagram { std::size_t from, to; byte_vector bytes; };
  // Returns false to drop a datagram (after the random loss).
  using filter_fn = std::function<bool(const datagram&)>;

  explicit datagram_engines(std::uint64_t seed = 1) : rng_(seed) {}

  // Adds an engine at address ::ffff:127.0.0.<index+1>, port 4000 (bytes only: nothing is sent).
  std::size_t add(core::node_config config = {}, int key_seed = -1) {
    std::size_t i = engines_.size();
    ids_.push_back(std::make_unique<core::identity>(fixed_identity(key_seed >= 0 ? key_seed : static_cast<int>(i) + 1)));
    engines_.push_back(std::make_unique<core::node_engine>(*ids_.back(), config));
    events.emplace_back();
    return i;
  }
  // Replaces engine i by a fresh one (a restarted process at the same address).
  void restart(std::size_t i, core::node_config config = {}, int key_seed = 100) {
    ids_[i] = std::make_unique<core::identity>(fixed_identity(key_seed));
    engines_[i] = std::make_unique<core::node_engine>(*ids_[i], config);
    std::erase_if(wire_, [&](const auto& kv) { return kv.second.to == i || kv.second.from == i; });
  }
  core::node_engine& operator[](std::size_t i) { return *engines_[i]; }

  static byte_vector address(std::size_t i) {
    byte_vector a(18, 0);
    a[10] = a[11] = 0xff;
    a[12] = 127;
    a[15] = static_cast<std::uint8_t>(i + 1);
    a[16] = 0x0f;
    a[17] = 0xa0;
    return a;
  }
  std::size_t index_of(byte_span a) const { return a[15] - 1u; }

  core::connection_id dial(std::size_t from, std::size_t to, std::optional<core::node_id> expected = std::nullopt) {
    auto c = engines_[from]->dial_datagram(now, expected, address(to));
    pump();
    return c;
  }

  // Injects raw bytes as if `from` had sent them to `to`.
  void inject(std::size_t from, std::size_t to, byte_vector bytes) {
    engines_[to]->on_datagram(now, address(from), bytes);
    pump();
  }

  // Sends what every engine queued, and records their events; `after_pump` (if set) runs each
  // round and returns true if it did something (an application reading its streams, say).
  void pump() {
    for (bool moved = true; moved;) {
      moved = after_pump && after_pump();
      for (std::size_t i = 0; i < engines_.size(); ++i) {
        auto& e = *engines_[i];
        for (auto c : e.take_dirty()) {
          byte_vector packets = e.take_transmit(c);
          std::size_t to = index_of(e.transport_address(c));
          for (std::size_t off = 0; off + 4 <= packets.size();) {
            std::size_t len = 4 + ((std::size_t{packets[off + 2]} << 8) | packets[off + 3]);
            send(datagram{i, to, byte_vector(packets.begin() + off, packets.begin() + off + len)});
            off += len;
          }
          if (e.wants_close(c)) e.on_transport_closed(c, {});
          moved = true;
        }
        while (auto ev = e.poll_event()) {
          events[i].push_back(std::move(*ev));
          moved = true;
        }
      }
    }
  }

  // Runs until `done` holds (true) or `limit` of virtual time passed (false).
  template <typename Done>
  bool run(Done done, std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    const core::time_point end = now + limit;
    pump();
    while (!done()) {
      core::time_point next = end;
      if (!wire_.empty()) next = std::min(next, wire_.begin()->first);
      for (auto& e : engines_)
        if (auto d = e->next_deadline()) next = std::min(next, *d);
      if (next >= end) return false;
      now = std::max(now, next);
      while (!wire_.empty() && wire_.begin()->first <= now) {
        auto d = std::move(wire_.begin()->second);
        wire_.erase(wire_.begin());
        ++delivered;
        engines_[d.to]->on_datagram(now, address(d.from), d.bytes);
      }
      for (auto& e : engines_)
        if (auto d = e->next_deadline(); d && *d <= now) e->handle_timeout(now);
      pump();
    }
    return true;
  }

  // Runs until engine i's request `r` has its reply; nullopt if it got none within `limit`.
  std::optional<core::reply> reply_to(std::size_t i, core::request_id r,
                                      std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    std::optional<core::reply> got;
    run([&] {
      for (const auto& d : events_of<core::node_engine::request_done>(i))
        if (d.request == r) got = d.result;
      return got.has_value();
    }, limit);
    return got;
  }
  template <typename Event>
  std::vector<Event> events_of(std::size_t i) const {
    std::vector<Event> out;
    for (const auto& e : events[i])
      if (const auto* x = std::get_if<Event>(&e)) out.push_back(*x);
    return out;
  }

  core::time_point now{std::chrono::hours(1)};
  double loss = 0;
  std::chrono::microseconds delay{2000}, jitter{0};
  filter_fn filter;
  std::function<bool()> after_pump;
  std::vector<std::vector<core::node_engine::event>> events;
  std::size_t sent = 0, delivered = 0;

 private:
  void send(datagram d) {
    ++sent;
    if (loss > 0 && std::bernoulli_distribution(loss)(rng_)) return;
    if (filter && !filter(d)) return;
    auto extra = jitter.count() > 0 ? std::chrono::microseconds(std::uniform_int_distribution<long>(0, jitter.count())(rng_))
                                    : std::chrono::microseconds(0);
    wire_.emplace(now + delay + extra, std::move(d));
  }

  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<core::identity>> ids_;
  std::vector<std::unique_ptr<core::node_engine>> engines_;
  std::multimap<core::time_point, datagram> wire_;
};

}  // namespace kadnet::testing
