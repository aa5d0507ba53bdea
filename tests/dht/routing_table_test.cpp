#include "kadnet/dht/routing_table.hpp"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace kadnet::dht {
namespace {

using namespace std::chrono_literals;
using core::node_id;

constexpr std::uint64_t property_seed = 0x6b61646e7274;  // "kadnrt"
const core::time_point t0 = core::time_point{} + 1000h;

node_id random_id(std::mt19937_64& rng) {
  node_id::bytes_type b;
  for (auto& byte : b) byte = static_cast<std::uint8_t>(rng());
  return node_id(b);
}

// An id sharing exactly `cpl` leading bits with `self` (bit cpl differs), the rest drawn from
// `seed`.
node_id id_with_prefix(const node_id& self, int cpl, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto b = random_id(rng).bytes();
  for (int i = 0; i <= cpl && i < core::id_bits; ++i) {
    const auto mask = static_cast<std::uint8_t>(0x80 >> (i % 8));
    const bool want = i < cpl ? self.bit(i) : !self.bit(i);
    b[i / 8] = static_cast<std::uint8_t>(want ? (b[i / 8] | mask) : (b[i / 8] & ~mask));
  }
  node_id id(b);
  EXPECT_EQ(self.common_prefix_length(id), cpl);
  return id;
}

contact make_contact(const node_id& id, std::string address = "") {
  contact c;
  c.id = id;
  if (!address.empty()) c.addresses.push_back(std::move(address));
  return c;
}

// A distinct IPv4 address in 198.18.0.0/15 for each n (so each has its own /24 when n < 256·2).
std::string unique_v4(std::size_t n) {
  return "udp://198." + std::to_string(18 + (n / 256) % 2) + "." + std::to_string(n % 256) + ".1:4000";
}

routing_table_config unlimited(std::size_t k = default_k) {
  routing_table_config cfg;
  cfg.k = k;
  cfg.max_per_prefix = 0;
  cfg.ping_if_quiet_for = 0ms;  // these tests step time by seconds: ping for every newcomer
  return cfg;
}

std::vector<node_id> ids_of(const std::vector<contact>& cs) {
  std::vector<node_id> out;
  for (const auto& c : cs) out.push_back(c.id);
  return out;
}

std::vector<node_id> brute_force_closest(std::vector<contact> all, const node_id& target,
                                         std::size_t n, bool dialable_only) {
  if (dialable_only)
    all.erase(std::remove_if(all.begin(), all.end(), [](const contact& c) { return !c.dialable(); }),
              all.end());
  std::sort(all.begin(), all.end(), [&](const contact& a, const contact& b) {
    return a.id.distance(target) < b.id.distance(target);
  });
  if (all.size() > n) all.resize(n);
  return ids_of(all);
}

bool in_range(const bucket_view& b, const node_id& id) {
  return id.common_prefix_length(b.prefix) >= b.depth;
}

const bucket_view& bucket_of(const std::vector<bucket_view>& views, const node_id& id) {
  for (const auto& b : views)
    if (in_range(b, id)) return b;
  throw std::logic_error("no bucket covers id");
}

// The buckets partition the id space, hold at most k contacts each, and every contact lies in
// its bucket's range.
void expect_well_formed(const routing_table& table) {
  auto views = table.buckets();
  ASSERT_FALSE(views.empty());
  EXPECT_EQ(views.front().prefix, node_id{});
  std::size_t total = 0;
  for (std::size_t i = 0; i < views.size(); ++i) {
    const auto& b = views[i];
    EXPECT_LE(b.contacts.size(), table.config().k);
    total += b.contacts.size();
    for (const auto& c : b.contacts) EXPECT_TRUE(in_range(b, c.id)) << c.id.to_hex();
    if (i + 1 < views.size()) {
      // The next bucket starts right after this one's range: prefix + 2^(256-depth).
      auto next = b.prefix.bytes();
      int bit = b.depth - 1;
      while (bit >= 0) {
        auto mask = static_cast<std::uint8_t>(0x80 >> (bit % 8));
        if (next[bit / 8] & mask) {
          next[bit / 8] &= static_cast<std::uint8_t>(~mask);
          --bit;
        } else {
          next[bit / 8] |= mask;
          break;
        }
      }
      EXPECT_EQ(node_id(next), views[i + 1].prefix);
    }
  }
  EXPECT_EQ(total, table.size());
}

TEST(RoutingTable, RejectsSelf) {
  std::mt19937_64 rng(1);
  node_id self = random_id(rng);
  routing_table table(self);
  EXPECT_EQ(table.insert(make_contact(self, "udp://198.18.0.1:4000"), t0).outcome,
            insert_outcome::rejected_self);
  EXPECT_EQ(table.size(), 0u);
}

TEST(RoutingTable, RejectsZeroK) {
  routing_table_config cfg;
  cfg.k = 0;
  EXPECT_THROW(routing_table(node_id{}, cfg), std::invalid_argument);
}

TEST(RoutingTable, AddsFindsAndRemoves) {
  std::mt19937_64 rng(2);
  node_id self = random_id(rng);
  routing_table table(self);
  contact a = make_contact(random_id(rng), "udp://198.18.0.1:4000");
  a.rtt = 3ms;
  auto r = table.insert(a, t0);
  EXPECT_EQ(r.outcome, insert_outcome::added);
  EXPECT_FALSE(r.to_ping);
  ASSERT_TRUE(table.find(a.id));
  EXPECT_EQ(table.find(a.id)->last_seen, t0);
  EXPECT_EQ(table.find(a.id)->rtt, 3ms);
  EXPECT_EQ(table.find(a.id)->addresses, a.addresses);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_FALSE(table.find(random_id(rng)));
  EXPECT_TRUE(table.remove(a.id));
  EXPECT_FALSE(table.remove(a.id));
  EXPECT_FALSE(table.find(a.id));
  EXPECT_EQ(table.size(), 0u);
}

TEST(RoutingTable, UpdatedMovesToMostRecentlySeen) {
  std::mt19937_64 rng(3);
  node_id self = random_id(rng);
  routing_table table(self, unlimited());
  std::vector<contact> cs;
  for (int i = 0; i < 3; ++i) {
    cs.push_back(make_contact(random_id(rng), unique_v4(i)));
    cs.back().rtt = 8ms;
    ASSERT_EQ(table.insert(cs.back(), t0 + i * 1s).outcome, insert_outcome::added);
  }
  contact again = cs[0];
  again.rtt = 16ms;
  again.addresses = {"tcp://198.18.9.9:5000"};
  EXPECT_EQ(table.insert(again, t0 + 10s).outcome, insert_outcome::updated);
  auto views = table.buckets();
  ASSERT_EQ(views.size(), 1u);
  EXPECT_EQ(ids_of(views[0].contacts), (std::vector<node_id>{cs[1].id, cs[2].id, cs[0].id}));
  auto got = table.find(cs[0].id);
  EXPECT_EQ(got->last_seen, t0 + 10s);
  EXPECT_EQ(got->rtt, 9ms);  // smoothed: 8 + (16 - 8) / 8
  EXPECT_EQ(got->addresses, again.addresses);

  // An update without addresses (seen over its own session) keeps the known addresses.
  EXPECT_EQ(table.insert(make_contact(cs[1].id), t0 + 11s).outcome, insert_outcome::updated);
  EXPECT_EQ(table.find(cs[1].id)->addresses, cs[1].addresses);
  EXPECT_EQ(ids_of(table.buckets()[0].contacts),
            (std::vector<node_id>{cs[2].id, cs[0].id, cs[1].id}));

  // on_seen does the same for any successful interaction.
  table.on_seen(cs[2].id, t0 + 12s, 0us);
  EXPECT_EQ(ids_of(table.buckets()[0].contacts),
            (std::vector<node_id>{cs[0].id, cs[1].id, cs[2].id}));
  EXPECT_EQ(table.find(cs[2].id)->last_seen, t0 + 12s);
  EXPECT_EQ(table.find(cs[2].id)->rtt, 8ms);  // a zero sample is no sample
  EXPECT_EQ(table.size(), 3u);
}

TEST(RoutingTable, SplitsOnlyOwnBucket) {
  std::mt19937_64 rng(4);
  node_id self = random_id(rng);
  routing_table table(self, unlimited());
  // Two contacts at each common-prefix length 2..21: closer to self than any far contact.
  std::vector<node_id> near;
  for (int i = 0; i < 40; ++i) {
    near.push_back(id_with_prefix(self, 2 + i % 20, 1000 + i));
    ASSERT_EQ(table.insert(make_contact(near.back()), t0).outcome, insert_outcome::added);
  }
  // Thirty in the far half (first bit differs from self): only k fit.
  std::vector<node_id> far;
  for (int i = 0; i < 30; ++i) {
    far.push_back(id_with_prefix(self, 0, 2000 + i));
    auto r = table.insert(make_contact(far.back()), t0 + (i + 1) * 1s);
    if (i < 20) {
      EXPECT_EQ(r.outcome, insert_outcome::added) << i;
    } else if (i == 20) {
      EXPECT_EQ(r.outcome, insert_outcome::pending_ping);
    } else {
      EXPECT_EQ(r.outcome, insert_outcome::cached) << i;
    }
  }
  expect_well_formed(table);
  auto views = table.buckets();
  const auto& far_bucket = bucket_of(views, far[0]);
  EXPECT_EQ(far_bucket.depth, 1);
  EXPECT_EQ(far_bucket.contacts.size(), 20u);
  EXPECT_EQ(far_bucket.replacements, 10u);
  EXPECT_GT(bucket_of(views, self).depth, 2);
  for (const auto& b : views) {
    if (in_range(b, self)) continue;
    // Every other bucket is a sibling along self's path: it was never split itself.
    EXPECT_EQ(b.depth, b.prefix.common_prefix_length(self) + 1);
  }
  for (const auto& id : near) EXPECT_TRUE(table.find(id));
  EXPECT_EQ(table.size(), 60u);
}

TEST(RoutingTable, RelaxedRuleKeepsClosestInUnbalancedTree) {
  std::mt19937_64 rng(5);
  node_id self = random_id(rng);
  routing_table table(self, unlimited());
  // Everything lands on one side: ids sharing exactly 3 bits with self, then a few far ones.
  std::vector<contact> inserted;
  for (int i = 0; i < 400; ++i) {
    inserted.push_back(make_contact(id_with_prefix(self, 3, 5000 + i)));
    table.insert(inserted.back(), t0 + i * 1ms);
  }
  for (int i = 0; i < 40; ++i) {
    inserted.push_back(make_contact(id_with_prefix(self, 0, 6000 + i)));
    table.insert(inserted.back(), t0 + 1s + i * 1ms);
  }
  expect_well_formed(table);
  EXPECT_EQ(ids_of(table.closest(self, default_k)),
            brute_force_closest(inserted, self, default_k, false));
  EXPECT_LT(table.size(), inserted.size());  // far-away surplus was not kept
  // Some bucket off self's path was split (relaxed rule).
  bool off_path_split = false;
  for (const auto& b : table.buckets())
    if (!in_range(b, self) && b.depth > b.prefix.common_prefix_length(self) + 1)
      off_path_split = true;
  EXPECT_TRUE(off_path_split);
}

struct full_bucket_fixture {
  // k = 4: four near contacts, then four far ones (first bit differs) that fill the far bucket.
  node_id self;
  routing_table table;
  std::vector<node_id> far;

