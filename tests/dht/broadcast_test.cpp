// SHOUT along the routing tables (dht/broadcast.hpp), on the in-memory DHT network: who gets a
// shout, how many copies, how many hops, what happens to forged ones and to dead delegates.
#include "kadnet/dht/broadcast.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "kadnet/core/errors.hpp"
#include "kadnet/dht/routing_table.hpp"
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
// Its sequence is `n` dated `made` (the wall-clock millisecond in the top bits, PROTOCOL.md 5.5;
// the simulated clock is the wall clock here).
core::wire::shout signed_shout(const core::node_id& origin, std::uint64_t n, byte_vector payload,
                               const core::identity& signer, core::time_point made = core::time_point{}) {
  core::wire::shout s;
  s.origin = origin;
  s.sequence = (static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(made.time_since_epoch()).count()) << 16) + n;
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

// The same, timed: with a request timeout of 10 s, a dead delegate used to hold its part for two
// timeouts (its two sends) and the repair lookup's dead contacts a second each. A delegate now
// has a few of its round trips to answer, and the repair lookup's slots are as short.
TEST(Broadcast, DeadDelegatesAreRepairedInAFewRoundTripsNotInRequestTimeouts) {
  dht_network net(13, {});
  net.set_delay(5ms);  // every request and every reply: contacts measure a 10 ms RTT
  for (std::size_t i = 0; i < 300; ++i) net.add_node();
  net.join_all();
  net.advance(2h);
  net.set_timeout(10s);  // what a request to a dead node costs before it is reported failed
  std::vector<bool> dead(net.size(), false);
  for (std::size_t i = 3; i < net.size(); i += 10) {
    net.kill(i);
    dead[i] = true;
  }
  const core::time_point start = net.now();
  auto outcome = net.shout(0, text("quickly"));
  ASSERT_FALSE(outcome.ec);
  auto everyone_live = [&] {
    for (std::size_t i = 1; i < net.size(); ++i)
      if (!dead[i] && net.node(i).shouts.empty()) return false;
    return true;
  };
  net.run_until(start + 10s, everyone_live);
  ASSERT_TRUE(everyone_live()) << "some live node still lacks the shout after one request timeout";
  std::uint64_t reassigned = 0, looked_up = 0;
  for (std::size_t i = 0; i < net.size(); ++i) {
    reassigned += net.node(i).dht->broadcast_stats().reassigned;
    looked_up += net.node(i).dht->broadcast_stats().repair_lookups;
  }
  EXPECT_GT(reassigned, 0u);
  EXPECT_GT(looked_up, 0u);
  EXPECT_LT(net.now() - start, 2s) << "full coverage took "
                                   << std::chrono::duration_cast<std::chrono::milliseconds>(net.now() - start).count()
                                   << " ms";
}

// Dead delegates on a lossy network that does not resend (one request or reply in twenty lost):
// with dht_config::asks_per_silent_contact = 2 the repair lookup into a silent delegate's subtree
// asks its silent contacts there twice, so that a lost request does not take the subtree's live
// nodes for absent.
TEST(Broadcast, RepairLookupsFindASubtreesLiveNodesThroughLoss) {
  dht_config config;
  config.asks_per_silent_contact = 2;
  std::size_t missing = 0, looked_up = 0;
  for (std::uint64_t seed = 31; seed < 35; ++seed) {
    auto net = joined_network(300, seed, config);
    std::vector<bool> dead(net.size(), false);
    for (std::size_t i = 3; i < net.size(); i += 10) {
      net.kill(i);
      dead[i] = true;
    }
    net.set_loss(0.05);
    auto outcome = net.shout(0, text("through loss"));
    ASSERT_FALSE(outcome.ec);
    net.advance(10s);
    for (std::size_t i = 1; i < net.size(); ++i)
      if (!dead[i] && net.node(i).shouts.empty()) ++missing;
    for (std::size_t i = 0; i < net.size(); ++i) looked_up += net.node(i).dht->broadcast_stats().repair_lookups;
  }
  EXPECT_GT(looked_up, 0u);
  EXPECT_EQ(missing, 0u) << "live nodes without the shout, over four seeds (4 with one ask)";
}

// A node that shouts right after joining, before the refreshes that fill its far buckets: the
// subtrees its table knows nobody in are looked into, not taken for empty.
TEST(Broadcast, ANodeThatHasJustJoinedReachesEveryone) {
  for (std::uint64_t seed : {21u, 22u}) {  // both left nodes out before the origin looked
    auto net = joined_network(300, seed);
    const std::size_t fresh = net.add_node();
    ASSERT_FALSE(net.join(fresh, 7).ec);
    auto outcome = net.shout(fresh, text("hello, I am new"));
    ASSERT_FALSE(outcome.ec);
    EXPECT_GT(net.node(fresh).dht->broadcast_stats().repair_lookups, 0u) << "it looked into its table's gaps";
    net.advance(10s);
    std::size_t missing = 0;
    for (std::size_t i = 0; i < net.size(); ++i)
      if (i != fresh && net.node(i).shouts.size() != 1) ++missing;
    EXPECT_EQ(missing, 0u) << "seed " << seed << ": nodes without the new node's shout";
  }
}

