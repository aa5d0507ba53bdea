// Locks through dht::dht_node (lock / renew / unlock, docs/PROTOCOL.md 8.9) on the in-memory
// network of tests/support/dht_network.hpp, on virtual time: grant, refusal naming the holder,
// other nodes' writes refused, renew and unlock rules, expiry of a crashed holder's lease, and the
// issue's test — 16 clients on 16 nodes contend for one lock while a history checker proves that
// no two leases overlap and that tokens only grow, with and without 10 % loss and with a holder
// killed mid-lease. Fixed seeds, printed on failure.
#include "kadnet/dht/dht_node.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kadnet/core/errors.hpp"
#include "tests/support/dht_network.hpp"
#include "tests/support/lock_history.hpp"

namespace kadnet::dht {
namespace {

using namespace std::chrono_literals;
using core::errc;
using core::node_id;
using testing::dht_network;
using testing::lease_interval;

constexpr std::uint64_t default_seed = 0x6c6f636bull;  // "lock"

std::string seed_text(std::uint64_t seed) { return "seed " + std::to_string(seed); }

std::unique_ptr<dht_network> joined_network(std::uint64_t seed, std::size_t n) {
  auto net = std::make_unique<dht_network>(seed);
  for (std::size_t i = 0; i < n; ++i) net->add_node();
  net->join_all();
  net->set_delay(10ms);
  return net;
}

const node_id lock_key = node_id::hash_of(as_bytes("the lock"));

TEST(DhtLock, GrantRefuseRenewUnlockRegrant) {
  SCOPED_TRACE(seed_text(default_seed));
  auto net = joined_network(default_seed, 30);
  const auto a = net->node(3).identity.id();

  auto granted = net->lock(3, lock_key, 5s);
  ASSERT_FALSE(granted.ec) << granted.ec.message();
  EXPECT_EQ(granted.token, 1u);
  EXPECT_EQ(granted.holder, a);
  EXPECT_LE(granted.expires_at, granted.granted_at + 5s);
  EXPECT_GT(granted.expires_at, granted.granted_at);

  // Another node is refused, and told by whom and for how long at most.
  auto refused = net->lock(17, lock_key, 5s);
  EXPECT_EQ(refused.ec, errc::locked);
  EXPECT_EQ(refused.holder, a);
  EXPECT_EQ(refused.token, 1u);
  EXPECT_GT(refused.remaining, 0ms);
  EXPECT_LE(refused.remaining, 5s);

  // Its other writes to the key are refused too: compare-and-swap, update and a plain put.
  auto cas = net->update(17, lock_key, [](const auto&) { return std::optional<byte_vector>(byte_vector{9}); });
  EXPECT_EQ(cas.ec, errc::locked);
  EXPECT_FALSE(cas.written);
  auto put = net->put(17, lock_key, byte_vector{1, 2, 3});
  EXPECT_EQ(put.ec, errc::locked) << put.replicas << " replicas took version " << put.version;

  // Only the holder renews or unlocks, and only its own grant.
  EXPECT_EQ(net->renew(17, lock_key, 1, 5s).ec, errc::not_lock_holder);
  EXPECT_EQ(net->unlock(17, lock_key, 1).ec, errc::not_lock_holder);
  EXPECT_EQ(net->renew(3, lock_key, 2, 5s).ec, errc::not_lock_holder);

  net->advance(3s);
  auto renewed = net->renew(3, lock_key, 1, 5s);
  ASSERT_FALSE(renewed.ec) << renewed.ec.message();
  EXPECT_EQ(renewed.token, 1u);
  EXPECT_GT(renewed.expires_at, granted.expires_at);
  net->advance(3s);  // past the first lease, inside the renewed one
  EXPECT_EQ(net->lock(17, lock_key, 5s).ec, errc::locked);

  ASSERT_FALSE(net->unlock(3, lock_key, 1).ec);
  EXPECT_FALSE(net->unlock(3, lock_key, 1).ec) << "unlocking a released grant again is done already";
  auto next = net->lock(17, lock_key, 5s);
  ASSERT_FALSE(next.ec) << next.ec.message();
  EXPECT_EQ(next.token, 2u);
  EXPECT_EQ(next.holder, net->node(17).identity.id());
  // The old holder's token is dead.
  EXPECT_EQ(net->renew(3, lock_key, 1, 5s).ec, errc::not_lock_holder);
}

TEST(DhtLock, ACrashedHoldersLeaseExpiresAndFreesTheLock) {
  SCOPED_TRACE(seed_text(default_seed + 1));
  auto net = joined_network(default_seed + 1, 30);
  auto first = net->lock(5, lock_key, 2s);
  ASSERT_FALSE(first.ec) << first.ec.message();
  net->kill(5);
  EXPECT_EQ(net->lock(9, lock_key, 2s).ec, errc::locked);
  net->run_until(first.expires_at, {});
  // Replicas count from when they got the record, a little after the holder made it.
  dht::lock_outcome next;
  for (int tries = 0; tries < 20; ++tries) {
    next = net->lock(9, lock_key, 2s);
    if (next.ec != errc::locked) break;
    net->advance(50ms);
  }
  ASSERT_FALSE(next.ec) << next.ec.message();
  EXPECT_EQ(next.token, first.token + 1);
  EXPECT_GE(next.granted_at, first.expires_at);
  // Each attempt's lookup waits out the dead node's slot timeout (1 s): a few attempts' worth.
  EXPECT_LT(next.granted_at, first.expires_at + 5s);
}

TEST(DhtLock, LockOnAKeyHoldingAnotherValueIsRefused) {
  auto net = joined_network(default_seed + 2, 20);
  ASSERT_FALSE(net->cas(2, lock_key, 0, byte_vector{'x'}).ec);
  EXPECT_EQ(net->lock(4, lock_key, 1s).ec, errc::not_a_lock);
  EXPECT_THROW(net->node(4).dht->lock(lock_key, 0ms, net->now()), std::invalid_argument);
  EXPECT_THROW(net->node(4).dht->lock(lock_key, 25h, net->now()), std::invalid_argument);
}

// --- the test: 16 clients contend; a history checker over every grant ---

struct contention_result {
  std::size_t grants = 0, refusals = 0, other_failures = 0;
  std::size_t rounds_lost = 0;  // rounds the killed client never ran
  std::vector<lease_interval> history;
};

// 16 clients on 16 different nodes each want the lock `rounds` times: lock (retrying after a
// random pause while it is locked), hold it for a while (renewing once, half of the time), unlock.
// With `kill_at_grant`, the holder of that grant (counting from 1) is killed mid-lease instead of
// unlocking; the next grant must start after its lease's end and carry a larger token.
contention_result contend(std::uint64_t seed, double loss, std::size_t kill_at_grant = 0) {
  SCOPED_TRACE(seed_text(seed));
  auto net = joined_network(seed, 24);
  net->set_loss(loss);
  constexpr std::size_t clients = 16, rounds = 3;
  constexpr auto lease = 1500ms;
  std::mt19937_64 rng(seed);
  auto ms_between = [&](int lo, int hi) { return std::chrono::milliseconds(std::uniform_int_distribution<int>(lo, hi)(rng)); };

  enum class phase { idle, locking, holding, renewing, unlocking, done, dead };
  struct client {
    std::size_t node;
    std::size_t left = rounds;
    phase state = phase::idle;
    operation_id op = 0;
    std::uint64_t token = 0;
    std::size_t interval = 0;  // index of its current interval in the history
    bool will_renew = false;
  };
  std::vector<client> all;
  for (std::size_t c = 0; c < clients; ++c) all.push_back(client{c + 1});  // nodes 1..16

  contention_result out;
  std::optional<core::time_point> killed_lease_end;
  std::optional<std::uint64_t> killed_token;
  const auto deadline = net->now() + 10min;

  std::function<void(std::size_t)> try_lock = [&](std::size_t c) {
    all[c].state = phase::locking;
    all[c].op = net->start(all[c].node, [&](dht_node& d, core::time_point now) { return d.lock(lock_key, lease, now); });
  };
  auto release = [&](std::size_t c) {
    client& cl = all[c];
    auto& iv = out.history[cl.interval];
    iv.end = std::min(iv.end, net->now());  // stops counting on the lock as the unlock starts
    cl.state = phase::unlocking;
    cl.op = net->start(cl.node, [&, token = cl.token](dht_node& d, core::time_point now) { return d.unlock(lock_key, token, now); });
  };

  for (std::size_t c = 0; c < clients; ++c) net->at(net->now() + ms_between(0, 50), [&, c] { try_lock(c); });

  net->run_until(deadline, [&] {
    bool all_done = true;
    for (std::size_t c = 0; c < clients; ++c) {
      client& cl = all[c];
      if (cl.state == phase::done || cl.state == phase::dead) continue;
      all_done = false;
      if (cl.state == phase::idle || cl.state == phase::holding) continue;
      auto& done = net->node(cl.node).done;
      auto it = done.find(cl.op);
      if (it == done.end()) continue;
      auto r = std::get<lock_outcome>(it->second.result);
      done.erase(it);
      const auto now = net->now();
      switch (cl.state) {
        case phase::locking: {
          if (r.ec) {
            ++(r.ec == errc::locked ? out.refusals : out.other_failures);
            cl.state = phase::idle;
            net->at(now + ms_between(50, 400), [&, c] { try_lock(c); });
            break;
          }
          ++out.grants;
          EXPECT_EQ(r.holder, net->node(cl.node).identity.id());
          cl.token = r.token;
          cl.interval = out.history.size();
          out.history.push_back(lease_interval{c, r.token, r.granted_at, r.expires_at, false});
          if (killed_lease_end) {
            EXPECT_GE(r.granted_at, *killed_lease_end) << "granted inside the killed holder's lease";
            killed_lease_end.reset();
          }
          cl.state = phase::holding;
          if (kill_at_grant && out.grants == kill_at_grant) {
            // The holder crashes mid-lease: it never unlocks; its lease must run out first.
            net->at(now + lease / 3, [&, c] {
              killed_lease_end = out.history[all[c].interval].end;
              killed_token = all[c].token;
              out.rounds_lost = all[c].left - 1;
              all[c].state = phase::dead;
              net->kill(all[c].node);
            });
            break;
          }
          cl.will_renew = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
          net->at(now + ms_between(20, 300), [&, c] {
            client& h = all[c];
            if (h.state != phase::holding) return;
            if (!h.will_renew) return release(c);
            h.state = phase::renewing;
            h.op = net->start(h.node, [&, token = h.token](dht_node& d, core::time_point t) { return d.renew(lock_key, token, lease, t); });
          });
          break;
        }
        case phase::renewing: {
          auto& iv = out.history[cl.interval];
          if (!r.ec) {
            if (r.granted_at <= iv.end) {
              iv.end = std::max(iv.end, r.expires_at);
            } else {  // the renewal came after its lease ran out: a new interval of the same grant
              cl.interval = out.history.size();
              out.history.push_back(lease_interval{c, cl.token, r.granted_at, r.expires_at, true});
            }
          } else {
            EXPECT_TRUE(r.ec == errc::no_quorum || r.ec == errc::not_lock_holder) << r.ec.message();
          }
          cl.state = phase::holding;
          net->at(now + ms_between(20, 300), [&, c] {
            if (all[c].state == phase::holding) release(c);
          });
          break;
        }
        case phase::unlocking:
          if (r.ec) ++out.other_failures;  // the lease then simply runs out
          if (--cl.left == 0) {
            cl.state = phase::done;
          } else {
            cl.state = phase::idle;
            net->at(now + ms_between(50, 400), [&, c] { try_lock(c); });
          }
          break;
        default:
          break;
      }
    }
    return all_done;
  });
  for (const client& cl : all)
    EXPECT_TRUE(cl.state == phase::done || cl.state == phase::dead) << "client on node " << cl.node << " did not finish";
  if (killed_token) {
    // The grant after the crash came after the crashed lease and with a larger token.
    auto after = std::find_if(out.history.begin(), out.history.end(),
                              [&](const lease_interval& g) { return !g.renewal && g.token > *killed_token; });
    EXPECT_NE(after, out.history.end()) << "no grant after the holder was killed";
    EXPECT_FALSE(killed_lease_end) << "the lock was not granted again after the holder was killed";
  }
  testing::check_lock_history(out.history);
  std::printf("lock contention (loss %.0f%%%s): %zu grants, %zu refusals, %zu other failures, %llu messages\n",
              loss * 100, kill_at_grant ? ", holder killed" : "", out.grants, out.refusals, out.other_failures,
              static_cast<unsigned long long>(net->messages()));
  return out;
}

TEST(DhtLock, SixteenClientsNeverHoldOverlappingLeases) {
  auto r = contend(default_seed + 10, 0);
  EXPECT_EQ(r.grants, 48u);
  EXPECT_EQ(r.other_failures, 0u);
}

TEST(DhtLock, SixteenClientsNeverHoldOverlappingLeasesWithTenPercentLoss) {
  auto r = contend(default_seed + 11, 0.1);
  EXPECT_EQ(r.grants, 48u);
}

TEST(DhtLock, AHolderKilledMidLeaseIsFollowedAfterItsLeaseWithALargerToken) {
  auto r = contend(default_seed + 12, 0, 5);
  EXPECT_EQ(r.grants, 48u - r.rounds_lost);
}

}  // namespace
}  // namespace kadnet::dht