  full_bucket_fixture() : self(id_with_prefix(node_id{}, 0, 7)), table(self, unlimited(4)) {
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(table.insert(make_contact(id_with_prefix(self, 10 + i, 70 + i)), t0).outcome,
                insert_outcome::added);
    for (int i = 0; i < 4; ++i) {
      far.push_back(id_with_prefix(self, 0, 80 + i));
      EXPECT_EQ(table.insert(make_contact(far.back(), unique_v4(i)), t0 + (i + 1) * 1s).outcome,
                insert_outcome::added);
    }
  }
  std::size_t replacements_of(const node_id& id) const {
    return bucket_of(table.buckets(), id).replacements;
  }
};

TEST(RoutingTable, FullBucketAsksToPingLeastRecentlySeen) {
  full_bucket_fixture f;
  node_id newcomer = id_with_prefix(f.self, 0, 90);
  auto r = f.table.insert(make_contact(newcomer, unique_v4(10)), t0 + 10s);
  ASSERT_EQ(r.outcome, insert_outcome::pending_ping);
  ASSERT_TRUE(r.to_ping);
  EXPECT_EQ(r.to_ping->id, f.far[0]);
  EXPECT_EQ(r.to_ping->addresses, std::vector<std::string>{unique_v4(0)});
  EXPECT_FALSE(f.table.find(newcomer));
  EXPECT_EQ(f.replacements_of(newcomer), 1u);
  // While that ping is outstanding, more newcomers only wait.
  EXPECT_EQ(f.table.insert(make_contact(id_with_prefix(f.self, 0, 91), unique_v4(11)), t0 + 11s)
                .outcome,
            insert_outcome::cached);
  EXPECT_EQ(f.replacements_of(newcomer), 2u);
  EXPECT_EQ(f.table.size(), 8u);
}

TEST(RoutingTable, FullBucketPingsOnlyAQuietLeastRecentlySeenContact) {
  // The default: a least-recently-seen contact heard from within ping_if_quiet_for is good.
  node_id self = id_with_prefix(node_id{}, 0, 7);
  routing_table_config cfg;
  cfg.k = 4;
  cfg.max_per_prefix = 0;
  routing_table table(self, cfg);
  for (int i = 0; i < 4; ++i)  // near ones first, so that the far bucket is full and cannot split
    ASSERT_EQ(table.insert(make_contact(id_with_prefix(self, 10 + i, 70 + i)), t0).outcome,
              insert_outcome::added);
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(table.insert(make_contact(id_with_prefix(self, 0, 80 + i), unique_v4(i)), t0).outcome,
              insert_outcome::added);
  node_id newcomer = id_with_prefix(self, 0, 90);
  auto fresh = table.insert(make_contact(newcomer, unique_v4(10)), t0 + cfg.ping_if_quiet_for - 1s);
  EXPECT_EQ(fresh.outcome, insert_outcome::cached);
  EXPECT_FALSE(fresh.to_ping);
  EXPECT_FALSE(table.find(newcomer));
  node_id second = id_with_prefix(self, 0, 91);
  auto quiet = table.insert(make_contact(second, unique_v4(11)), t0 + cfg.ping_if_quiet_for);
  ASSERT_EQ(quiet.outcome, insert_outcome::pending_ping);
  EXPECT_EQ(quiet.to_ping->id, id_with_prefix(self, 0, 80));
  expect_well_formed(table);
}

TEST(RoutingTable, PingAnsweredKeepsOldContact) {
  full_bucket_fixture f;
  node_id newcomer = id_with_prefix(f.self, 0, 90);
  ASSERT_EQ(f.table.insert(make_contact(newcomer, unique_v4(10)), t0 + 10s).outcome,
            insert_outcome::pending_ping);
  f.table.on_ping_answered(f.far[0], t0 + 11s, 20ms);
  auto kept = f.table.find(f.far[0]);
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->last_seen, t0 + 11s);
  EXPECT_EQ(kept->rtt, 20ms);
  EXPECT_FALSE(f.table.find(newcomer));
  EXPECT_EQ(f.replacements_of(newcomer), 1u);
  auto far_contacts = bucket_of(f.table.buckets(), f.far[0]).contacts;
  EXPECT_EQ(far_contacts.back().id, f.far[0]);  // most recently seen now
  // The next newcomer asks for a ping of the new least-recently-seen contact.
  auto r = f.table.insert(make_contact(id_with_prefix(f.self, 0, 92), unique_v4(12)), t0 + 12s);
  ASSERT_EQ(r.outcome, insert_outcome::pending_ping);
  EXPECT_EQ(r.to_ping->id, f.far[1]);
}