TEST(Broadcast, AForgedShoutIsRefusedAndGoesNowhere) {
  auto net = joined_network(60, 14);
  // Node 1 writes a shout in node 2's name: the signature is node 1's, not node 2's.
  auto forged = signed_shout(net.node(2).identity.id(), 99, text("I am node 2"), net.node(1).identity, net.now());
  core::reply r = net.request(1, 7, forged);
  EXPECT_EQ(r.ec, core::errc::nack);
  EXPECT_EQ(r.code, core::wire::nack_code::bad_request);

  // A genuine shout altered on the way (the payload changed after signing).
  auto altered = signed_shout(net.node(2).identity.id(), 100, text("original"), net.node(2).identity, net.now());
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
  auto outcome = net.shout(3, text("once"));
  ASSERT_FALSE(outcome.ec);
  const core::node_id origin = net.node(3).identity.id();
  EXPECT_EQ(delivered_count(net, origin, outcome.sequence), net.size() - 1) << "everyone but the origin";
  // Replayed later with a wider scope, to another node: everyone has it already.
  ASSERT_TRUE(net.last_shout_copy);
  core::wire::shout s = *net.last_shout_copy;
  s.scope = 0;
  s.also_levels.clear();
  EXPECT_FALSE(net.request(1, 20, s).ec) << "a duplicate is acknowledged, not refused";
  net.advance(1min);
  EXPECT_EQ(delivered_count(net, origin, outcome.sequence), net.size() - 1);
}

// The part a SHOUT asks for is not signed (it changes at every hop), so any node that has the
// shout can send a copy asking for nothing. Sent first to nodes of the tree, such copies must not
// make them take the genuine copy, arriving later, for a duplicate and leave their parts out.
TEST(Broadcast, CopiesAskingForNothingSentFirstDoNotCutPartsOfTheTreeOff) {
  auto net = joined_network(200, 21);
  const std::size_t origin = 4, attacker = 9;
  const core::node_id& origin_id = net.node(origin).identity.id();
  // The genuine copy goes, as the origin's own cut would send it, to a node of the other half of
  // the id space (first bit not the origin's), which covers that half.
  std::size_t delegate = 0;
  while (net.node(delegate).identity.id().common_prefix_length(origin_id) != 0 || delegate == attacker) ++delegate;
  auto genuine = signed_shout(origin_id, 77, text("for all"), net.node(origin).identity, net.now());
  genuine.scope = 1;
  auto in_that_half = [&](std::size_t i) { return net.node(i).identity.id().common_prefix_length(origin_id) == 0; };
  auto cut_down = genuine;
  cut_down.scope = 255;
  cut_down.hops = 255;
  std::size_t half = 0;
  for (std::size_t i = 0; i < net.size(); ++i) {
    if (!in_that_half(i)) continue;
    ++half;
    if (i % 3 == 0 && i != delegate && i != attacker) {
      EXPECT_FALSE(net.request(attacker, i, cut_down).ec);
    }
  }
  EXPECT_FALSE(net.request(origin, delegate, genuine).ec);
  net.advance(1min);
  std::size_t reached = 0;
  for (std::size_t i = 0; i < net.size(); ++i) {
    EXPECT_LE(net.node(i).shouts.size(), 1u) << "delivered once: node " << i;
    if (in_that_half(i) && i != attacker) reached += !net.node(i).shouts.empty();
  }
  EXPECT_EQ(reached, half - (in_that_half(attacker) ? 1 : 0)) << "every node of the delegate's half";
}

// A copy asking for more than its sender could give (all of the id space) widens its receiver's
// part at most down to the ids the sender shares as many bits with, and costs the network a
// bounded number of copies.
TEST(Broadcast, ACopyAskingForEverythingAfterwardsCostsBoundedCopies) {
  auto net = joined_network(200, 22);
  const std::size_t attacker = 9;
  auto outcome = net.shout(4, text("once"));
  ASSERT_FALSE(outcome.ec);
  const core::node_id origin = net.node(4).identity.id();
  ASSERT_EQ(delivered_count(net, origin, outcome.sequence), net.size() - 1);
  auto copies = [&] {
    std::size_t n = 0;
    for (std::size_t i = 0; i < net.size(); ++i) n += net.node(i).shout_copies;
    return n;
  };
  const std::size_t tree = copies();
  ASSERT_TRUE(net.last_shout_copy);
  core::wire::shout everything = *net.last_shout_copy;
  everything.scope = 0;
  everything.also_levels.clear();
  // To a node in the other half of the id space from the attacker's, which may thus be asked to
  // cover nearly all of its own half.
  std::size_t target = 0;
  while (target == 4 || target == attacker ||
         net.node(target).identity.id().common_prefix_length(net.node(attacker).identity.id()) != 0)
    ++target;
  EXPECT_FALSE(net.request(attacker, target, everything).ec);
  net.advance(1min);
  // Its receiver covers its half once more, and so do the nodes it hands it to: about one more
  // copy per node of that half (107 here; widened to the whole id space, the receiver would cost
  // one per node of the network: 191).
  EXPECT_LE(copies() - tree, 1 + net.size() * 6 / 10) << tree << " copies for the shout itself";
  EXPECT_EQ(delivered_count(net, origin, outcome.sequence), net.size() - 1) << "nobody got it twice";
}

