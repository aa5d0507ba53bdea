// SHOUT along the routing tables (dht/broadcast.hpp), on the in-memory DHT network: who gets a
// shout, how many copies, how many hops, what happens to forged ones and to dead delegates.
#include "dht/broadcast.hpp"

#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "dht/routing_table.hpp"
#include "tests/support/dht_network.hpp"
#include "tests/support/fixed_keys.hpp"

namespace kadnet::dht {
namespace {

using namespace std::chrono_literals;
using testing::dht_network;

byte_vector text(std::string_view s) { return byte_vector(s.begin(), s.end()); }

dht_network joined_network(std::size_t n, std::uint64_t seed, dht_config config = {}) {
  dht_network net(seed, config);
  for (std::size_t i = 0; i < n; ++i) net.add_node();
  net.join_all();
  // Let the joins' lookups and bucket refreshes settle, as a network that has run a while.
  net.advance(2h);
  return net;
}

// A SHOUT named (origin's id, sequence), signed by `signer` (the origin itself, or a forger).
core::wire::shout signed_shout(const core::node_id& origin, std::uint64_t sequence, byte_vector payload,
                               const core::identity& signer) {
  core::wire::shout s;
  s.origin = origin;
  s.sequence = sequence;
  s.payload = std::move(payload);
  s.sig = signer.sign(core::wire::shout_signed_bytes(s));
  return s;
}

std::size_t delivered_count(dht_network& net, const core::node_id& origin, std::uint64_t sequence) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < net.size(); ++i)
    for (const auto& d : net.node(i).shouts)
      if (d.origin == origin && d.sequence == sequence) ++n;
  return n;
}

TEST(Broadcast, EveryNodeGetsOneCopyOfAShout) {
  auto net = joined_network(300, 11);
  auto outcome = net.shout(5, text("to everyone"));
  ASSERT_FALSE(outcome.ec) << outcome.ec.message();
  EXPECT_GT(outcome.delegates, 0u);

  const auto& origin = net.node(5).identity.id();
  std::size_t max_hops = 0;
  for (std::size_t i = 0; i < net.size(); ++i) {
    const auto& got = net.node(i).shouts;
    if (i == 5) {
      EXPECT_TRUE(got.empty()) << "the origin does not deliver its own shout";
      EXPECT_EQ(net.node(i).shout_copies, 0u);
      continue;
    }
    ASSERT_EQ(got.size(), 1u) << "node " << i;
    EXPECT_EQ(got[0].origin, origin);
    EXPECT_EQ(got[0].sequence, outcome.sequence);
    EXPECT_EQ(got[0].payload, text("to everyone"));
    EXPECT_EQ(net.node(i).shout_copies, 1u) << "a tree: exactly one copy reaches node " << i;
    max_hops = std::max<std::size_t>(max_hops, got[0].hops);
  }
  EXPECT_LE(static_cast<double>(max_hops), 2 * std::log2(300.0));
}

TEST(Broadcast, ShoutsFromManyOriginsAllArrive) {
  auto net = joined_network(120, 12);
  std::vector<std::pair<std::size_t, std::uint64_t>> sent;
  for (std::size_t origin : {0, 17, 64, 119}) sent.emplace_back(origin, net.shout(origin, text("news")).sequence);
  for (auto [origin, sequence] : sent)
    EXPECT_EQ(delivered_count(net, net.node(origin).identity.id(), sequence), net.size() - 1);
}

TEST(Broadcast, DeadDelegatesHaveTheirPartsCoveredByOthers) {
  auto net = joined_network(300, 13);
  // A tenth of the nodes die without anyone noticing yet: tables still list them.
  std::vector<bool> dead(net.size(), false);
  for (std::size_t i = 3; i < net.size(); i += 10) {
    net.kill(i);
    dead[i] = true;
  }
  auto outcome = net.shout(0, text("still everyone"));
  ASSERT_FALSE(outcome.ec);
  std::uint64_t reassigned = 0, looked_up = 0;
  for (std::size_t i = 0; i < net.size(); ++i) {
    reassigned += net.node(i).dht->broadcast_stats().reassigned;
    looked_up += net.node(i).dht->broadcast_stats().repair_lookups;
    if (dead[i] || i == 0) continue;
    EXPECT_EQ(net.node(i).shouts.size(), 1u) << "live node " << i;
  }
  EXPECT_GT(reassigned, 0u) << "dead delegates were met and their parts handed on";
  EXPECT_GT(looked_up, 0u) << "some parts had no other known contact: found by lookups";
}

TEST(Broadcast, AForgedShoutIsRefusedAndGoesNowhere) {
  auto net = joined_network(60, 14);
  // Node 1 writes a shout in node 2's name: the signature is node 1's, not node 2's.
  auto forged = signed_shout(net.node(2).identity.id(), 99, text("I am node 2"), net.node(1).identity);
  core::reply r = net.request(1, 7, forged);
  EXPECT_EQ(r.ec, core::errc::nack);
  EXPECT_EQ(r.code, core::wire::nack_code::bad_request);

  // A genuine shout altered on the way (the payload changed after signing).
  auto altered = signed_shout(net.node(2).identity.id(), 100, text("original"), net.node(2).identity);
  altered.payload = text("altered!");
  EXPECT_EQ(net.request(1, 8, altered).ec, core::errc::nack);

  net.advance(1min);
  for (std::size_t i = 0; i < net.size(); ++i) {
    EXPECT_TRUE(net.node(i).shouts.empty()) << "node " << i;
    EXPECT_LE(net.node(i).shout_copies, 1u) << "nobody forwarded it";
  }
}