TEST(RoutingTable, PingFailedEvictsAndPromotesNewestReplacement) {
  full_bucket_fixture f;
  node_id older = id_with_prefix(f.self, 0, 90);
  node_id newer = id_with_prefix(f.self, 0, 91);
  ASSERT_EQ(f.table.insert(make_contact(older, unique_v4(10)), t0 + 10s).outcome,
            insert_outcome::pending_ping);
  ASSERT_EQ(f.table.insert(make_contact(newer, unique_v4(11)), t0 + 11s).outcome,
            insert_outcome::cached);
  f.table.on_ping_failed(f.far[0]);
  EXPECT_FALSE(f.table.find(f.far[0]));
  EXPECT_TRUE(f.table.find(newer));
  EXPECT_FALSE(f.table.find(older));
  EXPECT_EQ(f.replacements_of(older), 1u);
  EXPECT_EQ(f.table.size(), 8u);
  // The ping was settled: the next newcomer triggers a new one, for far[1].
  auto r = f.table.insert(make_contact(id_with_prefix(f.self, 0, 92), unique_v4(12)), t0 + 12s);
  ASSERT_EQ(r.outcome, insert_outcome::pending_ping);
  EXPECT_EQ(r.to_ping->id, f.far[1]);
  expect_well_formed(f.table);
}