// Once the seen-cache has forgotten a shout, its date refuses a replay: delivered again and sent
// round the whole network otherwise.
TEST(Broadcast, AReplayAfterTheSeenCacheForgotTheShoutIsRefusedByItsDate) {
  auto net = joined_network(40, 17);
  auto outcome = net.shout(3, text("once"));
  ASSERT_FALSE(outcome.ec);
  const core::node_id origin = net.node(3).identity.id();
  ASSERT_EQ(delivered_count(net, origin, outcome.sequence), net.size() - 1);
  ASSERT_TRUE(net.last_shout_copy);
  core::wire::shout replay = *net.last_shout_copy;
  replay.scope = 0;
  replay.also_levels.clear();
  net.advance(dht_config{}.broadcast.seen_lifetime + 1min);
  core::reply r = net.request(1, 20, replay);
  EXPECT_EQ(r.code, core::wire::nack_code::stale) << r.text;
  net.advance(1min);
  EXPECT_EQ(delivered_count(net, origin, outcome.sequence), net.size() - 1);
}

TEST(Broadcast, AnOriginOverItsRateIsRefused) {
  dht_config config;
  config.broadcast.origin_rate = 1;
  config.broadcast.origin_burst = 3;
  auto net = joined_network(20, 16, config);
  int refused = 0;
  for (std::uint64_t seq = 1; seq <= 5; ++seq) {
    core::reply r = net.request(4, 6, signed_shout(net.node(4).identity.id(), seq, {}, net.node(4).identity, net.now()));
    if (r.ec) {
      EXPECT_EQ(r.code, core::wire::nack_code::rate_limited);
      ++refused;
    }
  }
  EXPECT_EQ(refused, 2) << "a burst of 3, then refusals until the bucket refills";
  net.advance(2s);
  EXPECT_FALSE(net.request(4, 6, signed_shout(net.node(4).identity.id(), 6, {}, net.node(4).identity, net.now())).ec)
      << "refilled at 1 per second";
}