TEST(Broadcast, AReplayedShoutIsNotDeliveredAgain) {
  auto net = joined_network(40, 15);
  auto s = signed_shout(net.node(3).identity.id(), 5, text("once"), net.node(3).identity);
  EXPECT_FALSE(net.request(3, 9, s).ec);
  net.advance(1min);
  EXPECT_EQ(delivered_count(net, s.origin, 5), net.size() - 1) << "everyone but the origin";
  // Replayed later with a wider scope, to another node: everyone has it already.
  s.scope = 0;
  EXPECT_FALSE(net.request(1, 20, s).ec) << "a duplicate is acknowledged, not refused";
  net.advance(1min);
  EXPECT_EQ(delivered_count(net, s.origin, 5), net.size() - 1);
}

TEST(Broadcast, AnOriginOverItsRateIsRefused) {
  dht_config config;
  config.broadcast.origin_rate = 1;
  config.broadcast.origin_burst = 3;
  auto net = joined_network(20, 16, config);
  int refused = 0;
  for (std::uint64_t seq = 1; seq <= 5; ++seq) {
    core::reply r = net.request(4, 6, signed_shout(net.node(4).identity.id(), seq, {}, net.node(4).identity));
    if (r.ec) {
      EXPECT_EQ(r.code, core::wire::nack_code::rate_limited);
      ++refused;
    }
  }
  EXPECT_EQ(refused, 2) << "a burst of 3, then refusals until the bucket refills";
  net.advance(2s);
  EXPECT_FALSE(net.request(4, 6, signed_shout(net.node(4).identity.id(), 6, {}, net.node(4).identity)).ec)
      << "refilled at 1 per second";
}

TEST(Broadcast, AnOversizedShoutIsRefusedAtTheOrigin) {
  dht_config config;
  config.broadcast.max_payload = 16;
  auto net = joined_network(10, 17, config);
  EXPECT_EQ(net.shout(0, byte_vector(17, 1)).ec, core::errc::too_large);
  EXPECT_FALSE(net.shout(0, byte_vector(16, 1)).ec);
}

TEST(Broadcast, ALonelyNodeReachesNobody) {
  dht_network net(18);
  net.add_node();
  EXPECT_EQ(net.shout(0, text("anyone?")).ec, core::errc::not_connected);
}

TEST(Broadcast, FloodingReachesEveryoneWithManyCopies) {
  dht_config config;
  config.broadcast.flood = true;
  auto net = joined_network(100, 19, config);
  auto outcome = net.shout(0, text("flood"));
  ASSERT_FALSE(outcome.ec);
  std::size_t copies = 0;
  for (std::size_t i = 1; i < net.size(); ++i) {
    EXPECT_EQ(net.node(i).shouts.size(), 1u);
    copies += net.node(i).shout_copies;
  }
  EXPECT_GT(copies, 5 * (net.size() - 1)) << "the baseline the tree is measured against";
}

// The tree's cut on its own: a broadcaster over a hand-filled table.
TEST(BroadcastTree, PartsCoverTheIdSpaceWithoutOverlap) {
  core::identity self = testing::fixed_identity(1);
  routing_table table(self.id(), {});
  core::time_point now{};
  for (std::uint8_t i = 2; i < 60; ++i) {
    contact c;
    c.id = testing::fixed_identity(i).id();
    c.addresses = {"sim://" + std::to_string(i)};
    table.insert(c, now);
  }
  broadcaster b(self, table, {}, [](mutable_byte_span out) { std::fill(out.begin(), out.end(), 7); });
  ASSERT_TRUE(b.originate(text("x"), 1, now));
  std::vector<std::pair<core::node_id, int>> parts;
  while (auto s = b.poll_send()) parts.emplace_back(s->to.id, s->message.scope);
  ASSERT_FALSE(parts.empty());
  // Parts are prefixes: the delegate's first `scope` bits. They hold neither the origin nor
  // another delegate, so they are disjoint, and every known contact lies in exactly one.
  for (const auto& [id, scope] : parts) {
    EXPECT_LT(self.id().common_prefix_length(id), scope) << "the origin is outside every part";
    for (const auto& [other, unused] : parts) {
      if (other != id) {
        EXPECT_LT(other.common_prefix_length(id), scope);
      }
    }
  }
  for (const contact& c : table.all()) {
    int holders = 0;
    for (const auto& [id, scope] : parts) holders += c.id.common_prefix_length(id) >= scope;
    EXPECT_EQ(holders, 1) << "contact " << c.id.to_hex();
  }
}

}  // namespace
}  // namespace kadnet::dht