TEST(RoutingTable, AWaitingReplacementKeepsItsAddressesWhenHeardFromAgain) {
  full_bucket_fixture f;
  node_id waiting = id_with_prefix(f.self, 0, 90);
  ASSERT_EQ(f.table.insert(make_contact(waiting, unique_v4(10)), t0 + 10s).outcome,
            insert_outcome::pending_ping);
  // A request over its own session: known alive, no addresses in hand.
  contact bare;
  bare.id = waiting;
  ASSERT_EQ(f.table.insert(bare, t0 + 11s).outcome, insert_outcome::cached);
  f.table.on_ping_failed(f.far[0]);
  auto promoted = f.table.find(waiting);
  ASSERT_TRUE(promoted);
  EXPECT_TRUE(promoted->dialable()) << "the addresses it announced are still where it listens";
  expect_well_formed(f.table);
}

TEST(RoutingTable, ASessionMarksAContactOrAReplacementUntilItEnds) {
  full_bucket_fixture f;
  node_id waiting = id_with_prefix(f.self, 0, 90);
  ASSERT_EQ(f.table.insert(make_contact(waiting, unique_v4(10)), t0 + 10s).outcome,
            insert_outcome::pending_ping);
  f.table.set_connected(waiting, true);
  f.table.set_connected(f.far[1], true);
  auto connected_replacement = [&] {
    for (const contact& c : f.table.replacements())
      if (c.id == waiting) return c.connected;
    return false;
  };
  EXPECT_TRUE(connected_replacement());
  EXPECT_TRUE(f.table.find(f.far[1])->connected);
  EXPECT_FALSE(f.table.find(f.far[2])->connected);
  // Heard of again from a FIND_NODE reply (which knows nothing of our sessions): still connected.
  ASSERT_EQ(f.table.insert(make_contact(waiting, unique_v4(10)), t0 + 12s).outcome, insert_outcome::cached);
  EXPECT_TRUE(connected_replacement());
  f.table.on_ping_failed(f.far[0]);
  EXPECT_TRUE(f.table.find(waiting)->connected) << "promoted with its session";
  f.table.set_connected(waiting, false);
  EXPECT_FALSE(f.table.find(waiting)->connected);
}