// The origins a node tracks are bounded. When the table is full, a new origin takes the place
// of the one nearest a full bucket: origins that each shouted once cannot shut every other
// origin out, and an origin that spent its tokens is not forgotten (and so stays limited).
TEST(Broadcast, AFullOriginTableMakesRoomWithoutFreeingALimitedOrigin) {
  dht_config config;
  config.broadcast.origin_rate = 0.001;
  config.broadcast.origin_burst = 3;
  config.broadcast.max_origins_tracked = 3;
  auto net = joined_network(20, 18, config);
  auto shout_of = [&](std::size_t origin, std::uint64_t seq) {
    return net.request(4, 6, signed_shout(net.node(origin).identity.id(), seq, {}, net.node(origin).identity, net.now()));
  };
  for (std::uint64_t seq = 1; seq <= 3; ++seq) ASSERT_FALSE(shout_of(4, seq).ec) << "the burst";
  EXPECT_EQ(shout_of(4, 4).code, core::wire::nack_code::rate_limited);
  ASSERT_FALSE(shout_of(5, 1).ec);
  ASSERT_FALSE(shout_of(7, 1).ec);  // the table is full: origins 4, 5 and 7
  for (std::size_t newcomer : {8u, 9u, 10u}) EXPECT_FALSE(shout_of(newcomer, 1).ec) << "origin " << newcomer;
  EXPECT_EQ(shout_of(4, 5).code, core::wire::nack_code::rate_limited) << "still limited";
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

// The tree's cut on its own: broadcasters over hand-filled tables.
struct sent_part {
  core::node_id to;
  std::uint8_t scope;
  std::vector<std::uint8_t> also_levels;
  // Whether `x` lies in this part: it shares at least `scope` leading bits with the delegate, or
  // exactly one of the also levels.
  bool holds(const core::node_id& x) const {
    int shared = x.common_prefix_length(to);
    return shared >= scope || std::find(also_levels.begin(), also_levels.end(), shared) != also_levels.end();
  }
};

std::vector<sent_part> parts_sent(broadcaster& b) {
  std::vector<sent_part> parts;
  while (auto s = b.poll_send()) parts.push_back({s->to.id, s->message.scope, s->message.also_levels});
  return parts;
}

routing_table table_of(const core::identity& self, const std::vector<core::node_id>& ids,
                       routing_table_config config = {}) {
  routing_table table(self.id(), config);
  for (const auto& id : ids) {
    contact c;
    c.id = id;
    c.addresses = {"sim://" + id.short_hex()};
    table.insert(c, core::time_point{});
  }
  return table;
}

// The ids of testing::fixed_identity(first) .. fixed_identity(last - 1).
std::vector<core::node_id> fixed_ids(std::uint8_t first, std::uint8_t last) {
  std::vector<core::node_id> ids;
  for (std::uint8_t i = first; i < last; ++i) ids.push_back(testing::fixed_identity(i).id());
  return ids;
}


TEST(BroadcastTree, PartsAreDisjointAndLeaveOutOnlyWhatTheTableKnowsIsEmpty) {
  core::identity self = testing::fixed_identity(1);
  std::vector<core::node_id> ids = fixed_ids(2, 60);
  routing_table table = table_of(self, ids);
  broadcaster b(self, table, {});
  ASSERT_TRUE(b.originate(text("x"), 1, core::time_point{}));
  auto parts = parts_sent(b);
  ASSERT_FALSE(parts.empty());
  EXPECT_EQ(parts.size(), table.all().size()) << "every known contact gets the shout straight from the origin";
  for (const contact& c : table.all()) {
    int holders = 0;
    for (const auto& p : parts) holders += p.holds(c.id);
    EXPECT_EQ(holders, 1) << "contact " << c.id.to_hex();
  }
  // Any id at all: in at most one part, and in none only when it is the origin or lies in a
  // subtree next to the origin's path where the origin knows nobody (so Kademlia says it is empty).
  std::mt19937_64 rng(5);
  std::vector<int> known_at_level(core::id_bits + 1, 0);
  for (const contact& c : table.all()) ++known_at_level[static_cast<std::size_t>(c.id.common_prefix_length(self.id()))];
  for (int trial = 0; trial < 5000; ++trial) {
    core::node_id::bytes_type bytes;
    for (auto& byte : bytes) byte = static_cast<std::uint8_t>(rng());
    core::node_id x(bytes);
    int holders = 0;
    for (const auto& p : parts) holders += p.holds(x);
    ASSERT_LE(holders, 1) << "parts overlap at " << x.to_hex();
    if (holders == 0) {
      EXPECT_EQ(known_at_level[static_cast<std::size_t>(x.common_prefix_length(self.id()))], 0)
          << x.to_hex() << " is in a subtree the origin knows someone in, yet in no part";
    }
  }
}

// self's id with its first byte replaced by `top` (and its last bit flipped, so never self).
core::node_id with_top_byte(const core::identity& self, std::uint8_t top) {
  core::node_id::bytes_type bytes = self.id().bytes();
  bytes[0] = top;
  bytes[31] ^= 1;
  return core::node_id(bytes);
}

TEST(BroadcastTree, ASubtreeNobodyKnownIsInGoesToAContactNextToIt) {
  // The origin knows two contacts far from it that agree on their next three bits: the subtrees
  // beside them at those bits may hold nodes, and one of the two is asked to cover them.
  core::identity self = testing::fixed_identity(1);
  const std::uint8_t far = static_cast<std::uint8_t>(~self.id().bytes()[0] & 0x80);  // other half from the origin
  std::vector<core::node_id> ids{with_top_byte(self, static_cast<std::uint8_t>(far | 0x40)),    // 1 1 0 0 ... or 0 1 0 0 ...
                                 with_top_byte(self, static_cast<std::uint8_t>(far | 0x48))};   // same first 4 bits, then 1
  routing_table table = table_of(self, ids);
  broadcaster b(self, table, {});
  ASSERT_TRUE(b.originate(text("x"), 1, core::time_point{}));
  auto parts = parts_sent(b);
  ASSERT_EQ(parts.size(), 2u);
  std::vector<std::uint8_t> all_levels;
  for (const auto& p : parts) {
    EXPECT_EQ(p.scope, 5) << "each keeps the subtree of the first bits it differs from the other in";
    all_levels.insert(all_levels.end(), p.also_levels.begin(), p.also_levels.end());
  }
  std::sort(all_levels.begin(), all_levels.end());
  EXPECT_EQ(all_levels, (std::vector<std::uint8_t>{0 + 1, 2, 3})) << "bits 1..3, where both went the same way";
}

// Of the contacts that could cover a subtree nobody is known in, one that failed its last request
// (likely dead) is the last choice, however fast it was.
TEST(BroadcastTree, AContactThatFailedItsLastRequestIsTheLastChoiceForASubtreeBesideIt) {
  core::identity self = testing::fixed_identity(1);
  const std::uint8_t far = static_cast<std::uint8_t>(~self.id().bytes()[0] & 0x80);
  const core::node_id failing = with_top_byte(self, static_cast<std::uint8_t>(far | 0x40)),
                      healthy = with_top_byte(self, static_cast<std::uint8_t>(far | 0x48));
  routing_table table = table_of(self, {failing, healthy});
  table.on_seen(failing, core::time_point{}, 5ms);
  table.on_seen(healthy, core::time_point{}, 50ms);
  for (bool failed : {false, true}) {
    if (failed) table.on_request_failed(failing);
    broadcaster b(self, table, {});
    ASSERT_TRUE(b.originate(text("x"), 1, core::time_point{}));
    auto parts = parts_sent(b);
    ASSERT_EQ(parts.size(), 2u);
    for (const auto& p : parts) {
      const bool gets_levels = failed ? p.to == healthy : p.to == failing;  // else the faster one
      EXPECT_EQ(p.also_levels.empty(), !gets_levels) << (failed ? "after a failure" : "both healthy");
    }
  }
}

TEST(BroadcastTree, ReplacementsWithASessionTakePartsToo) {
  // k = 2: most contacts wait in replacement caches. Those we have a session with are as good as
  // bucket contacts for a shout; the others would cost a dial, and are left to their buckets'.
  core::identity self = testing::fixed_identity(1);
  std::vector<core::node_id> ids = fixed_ids(2, 40);
  routing_table_config small;
  small.k = 2;
  small.max_per_prefix = 0;
  routing_table table = table_of(self, ids, small);
  auto waiting = table.replacements();
  ASSERT_GE(waiting.size(), 4u);
  std::vector<core::node_id> with_session{waiting[0].id, waiting[2].id};
  for (const auto& id : with_session) table.set_connected(id, true);
  auto has_session = [&](const core::node_id& id) {
    return std::find(with_session.begin(), with_session.end(), id) != with_session.end();
  };
  broadcaster b(self, table, {});
  ASSERT_TRUE(b.originate(text("x"), 1, core::time_point{}));
  std::vector<core::node_id> delegates;
  for (const auto& p : parts_sent(b)) delegates.push_back(p.to);
  for (const contact& c : table.all()) EXPECT_NE(std::find(delegates.begin(), delegates.end(), c.id), delegates.end());
  for (const contact& c : waiting)
    EXPECT_EQ(std::find(delegates.begin(), delegates.end(), c.id) != delegates.end(), has_session(c.id)) << c.id.short_hex();
  EXPECT_EQ(delegates.size(), table.all().size() + with_session.size());
}

// How long a delegate has to ACK: timeout_rtts of its RTT (at least min_send_timeout); one
// without an RTT gets the slowest among the contacts the part was cut from; none measured at
// all, the transport's request timeout.
TEST(BroadcastTree, ADelegateHasAFewOfItsRoundTripsToAnswer) {
  core::identity self = testing::fixed_identity(1);
  std::vector<core::node_id> ids = fixed_ids(2, 40);
  broadcast_config config;
  config.timeout_rtts = 4;
  config.min_send_timeout = 100ms;
  config.max_send_timeout = 1000ms;
  config.uplink_bytes_per_second = 1e12;  // the SHOUTs' time to leave: under a millisecond, rounded up to 1
  {
    routing_table table = table_of(self, ids);
    broadcaster b(self, table, config);
    ASSERT_TRUE(b.originate(text("x"), 1, core::time_point{}));
    std::size_t sends = 0;
    while (auto send = b.poll_send()) {
      ++sends;
      EXPECT_FALSE(send->timeout) << "no RTT known anywhere: the request timeout";
    }
    EXPECT_EQ(sends, table.all().size());
  }
  routing_table table = table_of(self, ids);
  table.on_seen(ids[0], core::time_point{}, 60ms);  // 4 RTTs: 240 ms
  table.on_seen(ids[1], core::time_point{}, 5ms);   // 4 RTTs: 20 ms, so the floor: 100 ms
  table.on_seen(ids[2], core::time_point{}, 2s);    // 4 RTTs: 8 s, so the cap: 1 s
  {
    broadcaster b(self, table, config);
    ASSERT_TRUE(b.originate(text("x"), 1, core::time_point{}));
    std::size_t sends = 0;
    while (auto send = b.poll_send()) {
      ++sends;
      ASSERT_TRUE(send->timeout);
      if (send->to.id == ids[1]) EXPECT_EQ(*send->timeout, 101ms);
      else if (send->to.id == ids[2]) EXPECT_EQ(*send->timeout, 1001ms);
      else if (send->to.id == ids[0]) EXPECT_EQ(*send->timeout, 241ms);
      else EXPECT_EQ(*send->timeout, 1001ms) << "unmeasured: the slowest known, 2 s, capped";
    }
    EXPECT_EQ(sends, table.all().size());
  }
  // Many large SHOUTs at once queue behind each other: each gets the time they all take to leave.
  config.uplink_bytes_per_second = 1e6;
  broadcaster slow_uplink(self, table, config);
  ASSERT_TRUE(slow_uplink.originate(byte_vector(10'000, 1), 1, core::time_point{}));
  // Each SHOUT is its 10,000 payload bytes and up to 128 of the rest: 10.128 ms apiece at 1 MB/s.
  const auto all_sends = static_cast<double>(table.all().size());
  const auto sending = std::chrono::milliseconds(static_cast<long>(std::ceil(all_sends * 10.128)));
  bool seen = false;
  while (auto send = slow_uplink.poll_send()) {
    if (send->to.id != ids[1]) continue;
    seen = true;
    EXPECT_EQ(*send->timeout, 100ms + sending);
  }
  EXPECT_TRUE(seen);

  config.flood = true;  // the benchmark's baseline keeps the request timeout
  broadcaster flood(self, table, config);
  ASSERT_TRUE(flood.originate(text("x"), 1, core::time_point{}));
  while (auto send = flood.poll_send()) EXPECT_FALSE(send->timeout);
}

// A table that breaks Kademlia's promise — nobody known in a subtree next to the node's path,
// above the deepest one it knows someone in, as in a node that has just joined — does not make
// the origin leave that subtree out: it looks into it, and hands it to whom the lookup finds.
TEST(BroadcastTree, TheOriginLooksIntoSubtreesItsTableHasNobodyIn) {
  core::identity self = testing::fixed_identity(1);
  auto at_level = [&](int level, std::uint8_t tweak) {  // shares exactly `level` leading bits with self
    auto bytes = self.id().bytes();
    bytes[static_cast<std::size_t>(level / 8)] ^= static_cast<std::uint8_t>(0x80u >> (level % 8));
    bytes[31] ^= tweak;
    return core::node_id(bytes);
  };
  // Nobody known at levels 1, 4, 5, 6 and 7; the deepest known is 8. Subtrees just above it are
  // often empty for real; 4 levels up they hold about 16 times as many nodes.
  routing_table gappy = table_of(self, {at_level(0, 1), at_level(2, 1), at_level(3, 1), at_level(8, 1), at_level(8, 2)});
  broadcaster b(self, gappy, {});
  ASSERT_TRUE(b.originate(text("x"), 1, core::time_point{}));
  EXPECT_EQ(parts_sent(b).size(), 5u);
  std::vector<broadcaster::lookup_request> lookups;
  while (auto l = b.poll_lookup()) lookups.push_back(*l);
  ASSERT_EQ(lookups.size(), 2u) << "levels 1 and 4; not 5, 6 and 7, near the deepest known, 8";
  EXPECT_EQ(lookups[0].target.common_prefix_length(self.id()), 1);
  EXPECT_EQ(lookups[1].target.common_prefix_length(self.id()), 4);
  EXPECT_EQ(b.counters().repair_lookups, 2u);
  // The lookup into level 1 finds a node there (and one outside, which is left alone).
  contact found;
  found.id = at_level(1, 9);
  found.addresses = {"sim://" + found.id.short_hex()};
  contact outside = found;
  outside.id = at_level(3, 9);
  b.on_lookup_done(lookups[0].handle, {found, outside});
  auto parts = parts_sent(b);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].to, found.id);
  EXPECT_TRUE(parts[0].holds(at_level(1, 77))) << "it covers the whole subtree at level 1";
  EXPECT_FALSE(parts[0].holds(at_level(2, 77)));

  // With somebody known at every level well above the deepest, the origin trusts its table.
  routing_table whole = table_of(self, {at_level(0, 1), at_level(1, 1), at_level(2, 1), at_level(3, 1), at_level(7, 1)});
  broadcaster trusting(self, whole, {});
  ASSERT_TRUE(trusting.originate(text("x"), 1, core::time_point{}));
  EXPECT_FALSE(trusting.poll_lookup());
}

// A silent delegate that a repair lookup finds alive gets its part once more; silent again, it is
// left out, and a second lookup is told not to end on its answer (or the repair would go round
// for ever).
TEST(BroadcastTree, ASilentDelegateFoundAliveGetsOneSecondChance) {
  core::identity self = testing::fixed_identity(1);
  const core::node_id far = with_top_byte(self, static_cast<std::uint8_t>(~self.id().bytes()[0] & 0x80));
  routing_table table = table_of(self, {far});
  broadcaster b(self, table, {});
  ASSERT_TRUE(b.originate(text("x"), 1, core::time_point{}));
  core::reply silence;
  silence.ec = core::errc::timeout;
  auto stay_silent = [&](int sends) {
    for (int i = 0; i < sends; ++i) {
      auto s = b.poll_send();
      ASSERT_TRUE(s);
      EXPECT_EQ(s->to.id, far);
      b.on_reply(s->handle, silence, core::time_point{});
    }
    EXPECT_FALSE(b.poll_send());
  };
  contact found;
  found.id = far;
  found.addresses = {"sim://far"};

  stay_silent(2);
  auto first = b.poll_lookup();
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->spent.empty());
  b.on_lookup_done(first->handle, {found});  // it answered the lookup: a second chance

  stay_silent(2);
  auto second = b.poll_lookup();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->spent, std::vector<core::node_id>{far}) << "its answer must not end this lookup";
  b.on_lookup_done(second->handle, {found});
  EXPECT_FALSE(b.poll_send()) << "no third chance";
  auto done = b.poll_finished();
  ASSERT_TRUE(done) << "the shout settles";
  EXPECT_EQ(done->delegates, 0u);
}