TEST(RoutingTable, ThreeRequestFailuresRemoveAContact) {
  full_bucket_fixture f;
  node_id waiting = id_with_prefix(f.self, 0, 90);
  ASSERT_EQ(f.table.insert(make_contact(waiting, unique_v4(10)), t0 + 10s).outcome,
            insert_outcome::pending_ping);
  f.table.on_ping_answered(f.far[0], t0 + 11s, 1ms);

  // Two failures, then a success: the count starts again.
  f.table.on_request_failed(f.far[2]);
  f.table.on_request_failed(f.far[2]);
  EXPECT_EQ(f.table.find(f.far[2])->failures, 2);
  f.table.on_seen(f.far[2], t0 + 12s, 1ms);
  EXPECT_EQ(f.table.find(f.far[2])->failures, 0);
  f.table.on_request_failed(f.far[2]);
  f.table.on_request_failed(f.far[2]);
  EXPECT_TRUE(f.table.find(f.far[2]));
  f.table.on_request_failed(f.far[2]);
  EXPECT_FALSE(f.table.find(f.far[2]));
  EXPECT_TRUE(f.table.find(waiting));  // promoted from the replacement cache
  EXPECT_EQ(f.table.size(), 8u);

  // Without replacements the bucket just shrinks.
  for (int i = 0; i < max_consecutive_failures; ++i) f.table.on_request_failed(f.far[1]);
  EXPECT_FALSE(f.table.find(f.far[1]));
  EXPECT_EQ(f.table.size(), 7u);
  expect_well_formed(f.table);
}

// A contact another node names (learn) is no sign of life: a known one keeps its place, its
// last sighting, its failure count and its own addresses, so a dead node that stale replies
// still list goes after its failures, and a third node cannot re-point a victim's id. An
// unknown one is added as insert would; one known without addresses gets them.
TEST(RoutingTable, ContactsNamedByOthersNeitherRefreshNorReaddressKnownOnes) {
  std::mt19937_64 rng(17);
  node_id self = random_id(rng);
  routing_table table(self, unlimited());
  const contact dying = make_contact(random_id(rng), unique_v4(1));
  const contact other = make_contact(random_id(rng), unique_v4(2));
  ASSERT_EQ(table.insert(dying, t0).outcome, insert_outcome::added);
  ASSERT_EQ(table.insert(other, t0 + 1s).outcome, insert_outcome::added);
  table.on_request_failed(dying.id);

  contact named = dying;
  named.addresses = {"udp://198.19.66.6:4000"};  // where a third node says it is
  for (int mention = 0; mention < max_consecutive_failures - 1; ++mention) {
    EXPECT_EQ(table.learn(named, t0 + 10s).outcome, insert_outcome::updated);
    auto known = table.find(dying.id);
    ASSERT_TRUE(known);
    EXPECT_EQ(known->addresses, dying.addresses);
    EXPECT_EQ(known->last_seen, t0);
    EXPECT_EQ(known->failures, 1 + mention);
    EXPECT_EQ(ids_of(table.buckets()[0].contacts), (std::vector<node_id>{dying.id, other.id}));
    table.on_request_failed(dying.id);
  }
  EXPECT_FALSE(table.find(dying.id)) << "its failures counted up however often it was named";

  const contact fresh = make_contact(random_id(rng), unique_v4(3));
  EXPECT_EQ(table.learn(fresh, t0 + 20s).outcome, insert_outcome::added);
  EXPECT_EQ(table.find(fresh.id)->addresses, fresh.addresses);

  // Known only over its session (no address): a named address is better than none.
  const node_id session_only = random_id(rng);
  ASSERT_EQ(table.insert(make_contact(session_only), t0 + 21s).outcome, insert_outcome::added);
  EXPECT_EQ(table.learn(make_contact(session_only, unique_v4(4)), t0 + 22s).outcome, insert_outcome::updated);
  EXPECT_EQ(table.find(session_only)->addresses, std::vector<std::string>{unique_v4(4)});
  EXPECT_EQ(table.learn(make_contact(self, unique_v4(5)), t0 + 23s).outcome, insert_outcome::rejected_self);
  expect_well_formed(table);
}

TEST(RoutingTable, PrefixLimitIPv4) {
  std::mt19937_64 rng(8);
  node_id self = random_id(rng);
  routing_table table(self);  // max_per_prefix = 2
  EXPECT_EQ(table.insert(make_contact(random_id(rng), "udp://198.18.7.1:4000"), t0).outcome,
            insert_outcome::added);
  EXPECT_EQ(table.insert(make_contact(random_id(rng), "tcp://198.18.7.200:4000"), t0).outcome,
            insert_outcome::added);
  node_id third = random_id(rng);
  EXPECT_EQ(table.insert(make_contact(third, "udp://198.18.7.3:4001"), t0).outcome,
            insert_outcome::rejected_prefix);
  EXPECT_FALSE(table.find(third));
  EXPECT_EQ(table.insert(make_contact(third, "udp://198.18.8.3:4001"), t0).outcome,
            insert_outcome::added);
  // An update cannot move a contact into the crowded /24; it keeps its old address.
  EXPECT_EQ(table.insert(make_contact(third, "udp://198.18.7.9:4001"), t0 + 1s).outcome,
            insert_outcome::updated);
  EXPECT_EQ(table.find(third)->addresses, std::vector<std::string>{"udp://198.18.8.3:4001"});
}

TEST(RoutingTable, PrefixLimitIPv6) {
  std::mt19937_64 rng(9);
  node_id self = random_id(rng);
  routing_table table(self);
  EXPECT_EQ(table.insert(make_contact(random_id(rng), "udp://[2001:db8:1:2::1]:4000"), t0).outcome,
            insert_outcome::added);
  EXPECT_EQ(
      table.insert(make_contact(random_id(rng), "udp://[2001:db8:1:2:ffff::7]:4000"), t0).outcome,
      insert_outcome::added);
  EXPECT_EQ(table.insert(make_contact(random_id(rng), "tcp://[2001:db8:1:2::99]:4000"), t0).outcome,
            insert_outcome::rejected_prefix);
  EXPECT_EQ(table.insert(make_contact(random_id(rng), "tcp://[2001:db8:1:3::1]:4000"), t0).outcome,
            insert_outcome::added);
  // Outbound-only contacts have no network to count.
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(table.insert(make_contact(random_id(rng)), t0).outcome, insert_outcome::added);
}

TEST(RoutingTable, PrefixLimitDisabledWithZero) {
  std::mt19937_64 rng(10);
  routing_table table(random_id(rng), unlimited());
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(table.insert(make_contact(random_id(rng), "udp://127.0.0.1:" + std::to_string(4000 + i)),
                           t0)
                  .outcome,
              insert_outcome::added);
  EXPECT_EQ(table.size(), 10u);
}

TEST(RoutingTable, PrefixLimitIsPerBucket) {
  node_id self = id_with_prefix(node_id{}, 0, 11);
  routing_table_config cfg;
  cfg.k = 4;
  cfg.max_per_prefix = 1;
  routing_table table(self, cfg);
  node_id far_a = id_with_prefix(self, 0, 110);
  EXPECT_EQ(table.insert(make_contact(far_a, "udp://198.18.1.1:4000"), t0).outcome,
            insert_outcome::added);
  EXPECT_EQ(table.insert(make_contact(id_with_prefix(self, 0, 111), "udp://198.18.1.2:4000"), t0)
                .outcome,
            insert_outcome::rejected_prefix);
  // Near contacts without addresses make the table split; then a near contact from the same /24
  // lands in another bucket and is accepted.
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(table.insert(make_contact(id_with_prefix(self, 5 + i, 120 + i)), t0).outcome,
              insert_outcome::added);
  node_id near_b = id_with_prefix(self, 1, 130);
  EXPECT_EQ(table.insert(make_contact(near_b, "udp://198.18.1.3:4000"), t0).outcome,
            insert_outcome::added);
  auto views = table.buckets();
  EXPECT_NE(bucket_of(views, far_a).prefix, bucket_of(views, near_b).prefix);
  expect_well_formed(table);
}

TEST(RoutingTable, OutboundOnlyContactsAreNotHandedOut) {
  std::mt19937_64 rng(12);
  node_id self = random_id(rng);
  routing_table table(self);
  std::vector<node_id> dialable, hidden;
  for (int i = 0; i < 6; ++i) {
    dialable.push_back(random_id(rng));
    hidden.push_back(random_id(rng));
    ASSERT_EQ(table.insert(make_contact(dialable.back(), unique_v4(i)), t0).outcome,
              insert_outcome::added);
    ASSERT_EQ(table.insert(make_contact(hidden.back()), t0).outcome, insert_outcome::added);
  }
  EXPECT_EQ(table.size(), 12u);
  EXPECT_TRUE(table.find(hidden[0]));
  node_id target = random_id(rng);
  auto handed_out = table.closest(target, 20, true);
  EXPECT_EQ(handed_out.size(), 6u);
  for (const auto& c : handed_out) EXPECT_TRUE(c.dialable());
  EXPECT_EQ(table.closest(target, 20).size(), 12u);
  EXPECT_EQ(table.closest(target, 0).size(), 0u);
}