// A flooding node has no parts to narrow: the hop count ends a copy still going round after its
// name left the seen-cache.
TEST(BroadcastTree, AFloodingNodeDoesNotForwardACopyAtTheLastHop) {
  core::identity self = testing::fixed_identity(1);
  routing_table table = table_of(self, fixed_ids(2, 30));
  broadcast_config flood;
  flood.flood = true;
  broadcaster b(self, table, flood);
  core::identity origin = testing::fixed_identity(200);
  core::wire::message m;
  m.opcode = static_cast<std::uint8_t>(core::wire::opcode::shout);
  auto s = signed_shout(origin.id(), 1, text("x"), origin);
  s.hops = 255;
  m.body = s;
  ASSERT_TRUE(std::holds_alternative<core::wire::ack>(b.receive(origin.id(), m, core::time_point{})));
  EXPECT_EQ(b.counters().delivered, 1u);
  EXPECT_TRUE(parts_sent(b).empty());
  s.sequence = 2;
  s.sig = origin.sign(core::wire::shout_signed_bytes(s));
  s.hops = 254;
  m.body = s;
  b.receive(origin.id(), m, core::time_point{});
  EXPECT_EQ(parts_sent(b).size(), table.all().size()) << "one hop short of the last: forwarded to all";
}

// The hop count is anyone's to write: a node forwards the lowest its copies came with.
TEST(BroadcastTree, ALaterCopyWithFewerHopsLowersTheCountForwarded) {
  core::identity self = testing::fixed_identity(1);
  routing_table table = table_of(self, fixed_ids(2, 80));
  broadcaster b(self, table, {});
  core::identity origin = testing::fixed_identity(200);
  std::uint8_t sender = 200;
  while (testing::fixed_identity(sender).id().common_prefix_length(self.id()) != 0) ++sender;
  core::wire::message m;
  m.opcode = static_cast<std::uint8_t>(core::wire::opcode::shout);
  auto s = signed_shout(origin.id(), 1, text("x"), origin);
  s.hops = 200;
  s.scope = 3;
  m.body = s;
  b.receive(testing::fixed_identity(sender).id(), m, core::time_point{});
  auto first = parts_sent(b);
  ASSERT_FALSE(first.empty());
  s.hops = 2;
  s.scope = 1;
  m.body = s;
  b.receive(testing::fixed_identity(sender).id(), m, core::time_point{});
  std::vector<std::uint8_t> hops;
  while (auto send = b.poll_send()) hops.push_back(send->message.hops);
  ASSERT_FALSE(hops.empty()) << "levels 1 and 2 were not covered yet";
  for (std::uint8_t h : hops) EXPECT_EQ(h, 3);
}