TEST(RoutingTable, ClosestMatchesBruteForce) {
  const std::uint64_t seed = property_seed;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  node_id self = random_id(rng);
  routing_table table(self, unlimited());
  for (int i = 0; i < 2000; ++i) {
    contact c = make_contact(random_id(rng));
    if (i % 3 != 0) c.addresses.push_back(unique_v4(static_cast<std::size_t>(i)));
    table.insert(c, t0 + i * 1ms);
  }
  // Some near neighbours as well, so that the tree is deep on self's side.
  for (int i = 0; i < 200; ++i)
    table.insert(make_contact(id_with_prefix(self, 1 + i % 40, rng()), unique_v4(i)), t0 + 3s);
  expect_well_formed(table);
  const auto everything = table.all();
  ASSERT_EQ(everything.size(), table.size());
  ASSERT_GT(table.buckets().size(), 5u);

  for (int t = 0; t < 50; ++t) {
    // Half random targets, half near self or near a known contact.
    node_id target = t % 3 == 0   ? random_id(rng)
                     : t % 3 == 1 ? id_with_prefix(self, 1 + t % 30, rng())
                                  : everything[rng() % everything.size()].id;
    for (std::size_t n : {std::size_t{1}, std::size_t{3}, default_k, std::size_t{57},
                          std::size_t{10000}}) {
      for (bool dialable_only : {false, true}) {
        ASSERT_EQ(ids_of(table.closest(target, n, dialable_only)),
                  brute_force_closest(everything, target, n, dialable_only))
            << "target " << target.to_hex() << " n " << n << " dialable_only " << dialable_only;
      }
    }
  }
}

TEST(RoutingTable, RefreshTargetsOnlyForStaleBucketsInsideTheirRange) {
  std::mt19937_64 rng(13);
  node_id self = random_id(rng);
  routing_table_config cfg = unlimited();
  cfg.refresh_interval = 15min;
  routing_table table(self, cfg);
  for (int i = 0; i < 60; ++i) table.insert(make_contact(id_with_prefix(self, i % 12, 300 + i)), t0);
  auto views = table.buckets();
  ASSERT_GT(views.size(), 8u);
  std::mt19937_64 random_bytes(14);
  auto random = [&](mutable_byte_span out) {
    for (auto& b : out) b = static_cast<std::uint8_t>(random_bytes());
  };

  // A new table's buckets have never been refreshed: all are due.
  {
    routing_table fresh(self, cfg);
    EXPECT_LE(fresh.next_refresh(), t0);
    EXPECT_EQ(fresh.refresh_targets(t0, random).size(), 1u);
    EXPECT_TRUE(fresh.refresh_targets(t0 + 1s, random).empty());
    EXPECT_EQ(fresh.next_refresh(), t0 + 15min);
  }

  for (const auto& b : views) table.touched(b.prefix, t0);
  EXPECT_EQ(table.next_refresh(), t0 + 15min);
  EXPECT_TRUE(table.refresh_targets(t0 + 14min, random).empty());
  // One bucket was looked up at +10 min, another got an insert at +12 min: both stay fresh.
  const node_id looked_up = views[1].prefix;
  table.touched(looked_up, t0 + 10min);
  // A sibling bucket along self's path with room (contacts at one common-prefix length).
  const bucket_view* roomy = nullptr;
  for (const auto& v : views)
    if (!in_range(v, self) && v.prefix != looked_up && v.contacts.size() < cfg.k) roomy = &v;
  ASSERT_NE(roomy, nullptr);
  node_id inserted = id_with_prefix(self, roomy->prefix.common_prefix_length(self), 999);
  ASSERT_TRUE(in_range(*roomy, inserted));
  ASSERT_EQ(table.insert(make_contact(inserted), t0 + 12min).outcome, insert_outcome::added);
  ASSERT_EQ(table.buckets().size(), views.size());

  auto targets = table.refresh_targets(t0 + 20min, random);
  EXPECT_EQ(targets.size(), views.size() - 2);
  std::vector<std::size_t> hits(views.size(), 0);
  for (const auto& target : targets) {
    std::size_t owner = views.size();
    for (std::size_t i = 0; i < views.size(); ++i)
      if (in_range(views[i], target)) owner = i;
    ASSERT_LT(owner, views.size()) << target.to_hex();
    ++hits[owner];
    EXPECT_NE(views[owner].prefix, looked_up);
    EXPECT_FALSE(in_range(views[owner], inserted));
  }
  for (std::size_t h : hits) EXPECT_LE(h, 1u);
  // Refreshed buckets are not due again until another interval has passed.
  EXPECT_EQ(table.refresh_targets(t0 + 21min, random).size(), 0u);
  EXPECT_EQ(table.next_refresh(), t0 + 25min);
  EXPECT_EQ(table.refresh_targets(t0 + 26min, random).size(), 1u);  // the one looked up at +10
}