// A shout's sequence is dated (PROTOCOL.md 5.5): the origin's carry the wall-clock millisecond
// it made them at, and a receiver takes only those made within max_age before its own clock and
// max_ahead after it.
TEST(BroadcastTree, ShoutsAreDatedAndTakenOnlyWithinTheirWindow) {
  core::identity self = testing::fixed_identity(1);
  routing_table table = table_of(self, fixed_ids(2, 30));
  const core::time_point now = core::time_point{} + 1000h;
  broadcaster origin_side(self, table, {});
  auto sequence = origin_side.originate(text("dated"), 1, now);
  ASSERT_TRUE(sequence);
  EXPECT_EQ(*sequence >> 16, static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(1000h).count()));
  EXPECT_GT(*origin_side.originate(text("next"), 2, now), *sequence) << "in one millisecond too";
  // The count below the date starts where the node says (dht_node: at random), so a node
  // restarted on a clock set back is unlikely to reuse a name its peers still hold as seen.
  broadcaster salted(self, table, {}, 0x1234);
  EXPECT_EQ(*salted.originate(text("salted"), 1, now), (*sequence & ~std::uint64_t{0xffff}) | 0x1234);

  broadcaster b(self, table, {});
  core::identity origin = testing::fixed_identity(200);
  auto offer = [&](core::time_point made, std::uint64_t n) {
    core::wire::message m;
    m.opcode = static_cast<std::uint8_t>(core::wire::opcode::shout);
    m.body = signed_shout(origin.id(), n, text("x"), origin, made);
    return b.receive(origin.id(), m, now);
  };
  const broadcast_config defaults;
  EXPECT_TRUE(std::holds_alternative<core::wire::ack>(offer(now - defaults.max_age, 1)));
  EXPECT_TRUE(std::holds_alternative<core::wire::ack>(offer(now + defaults.max_ahead, 2)));
  EXPECT_TRUE(std::holds_alternative<core::wire::nack>(offer(now - defaults.max_age - 1ms, 3)));
  EXPECT_TRUE(std::holds_alternative<core::wire::nack>(offer(now + defaults.max_ahead + 1ms, 4)));
  EXPECT_EQ(b.counters().stale, 2u);
  EXPECT_EQ(b.counters().delivered, 2u);
}

// A seen-cache full of fresh names (any node can make them, with keys of its own) forgets the
// oldest: what it forgot must not come back as new.
TEST(BroadcastTree, AShoutTheFullSeenCacheForgotIsNotDeliveredAgain) {
  core::identity self = testing::fixed_identity(1);
  routing_table table = table_of(self, fixed_ids(2, 30));
  broadcast_config small;
  small.seen_capacity = 4;
  broadcaster b(self, table, small);
  const core::time_point now = core::time_point{} + 1000h;
  auto offer = [&](std::uint8_t who, core::time_point made, std::uint64_t n = 1) {
    core::identity origin = testing::fixed_identity(who);
    core::wire::message m;
    m.opcode = static_cast<std::uint8_t>(core::wire::opcode::shout);
    m.body = signed_shout(origin.id(), n, text("x"), origin, made);
    return b.receive(origin.id(), m, now);
  };
  ASSERT_TRUE(std::holds_alternative<core::wire::ack>(offer(200, now - 1s)));
  for (std::uint8_t who = 201; who <= 204; ++who) ASSERT_TRUE(std::holds_alternative<core::wire::ack>(offer(who, now)));
  EXPECT_EQ(b.counters().delivered, 5u);
  EXPECT_TRUE(std::holds_alternative<core::wire::nack>(offer(200, now - 1s))) << "forgotten, so refused by its date";
  EXPECT_EQ(b.counters().delivered, 5u);
  // The cutoff is the forgotten name's origin's: another origin's shout dated before it is taken
  // (else anyone filling the cache with names dated ahead would shut every origin out).
  EXPECT_TRUE(std::holds_alternative<core::wire::ack>(offer(202, now - 2s, 2)));
  EXPECT_TRUE(std::holds_alternative<core::wire::ack>(offer(205, now - 2s)));
  EXPECT_EQ(b.counters().delivered, 7u);
}