TEST(RoutingTable, ABucketThatSplitsOffEmptyIsRefreshedSoonIfStillEmpty) {
  std::mt19937_64 rng(15);
  node_id self = random_id(rng);
  routing_table_config cfg = unlimited();
  routing_table table(self, cfg);
  auto random = [&](mutable_byte_span out) {
    for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  };
  // k contacts sharing at least 3 bits with self, then one more: the own bucket splits three
  // times, each time leaving a half with nobody in it (the ids that differ at bit 0, 1 or 2).
  for (int i = 0; i < static_cast<int>(cfg.k); ++i) table.insert(make_contact(id_with_prefix(self, 3 + i % 5, 500 + i)), t0);
  for (const auto& b : table.buckets()) table.touched(b.prefix, t0);
  ASSERT_EQ(table.insert(make_contact(id_with_prefix(self, 4, 900)), t0 + 1min).outcome, insert_outcome::added);
  std::vector<bucket_view> empty;
  for (const auto& b : table.buckets())
    if (b.contacts.empty()) empty.push_back(b);
  ASSERT_GE(empty.size(), 3u);
  EXPECT_EQ(table.next_refresh(), t0 + 1min + cfg.empty_bucket_refresh);
  // One of them hears from a node meanwhile: only the others are still worth a lookup.
  node_id heard = id_with_prefix(self, empty[0].prefix.common_prefix_length(self), 901);
  ASSERT_TRUE(in_range(empty[0], heard));
  table.insert(make_contact(heard), t0 + 1min + 1s);
  auto targets = table.refresh_targets(t0 + 1min + cfg.empty_bucket_refresh, random);
  EXPECT_EQ(targets.size(), empty.size() - 1);
  for (const auto& target : targets) {
    EXPECT_FALSE(in_range(empty[0], target));
    EXPECT_TRUE(std::any_of(empty.begin(), empty.end(), [&](const bucket_view& b) { return in_range(b, target); }));
  }
}

TEST(RoutingTable, RefreshTargetsRandomiseBitsBelowDepth) {
  node_id self = id_with_prefix(node_id{}, 0, 15);
  routing_table table(self, unlimited(2));
  for (int i = 0; i < 8; ++i) table.insert(make_contact(id_with_prefix(self, 30 + i, 150 + i)), t0);
  std::mt19937_64 random_bytes(16);
  auto random = [&](mutable_byte_span out) {
    for (auto& b : out) b = static_cast<std::uint8_t>(random_bytes());
  };
  auto views = table.buckets();
  std::vector<node_id> first = table.refresh_targets(t0 + 2h, random);
  ASSERT_EQ(first.size(), views.size());
  std::vector<node_id> second = table.refresh_targets(t0 + 4h, random);
  ASSERT_EQ(second.size(), views.size());
  for (std::size_t i = 0; i < views.size(); ++i) {
    EXPECT_TRUE(in_range(views[i], first[i]));
    EXPECT_TRUE(in_range(views[i], second[i]));
    EXPECT_NE(first[i], second[i]);
  }
}

TEST(RoutingTable, AllAndBucketViewsReflectContents) {
  std::mt19937_64 rng(17);
  node_id self = random_id(rng);
  routing_table table(self, unlimited(4));
  std::vector<node_id> attempted, added;
  for (int i = 0; i < 100; ++i) {
    attempted.push_back(random_id(rng));
    if (table.insert(make_contact(attempted.back()), t0).outcome == insert_outcome::added)
      added.push_back(attempted.back());
  }
  expect_well_formed(table);
  for (const auto& id : added) EXPECT_TRUE(table.find(id));  // nothing was evicted
  // Splits may have promoted waiting replacements too: all() is exactly what find() knows.
  std::vector<node_id> known;
  for (const auto& id : attempted)
    if (table.find(id)) known.push_back(id);
  auto all = ids_of(table.all());
  std::sort(all.begin(), all.end());
  std::sort(known.begin(), known.end());
  EXPECT_EQ(all, known);
  EXPECT_LT(all.size(), attempted.size());
  std::size_t waiting = 0;
  for (const auto& b : table.buckets()) waiting += b.replacements;
  EXPECT_GT(waiting, 0u);
}

}  // namespace
}  // namespace kadnet::dht