// A delegate refuses a shout as stale by a clock of its own (set apart, or its cache's cutoff),
// and would again: its part goes to others at once, as a silent delegate's does.
TEST(BroadcastTree, APartRefusedAsStaleGoesToOthers) {
  core::identity self = testing::fixed_identity(1);
  routing_table table = table_of(self, fixed_ids(2, 80));
  broadcaster b(self, table, {});
  ASSERT_TRUE(b.originate(text("x"), 1, core::time_point{} + 1h));
  std::vector<broadcaster::send_request> sends;
  while (auto s = b.poll_send()) sends.push_back(std::move(*s));
  ASSERT_GT(sends.size(), 1u);
  // The delegate with the widest part: it has other contacts of ours inside to hand it to.
  auto widest = std::min_element(sends.begin(), sends.end(), [](const auto& x, const auto& y) {
    return x.message.scope < y.message.scope;
  });
  core::reply stale;
  stale.ec = core::errc::nack;
  stale.code = core::wire::nack_code::stale;
  b.on_reply(widest->handle, stale, core::time_point{} + 1h);
  EXPECT_EQ(b.counters().reassigned, 1u);
  std::size_t again = 0;
  while (auto s = b.poll_send()) {
    EXPECT_NE(s->to.id, widest->to.id) << "not back to the node that refused";
    ++again;
  }
  while (b.poll_lookup()) ++again;
  EXPECT_GT(again, 0u) << "its part was handed on";
}

TEST(BroadcastTree, AReceiverSplitsOnlyItsOwnPart) {
  core::identity self = testing::fixed_identity(1);
  std::vector<core::node_id> ids = fixed_ids(2, 80);
  routing_table table = table_of(self, ids);
  broadcaster b(self, table, {});
  core::identity origin = testing::fixed_identity(200);
  core::wire::message m;
  m.opcode = static_cast<std::uint8_t>(core::wire::opcode::shout);
  auto s = signed_shout(origin.id(), 1, text("x"), origin);
  s.scope = 3;
  s.also_levels = {1};
  m.body = s;
  // From a node of the other half (sharing no bit with us): the part it gives us may reach down
  // to level 1.
  std::uint8_t sender = 200;
  while (testing::fixed_identity(sender).id().common_prefix_length(self.id()) != 0) ++sender;
  auto reply = b.receive(testing::fixed_identity(sender).id(), m, core::time_point{});
  ASSERT_TRUE(std::holds_alternative<core::wire::ack>(reply));
  const sent_part mine{self.id(), 3, {1}};
  std::size_t inside = 0;
  for (const contact& c : table.all()) inside += mine.holds(c.id);
  auto parts = parts_sent(b);
  EXPECT_EQ(parts.size(), inside) << "every contact inside the part, and no other, is a delegate";
  // A delegate's part never reaches outside ours: random ids in the delegate's part are in ours.
  std::mt19937_64 rng(9);
  for (const auto& p : parts) {
    EXPECT_TRUE(mine.holds(p.to));
    for (int trial = 0; trial < 200; ++trial) {
      core::node_id::bytes_type bytes;
      for (auto& byte : bytes) byte = static_cast<std::uint8_t>(rng());
      // Keep the delegate's first `keep` bits, with the last of them flipped for an also level.
      int keep = trial % 2 == 0 || p.also_levels.empty() ? p.scope
                                                          : p.also_levels[static_cast<std::size_t>(trial) % p.also_levels.size()] + 1;
      for (int bit = 0; bit < keep; ++bit) {
        bool want = p.to.bit(bit) != (keep != p.scope && bit == keep - 1);
        auto mask = static_cast<std::uint8_t>(0x80u >> (bit % 8));
        bytes[static_cast<std::size_t>(bit / 8)] = want ? (bytes[static_cast<std::size_t>(bit / 8)] | mask)
                                                        : (bytes[static_cast<std::size_t>(bit / 8)] & ~mask);
      }
      core::node_id x(bytes);
      ASSERT_TRUE(p.holds(x));
      EXPECT_TRUE(mine.holds(x)) << "delegate " << p.to.short_hex() << " got ids outside our part";
    }
  }
}

}  // namespace
}  // namespace kadnet::dht
