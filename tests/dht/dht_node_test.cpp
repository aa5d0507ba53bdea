// dht::dht_node in an in-memory network of 200 nodes on virtual time (tests/support/dht_network.hpp):
// joining, exact find_node, put/get, owner-signed values and forged STOREs, churn, quotas, TTL and
// republish, and the number of lookup rounds. Fixed seeds, printed on failure.
#include "kadnet/dht/dht_node.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kadnet/core/errors.hpp"
#include "kadnet/dht/cas_codec.hpp"
#include "kadnet/dht/dht_codec.hpp"
#include "tests/support/dht_network.hpp"

namespace kadnet::dht {
namespace {

using namespace std::chrono_literals;
using core::node_id;
using testing::dht_network;

constexpr std::uint64_t default_seed = 0x6468746e6f6465ull;  // "dhtnode"
constexpr std::size_t network_size = 200;

node_id random_id(std::mt19937_64& rng) {
  node_id::bytes_type b;
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return node_id(b);
}

byte_vector bytes_of(const std::string& s) { return byte_vector(s.begin(), s.end()); }

// One dht_node whose requests the test answers by hand: seeded randomness, a fixed key.
struct hand_driven_node {
  hand_driven_node(std::uint64_t seed, std::uint8_t key) : rng(seed), self(core::identity::from_seed(std::array<std::uint8_t, 32>{key})) {}
  std::mt19937_64 rng;
  core::identity self;
  memory_store store{store_limits{}};
  dht_config config;
  dht_node node{self, config, store, [this](mutable_byte_span out) {
                  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
                }};

  // Announces `n` random contacts at sim://0, sim://1, ... and drops what the node then sends.
  void meet(int n, core::time_point now) {
    for (int i = 0; i < n; ++i) node.on_peer_announced(random_id(rng), {"sim://" + std::to_string(i)}, now);
    while (node.poll_request()) {
    }
  }
};

std::vector<std::string> hex(const std::vector<node_id>& ids) {
  std::vector<std::string> out;
  for (const auto& id : ids) out.push_back(id.short_hex());
  return out;
}

std::vector<std::string> hex(const std::vector<contact>& cs) {
  std::vector<std::string> out;
  for (const auto& c : cs) out.push_back(c.id.short_hex());
  return out;
}

std::string seed_text(std::uint64_t seed) { return "seed " + std::to_string(seed); }

std::size_t random_index(dht_network& net, bool alive_only = true, std::size_t except = SIZE_MAX) {
  std::uniform_int_distribution<std::size_t> pick(0, net.size() - 1);
  for (;;) {
    std::size_t i = pick(net.rng());
    if (i == except) continue;
    if (!alive_only || net.node(i).alive) return i;
  }
}

// Indices of nodes holding a live copy of key.
std::vector<std::size_t> holders(dht_network& net, const node_id& key) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < net.size(); ++i)
    if (net.node(i).alive && net.node(i).store->get(key, net.now())) out.push_back(i);
  return out;
}

std::unique_ptr<dht_network> joined_network(std::uint64_t seed, std::size_t n = network_size,
                                            dht_config config = {}) {
  auto net = std::make_unique<dht_network>(seed, config);
  for (std::size_t i = 0; i < n; ++i) net->add_node();
  net->join_all();
  return net;
}

int percentile(std::vector<int> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

TEST(DhtNode, AllJoinAndFindNodeIsExact) {
  SCOPED_TRACE(seed_text(default_seed));
  auto net = joined_network(default_seed);
  for (std::size_t i = 0; i < net->size(); ++i) EXPECT_GE(net->node(i).dht->table().size(), 1u) << i;

  std::vector<int> rounds;
  for (int t = 0; t < 30; ++t) {
    std::size_t from = random_index(*net);
    node_id target = random_id(net->rng());
    auto r = net->find_node(from, target);
    ASSERT_FALSE(r.ec) << r.ec.message();
    auto expected = net->true_closest(target, default_k, from);
    std::vector<node_id> got;
    for (const auto& c : r.closest) {
      got.push_back(c.id);
      EXPECT_TRUE(c.dialable());
    }
    EXPECT_EQ(hex(got), hex(expected)) << "from node " << from;
    rounds.push_back(r.stats.rounds);
  }
  std::printf("find_node rounds (200 nodes): median %d, p99 %d\n", percentile(rounds, 0.5),
              percentile(rounds, 0.99));
}

TEST(DhtNode, PutThenGetFromFiftyNodes) {
  SCOPED_TRACE(seed_text(default_seed + 1));
  auto net = joined_network(default_seed + 1);
  std::size_t publisher = random_index(*net);
  node_id key = node_id::hash_of(bytes_of("greeting"));
  auto p = net->put(publisher, key, bytes_of("hello, kadnet"));
  ASSERT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(p.version, 1u);
  EXPECT_GE(p.replicas, default_k);
  // The k closest live nodes hold it.
  auto expected = net->true_closest(key, default_k);
  for (const auto& id : expected) EXPECT_TRUE(net->node(*net->index_of(id)).store->get(key, net->now()));

  std::vector<int> rounds;
  int found = 0;
  for (int g = 0; g < 50; ++g) {
    std::size_t from = random_index(*net, true, publisher);
    auto r = net->get(from, key);
    if (!r.ec && r.value && r.value->value == bytes_of("hello, kadnet") && r.value->version == 1) ++found;
    rounds.push_back(r.stats.rounds);
  }
  EXPECT_EQ(found, 50);
  std::printf("get rounds (200 nodes): median %d, p99 %d\n", percentile(rounds, 0.5),
              percentile(rounds, 0.99));

  // A second put without a version goes one above the highest found.
  auto p2 = net->put(random_index(*net), key, bytes_of("hello again"));
  ASSERT_FALSE(p2.ec) << p2.ec.message();
  EXPECT_EQ(p2.version, 2u);
  for (const auto& id : expected) {
    auto held = net->node(*net->index_of(id)).store->get(key, net->now());
    ASSERT_TRUE(held);
    EXPECT_EQ(held->version, 2u);
  }
  // Copies cached by the gets above (outside the k closest) may still serve version 1, but
  // only for one republish interval: their TTL is capped to it.
  auto fresh = [&] {
    int n = 0;
    for (int g = 0; g < 20; ++g) {
      auto r = net->get(random_index(*net), key);
      if (r.value && r.value->version == 2 && r.value->value == bytes_of("hello again")) ++n;
    }
    return n;
  };
  std::printf("gets seeing version 2 right after the second put: %d/20\n", fresh());
  net->advance(61min);
  EXPECT_EQ(fresh(), 20);
}

TEST(DhtNode, OwnerSignedValueRefusesForgeriesAndOlderVersions) {
  SCOPED_TRACE(seed_text(default_seed + 2));
  auto net = joined_network(default_seed + 2, 60);
  std::size_t owner = random_index(*net);
  node_id key = node_id::hash_of(bytes_of("owned"));
  put_options o;
  o.signed_by_self = true;
  o.version = 5;
  auto p = net->put(owner, key, bytes_of("mine"), o);
  ASSERT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(p.version, 5u);

  auto got = net->get(random_index(*net, true, owner), key);
  ASSERT_TRUE(got.value);
  ASSERT_TRUE(got.value->owner);
  EXPECT_EQ(*got.value->owner, net->node(owner).identity.id());

  auto replicas = holders(*net, key);
  std::erase(replicas, owner);
  ASSERT_FALSE(replicas.empty());
  std::size_t replica = replicas.front();
  auto held = *net->node(replica).store->get(key, net->now());

  // Forged: a newer version with other bytes under the old signature.
  core::wire::store forged = to_store(held, net->now());
  forged.version = 6;
  forged.value = bytes_of("stolen");
  std::size_t attacker = random_index(*net, true, replica);
  auto r = net->request(attacker, replica, forged);
  EXPECT_EQ(r.ec, core::errc::nack);
  EXPECT_EQ(r.code, core::wire::nack_code::bad_request);
  EXPECT_EQ(*net->node(replica).store->get(key, net->now()), held);

  // Older, properly signed by the owner: version_conflict, with the held version as data.
  core::wire::store older = to_store(held, net->now());
  older.version = 4;
  older.value = bytes_of("older");
  older.owner->sig = net->node(owner).identity.sign(core::wire::store_signed_bytes(older));
  r = net->request(attacker, replica, older);
  EXPECT_EQ(r.code, core::wire::nack_code::version_conflict);
  EXPECT_EQ(r.data, (byte_vector{0, 0, 0, 0, 0, 0, 0, 5}));
  EXPECT_EQ(*net->node(replica).store->get(key, net->now()), held);

  // Someone else's signed put under the owned key is refused everywhere.
  put_options other;
  other.signed_by_self = true;
  auto p2 = net->put(random_index(*net, true, owner), key, bytes_of("takeover"), other);
  EXPECT_TRUE(p2.ec);
  EXPECT_EQ(p2.replicas, 0u);
}

TEST(DhtNode, GetsSurviveAThirdOfNodesDying) {
  const std::uint64_t seed = default_seed + 3;
  SCOPED_TRACE(seed_text(seed));
  auto net = joined_network(seed);
  std::vector<std::pair<node_id, byte_vector>> values;
  for (int v = 0; v < 100; ++v) {
    node_id key = random_id(net->rng());
    byte_vector bytes = bytes_of("value " + std::to_string(v));
    auto p = net->put(random_index(*net), key, bytes);
    ASSERT_FALSE(p.ec) << p.ec.message();
    values.emplace_back(key, bytes);
  }
  // Kill a third, never the seed.
  std::vector<std::size_t> order;
  for (std::size_t i = 1; i < net->size(); ++i) order.push_back(i);
  std::shuffle(order.begin(), order.end(), net->rng());
  for (std::size_t i = 0; i < net->size() / 3; ++i) net->kill(order[i]);

  int found = 0;
  std::vector<int> rounds;
  for (const auto& [key, bytes] : values) {
    auto r = net->get(random_index(*net), key);
    if (!r.ec && r.value && r.value->value == bytes) ++found;
    rounds.push_back(r.stats.rounds);
  }
  const double success = 100.0 * found / static_cast<double>(values.size());
  std::printf("gets after killing %zu of %zu nodes: %.1f %% found; rounds median %d, p99 %d\n",
              net->size() / 3, net->size(), success, percentile(rounds, 0.5),
              percentile(rounds, 0.99));
  EXPECT_GE(success, 99.0);

  // Right after the deaths, replies still name dead contacts, so a lookup may miss a live
  // neighbour or two; once bucket refreshes and failures have cleaned the tables, find_node
  // is exact again among the living.
  net->advance(2h);
  for (int t = 0; t < 10; ++t) {
    node_id target = random_id(net->rng());
    std::size_t from = random_index(*net);
    auto r = net->find_node(from, target);
    EXPECT_EQ(hex(r.closest), hex(net->true_closest(target, default_k, from))) << "from node " << from;
  }
}

TEST(DhtNode, GetOfNeverPutKeyIsNotFound) {
  SCOPED_TRACE(seed_text(default_seed + 4));
  auto net = joined_network(default_seed + 4, 50);
  auto r = net->get(3, random_id(net->rng()));
  EXPECT_EQ(r.ec, core::errc::not_found);
  EXPECT_FALSE(r.value);
  EXPECT_GT(r.stats.messages, 0u);
}

// dht_node::abandon (what a cancelled get or put of the public API calls): the lookup sends
// nothing more once the replies to what it had in flight come back, and no result ever comes.
TEST(DhtNode, AnAbandonedOperationSendsNothingMoreAndNeverReports) {
  SCOPED_TRACE(seed_text(default_seed + 4));
  auto net = joined_network(default_seed + 4, 50);
  net->set_delay(20ms);
  const node_id key = node_id::hash_of(bytes_of("abandoned"));
  auto begin_get = [&](dht::dht_node& d, core::time_point now) { return d.get(key, now); };

  // Not abandoned: the lookup goes on past its first replies and reports.
  const auto sent_before_whole = net->messages();
  auto whole = net->start(3, begin_get);
  const auto first_wave = net->messages() - sent_before_whole;
  net->advance(5s);
  ASSERT_TRUE(net->node(3).done.contains(whole));
  EXPECT_GT(net->messages() - sent_before_whole, first_wave) << "a lookup needs more than its first requests";
  EXPECT_FALSE(net->node(3).dht->abandon(whole)) << "done already";

  for (auto begin : std::vector<std::function<dht::operation_id(dht::dht_node&, core::time_point)>>{
           begin_get, [&](dht::dht_node& d, core::time_point now) { return d.put(key, bytes_of("never"), {}, now); }}) {
    const auto sent_before = net->messages();
    auto id = net->start(3, begin);
    const auto in_flight = net->messages() - sent_before;
    EXPECT_GT(in_flight, 0u);
    EXPECT_TRUE(net->node(3).dht->abandon(id));
    EXPECT_FALSE(net->node(3).dht->abandon(id)) << "abandoned once";
    net->advance(5s);
    EXPECT_EQ(net->messages() - sent_before, in_flight) << "nothing sent after the abandon";
    EXPECT_FALSE(net->node(3).done.contains(id));
  }
  // The abandoned put stored nothing anywhere (its lookup never reached the STOREs).
  for (std::size_t i = 0; i < net->size(); ++i) EXPECT_FALSE(net->node(i).store->get(key, net->now())) << i;
}

TEST(DhtNode, StoreQuotaFull) {
  SCOPED_TRACE(seed_text(default_seed + 5));
  dht_network net(default_seed + 5);
  for (int i = 0; i < 5; ++i) net.add_node();
  store_limits tiny;
  tiny.max_values = 1;
  std::size_t small = net.add_node(tiny);
  net.join_all();

  core::wire::store a;
  a.key = node_id::hash_of(bytes_of("a"));
  a.version = 1;
  a.ttl_seconds = 600;
  a.value = bytes_of("first");
  auto r = net.request(0, small, a);
  EXPECT_FALSE(r.ec) << r.ec.message();
  core::wire::store b = a;
  b.key = node_id::hash_of(bytes_of("b"));
  r = net.request(0, small, b);
  EXPECT_EQ(r.code, core::wire::nack_code::quota_full);
  // Anything else is a bad request.
  r = net.request(0, small, core::wire::ping{});
  EXPECT_EQ(r.code, core::wire::nack_code::bad_request);
}

TEST(DhtNode, ValuesExpireUnlessTheirPublisherRepublishes) {
  SCOPED_TRACE(seed_text(default_seed + 6));
  dht_config config;
  config.republish_interval = 20min;
  config.replicate_interval = 20min;
  auto net = joined_network(default_seed + 6, 60, config);

  put_options o;
  o.ttl = 1h;
  std::size_t keeper = random_index(*net);
  std::size_t leaver = random_index(*net, true, keeper);
  node_id kept = node_id::hash_of(bytes_of("kept"));
  node_id dropped = node_id::hash_of(bytes_of("dropped"));
  ASSERT_FALSE(net->put(keeper, kept, bytes_of("still here"), o).ec);
  ASSERT_FALSE(net->put(leaver, dropped, bytes_of("gone soon"), o).ec);
  net->kill(leaver);  // nobody republishes `dropped`

  net->advance(30min);
  EXPECT_FALSE(net->get(random_index(*net), dropped).ec);
  net->advance(3h);
  auto gone = net->get(random_index(*net), dropped);
  EXPECT_EQ(gone.ec, core::errc::not_found);
  EXPECT_TRUE(holders(*net, dropped).empty());
  auto alive = net->get(random_index(*net, true, keeper), kept);
  ASSERT_FALSE(alive.ec) << alive.ec.message();
  EXPECT_EQ(alive.value->value, bytes_of("still here"));
  EXPECT_GE(holders(*net, kept).size(), default_k / 2);
}

TEST(DhtNode, WorksWithDelaysAndDeadNodes) {
  // Each leg takes 200 ms (a 400 ms round trip within the 1 s slot) and a few nodes are dead:
  // lookups advance on replies and on slot deadlines in virtual time.
  SCOPED_TRACE(seed_text(default_seed + 8));
  dht_network net(default_seed + 8);
  for (int i = 0; i < 40; ++i) net.add_node();
  net.set_delay(200ms);
  net.join_all();
  for (std::size_t i : {3u, 11u, 23u, 31u}) net.kill(i);
  node_id key = node_id::hash_of(bytes_of("slow"));
  auto p = net.put(5, key, bytes_of("late but fine"));
  ASSERT_FALSE(p.ec) << p.ec.message();
  EXPECT_GE(p.replicas, default_k);
  auto g = net.get(17, key);
  ASSERT_TRUE(g.value);
  EXPECT_EQ(g.value->value, bytes_of("late but fine"));
  auto f = net.find_node(9, key);
  EXPECT_EQ(hex(f.closest), hex(net.true_closest(key, default_k, 9)));
}

// An id sharing exactly `shared` leading bits with `of`, the rest random.
node_id sharing(const node_id& of, int shared, std::mt19937_64& rng) {
  node_id::bytes_type b = random_id(rng).bytes();
  for (int i = 0; i < core::id_bits; ++i) {
    const int byte = i / 8, bit = 7 - i % 8;
    const bool want = i < shared ? of.bit(i) : (i == shared ? !of.bit(i) : ((b[byte] >> bit) & 1));
    b[byte] = static_cast<std::uint8_t>(want ? (b[byte] | (1 << bit)) : (b[byte] & ~(1 << bit)));
  }
  return node_id(b);
}

TEST(DhtNode, ASubtreeNextToUsThatWeKnowNobodyInIsProbedInOneRound) {
  hand_driven_node h(31, 9);
  auto& [rng, self, store, config, node] = h;
  core::time_point t0{};
  // 21 contacts all sharing 3 or more bits with us: our bucket splits at bits 0, 1 and 2, and
  // the halves that differ from us there start empty.
  for (int i = 0; i < 21; ++i)
    node.on_peer_announced(sharing(self.id(), 3 + i % 6, rng), {"sim://" + std::to_string(i)}, t0);
  while (node.poll_request()) {
  }
  // Inserting touched every bucket but the empty ones, which are due 3 s after their split.
  node.handle_timeout(t0 + config.routing.empty_bucket_refresh);
  std::map<int, int> probes_by_level;  // the level at which the target leaves our path
  std::vector<std::pair<request_token, node_id>> asked;
  while (auto out = node.poll_request()) {
    const auto* f = std::get_if<core::wire::find_node>(&out->body);
    if (!f) continue;
    const int level = f->target.common_prefix_length(self.id());
    if (level >= 3) continue;
    ++probes_by_level[level];
    asked.emplace_back(out->token, f->target);
  }
  ASSERT_EQ(probes_by_level.size(), 3u) << "one probe per empty subtree (levels 0, 1, 2)";
  for (auto [level, sends] : probes_by_level)
    EXPECT_EQ(sends, static_cast<int>(config.lookup.alpha)) << "alpha FIND_NODEs at level " << level;

  // Each answer names a node in the subtree: it is learned, and nothing more is asked (a full
  // lookup would go on to ask the nodes it just learned).
  int n = 100;
  for (const auto& [token, target] : asked) {
    core::reply r;
    encode_contacts({wire_contact{target, {"sim://" + std::to_string(n++)}}}, r.data);
    node.on_reply(token, r, t0 + config.routing.empty_bucket_refresh + 10ms);
  }
  while (auto out = node.poll_request()) {
    if (const auto* f = std::get_if<core::wire::find_node>(&out->body)) {
      EXPECT_GE(f->target.common_prefix_length(self.id()), 3) << "no second round";
    }
  }
  for (const auto& [token, target] : asked) EXPECT_TRUE(node.table().find(target)) << target.short_hex();
}

// Replication hands values on a few STOREs at a time, the next as each is answered: a node that
// holds many values does not queue them all to its peers at once (one close to many keys would
// be sent more than its per-peer send limit). Every value still reaches each of its k closest.
TEST(DhtNode, ReplicationSendsAFewStoresAtATimeAndReachesEveryReplica) {
  hand_driven_node h(43, 5);
  auto& [rng, self, store, config, node] = h;
  core::time_point t0{};
  for (int i = 0; i < 30; ++i) node.on_peer_announced(random_id(rng), {"sim://" + std::to_string(i)}, t0);
  while (node.poll_request()) {  // the contacts' eviction checks, if any: not what this counts
  }
  constexpr std::size_t values = 200;
  for (std::size_t v = 0; v < values; ++v) {
    stored_value held;
    held.key = random_id(rng);
    held.version = 1;
    held.value = bytes_of("held for others");
    held.expires = t0 + 24h;
    ASSERT_EQ(store.put(held, t0), put_result::stored);
  }

  const auto now = t0 + config.replicate_interval;
  node.handle_timeout(now);
  std::set<std::pair<node_id, node_id>> sent;  // (key, replica)
  std::vector<request_token> unanswered;
  std::size_t most_unanswered = 0;
  auto drain = [&] {
    while (auto out = node.poll_request()) {
      const auto* s = std::get_if<core::wire::store>(&out->body);
      if (!s) continue;
      EXPECT_TRUE(sent.emplace(s->key, out->to.id).second) << "one STORE per key and replica";
      unanswered.push_back(out->token);
    }
    most_unanswered = std::max(most_unanswered, unanswered.size());
  };
  drain();
  ASSERT_FALSE(unanswered.empty()) << "the round started";
  while (!unanswered.empty()) {
    const request_token token = unanswered.front();
    unanswered.erase(unanswered.begin());
    node.on_reply(token, core::reply{}, now + 10ms);  // an ACK
    drain();
  }
  // At most 64 out; a key's STOREs go together, so a round of k = 20 keeps 60 out.
  EXPECT_LE(most_unanswered, 64u);
  EXPECT_GE(most_unanswered, 3 * default_k);
  EXPECT_EQ(sent.size(), values * default_k) << "every value to each of its k closest contacts";
  for (const auto& v : store.all(now)) {
    for (const contact& c : node.table().closest(v.key, default_k))
      EXPECT_TRUE(sent.count({v.key, c.id})) << v.key.short_hex() << " -> " << c.id.short_hex();
  }
}

// A request comes over a session: its sender is reachable over it even when the table had
// dropped it (after failed requests, say) and knows no address for it any more. The session's
// end forgets such a contact again.
TEST(DhtNode, ARequestsSenderIsReachableOverItsSessionUntilItEnds) {
  hand_driven_node h(41, 7);
  auto& [rng, self, store, config, node] = h;
  const auto request = core::wire::make_message(1, core::wire::find_node{random_id(rng)});
  core::time_point t0{};
  // Never heard of before (or dropped since): learned without an address, reachable over the session.
  const node_id sender = random_id(rng);
  node.handle_request(sender, request, t0);
  auto known = node.table().find(sender);
  ASSERT_TRUE(known.has_value());
  EXPECT_TRUE(known->addresses.empty());
  EXPECT_TRUE(known->connected) << "the request's session reaches it";
  node.on_peer_disconnected(sender);
  EXPECT_FALSE(node.table().find(sender).has_value()) << "no session and no address: nobody can reach it";

  // Known with an address, its session ended, then a request on a new one: connected again.
  const node_id peer = random_id(rng);
  node.on_peer_announced(peer, {"sim://1"}, t0);
  node.on_peer_disconnected(peer);
  ASSERT_TRUE(node.table().find(peer).has_value());
  EXPECT_FALSE(node.table().find(peer)->connected);
  node.handle_request(peer, request, t0 + 1s);
  EXPECT_TRUE(node.table().find(peer)->connected);
  EXPECT_EQ(node.table().find(peer)->addresses, std::vector<std::string>{"sim://1"}) << "its address is kept";
}

// A listener NACKs a notification version_conflict only when a diff lacked its base, and then
// gets the version whole. One that refuses whole versions so is not sent them again (each ~30
// byte NACK would bring back a whole value, round trip after round trip): each counts as a
// failed delivery, and after max_failures of them it is no longer a listener.
TEST(DhtNode, AListenerRefusingWholeVersionsIsNotSentThemAgain) {
  hand_driven_node h(47, 9);
  auto& [rng, self, store, config, node] = h;
  core::time_point now{};
  const node_id key = random_id(rng), listener = random_id(rng), writer = random_id(rng);
  node.on_peer_announced(listener, {"sim://listener"}, now);
  node.on_peer_announced(writer, {"sim://writer"}, now);
  while (node.poll_request()) {
  }
  auto listen = core::wire::make_message(1, core::wire::find_value{key, core::wire::listen_request{600, 0}});
  ASSERT_TRUE(std::holds_alternative<core::wire::ack>(node.handle_request(listener, listen, now)));

  byte_vector held_nothing;
  encode_version(0, held_nothing);
  const int max_failures = listen_limits{}.max_failures;
  std::uint64_t version = 0;
  int notifications = 0;
  for (int round = 0; round < max_failures + 2; ++round) {
    now += 1s;
    core::wire::store write{key, ++version, 600, std::nullopt, bytes_of("value " + std::to_string(version))};
    ASSERT_TRUE(std::holds_alternative<core::wire::ack>(
        node.handle_request(writer, core::wire::make_message(2, std::move(write)), now)));
    // Every notification is refused as if it lacked a base, and nothing comes back for it.
    for (int replies = 0; auto out = node.poll_request(); ++replies) {
      ASSERT_LT(replies, 10) << "a refused whole version was sent again";
      const auto* s = std::get_if<core::wire::store>(&out->body);
      if (!s || !s->notify) continue;
      EXPECT_EQ(out->to.id, listener);
      EXPECT_FALSE(s->patch) << "versions 1, 2, ... each differ whole from the last one known";
      ++notifications;
      core::reply nacked;
      nacked.ec = core::errc::nack;
      nacked.code = core::wire::nack_code::version_conflict;
      nacked.data = held_nothing;
      node.on_reply(out->token, nacked, now);
    }
  }
  EXPECT_EQ(notifications, max_failures) << "one per version until the listener was dropped";
}

// A put stores one version above the highest its lookup found. Anyone on the path can answer
// with an unsigned "value" of any version: it must neither wrap the next version to 0 nor choose
// the version an owner signs when the owner's own signed versions were found.
TEST(DhtNode, APutsVersionIsNotWrappedOrChosenByAnUnsignedAnswer) {
  hand_driven_node h(53, 11);
  auto& [rng, self, store, config, node] = h;
  core::time_point now{};
  h.meet(5, now);
  const node_id key = random_id(rng);
  // The owner's own signed version 5 (as a replica would hand it back).
  core::wire::store mine{key, 5, 600, std::nullopt, bytes_of("mine")};
  const auto my_signature = self.sign(core::wire::store_signed_bytes(mine));

  // Runs a put, answering every FIND_VALUE with `answer`, and ACKing every STORE; returns the
  // put's outcome and the version its STOREs carried.
  auto put_against = [&](put_options options, const std::vector<wire_value>& answers) {
    const auto op = node.put(key, bytes_of("next"), options, now);
    std::optional<std::uint64_t> stored;
    for (std::size_t asked = 0; auto out = node.poll_request();) {
      core::reply r;
      if (std::holds_alternative<core::wire::find_value>(out->body)) {
        encode_find_value_reply(answers[asked++ % answers.size()], r.data);
      } else if (const auto* s = std::get_if<core::wire::store>(&out->body)) {
        stored = s->version;
      }
      node.on_reply(out->token, r, now);
    }
    while (auto e = node.poll_event()) {
      if (e->id != op) continue;
      return std::pair{std::get<put_outcome>(e->result), stored};
    }
    ADD_FAILURE() << "the put did not end";
    return std::pair{put_outcome{}, stored};
  };
  const wire_value forged_max{UINT64_MAX, 600, std::nullopt, std::nullopt, bytes_of("x")};
  const wire_value forged_near{UINT64_MAX - 1, 600, std::nullopt, std::nullopt, bytes_of("x")};
  const wire_value signed_5{5, 600, self.id(), my_signature, bytes_of("mine")};

  auto [wrapped, wrapped_version] = put_against(put_options{}, {forged_max});
  EXPECT_EQ(wrapped.ec, make_error_code(core::errc::bad_field)) << "no version follows the highest";
  EXPECT_FALSE(wrapped_version.has_value()) << "nothing stored";

  put_options signed_put;
  signed_put.signed_by_self = true;
  auto [owned, owned_version] = put_against(signed_put, {signed_5, forged_near});
  EXPECT_FALSE(owned.ec) << owned.ec.message();
  EXPECT_EQ(owned_version, 6u) << "one above the owner's own highest, not the unsigned answer's";
}

// A lookup asks a contact it knows where that contact said it listens, not where another
// node's reply claims it is (which would let any node point us elsewhere for a victim's id).
TEST(DhtNode, ALookupAsksAKnownContactAtItsOwnAddress) {
  hand_driven_node h(59, 13);
  auto& [rng, self, store, config, node] = h;
  core::time_point now{};
  const node_id target = random_id(rng);
  // More contacts than k: the farthest from the target is known but not among those asked first.
  std::vector<node_id> ids;
  for (std::size_t i = 0; i < default_k + 5; ++i) ids.push_back(random_id(rng));
  std::sort(ids.begin(), ids.end(), core::closer_to(target));
  const node_id known = ids.back();
  for (std::size_t i = 0; i < ids.size(); ++i)
    node.on_peer_announced(ids[i], {ids[i] == known ? "sim://own" : "sim://" + std::to_string(i)}, now);
  while (node.poll_request()) {
  }
  ASSERT_EQ(node.table().find(known)->addresses, std::vector<std::string>{"sim://own"});

  node.find_node(target, now);
  std::optional<std::vector<std::string>> asked_at;
  bool named = false;
  for (int requests = 0; auto out = node.poll_request(); ++requests) {
    ASSERT_LT(requests, 200);
    core::reply r;
    if (out->to.id == known) {
      asked_at = out->to.addresses;
      encode_contacts({}, r.data);
    } else if (!named) {
      named = true;  // the first node asked names the known one, somewhere else
      encode_contacts({wire_contact{known, {"sim://elsewhere"}}}, r.data);
    } else {
      r.ec = core::errc::timeout;  // the rest are gone, so the lookup goes on to the known one
    }
    node.on_reply(out->token, r, now);
  }
  ASSERT_TRUE(asked_at.has_value()) << "the lookup came to the named contact";
  EXPECT_EQ(*asked_at, std::vector<std::string>{"sim://own"});
  EXPECT_EQ(node.table().find(known)->addresses, std::vector<std::string>{"sim://own"});
}

// A subscription cancelled while its registrations are on their way ends cancelled, and a
// replica that took one after all is told at once, not left listing us until the lease ends.
TEST(DhtNode, AListenCancelledWhileRegisteringUndoesTheRegistrationsThatLand) {
  hand_driven_node h(61, 15);
  auto& [rng, self, store, config, node] = h;
  core::time_point now{};
  h.meet(6, now);
  const node_id key = random_id(rng);
  const auto subscription = node.listen(key, now);
  std::vector<dht_node::outgoing> registrations;
  while (auto out = node.poll_request()) {
    if (const auto* f = std::get_if<core::wire::find_value>(&out->body); f && f->listen) {
      registrations.push_back(std::move(*out));
      continue;
    }
    ASSERT_TRUE(std::holds_alternative<core::wire::find_node>(out->body));
    core::reply r;  // the lookup: nobody knows anyone closer
    encode_contacts({}, r.data);
    node.on_reply(out->token, r, now);
  }
  ASSERT_FALSE(registrations.empty());
  EXPECT_TRUE(node.cancel(subscription, now));
  EXPECT_FALSE(node.poll_request()) << "no replica had taken it yet: nothing to undo";

  std::set<node_id> took, undone;
  for (std::size_t i = 0; i < registrations.size(); ++i) {
    core::reply r;
    if (i % 2 == 0) {
      encode_find_value_reply(std::vector<wire_contact>{}, r.data);  // taken
      took.insert(registrations[i].to.id);
    } else {
      r.ec = core::errc::timeout;
    }
    node.on_reply(registrations[i].token, r, now);
    while (auto out = node.poll_request()) {
      const auto* f = std::get_if<core::wire::find_value>(&out->body);
      ASSERT_TRUE(f && f->listen && f->listen->lease_seconds == 0) << "a cancellation";
      undone.insert(out->to.id);
    }
  }
  EXPECT_EQ(undone, took);
  bool ended = false;
  while (auto e = node.poll_event()) {
    if (e->id != subscription) continue;
    ended = true;
    EXPECT_EQ(std::get<listen_outcome>(e->result).ec, boost::system::errc::operation_canceled);
  }
  EXPECT_TRUE(ended);
}

// A replica that already holds a newer version than the first one the network answers with (a
// compare-and-swap reached it and not yet the node asked) returns its own.
TEST(DhtNode, AGetReturnsTheNewerOfWhatItFoundAndWhatItHolds) {
  auto net = joined_network(default_seed + 9, 30);
  const node_id key = node_id::hash_of(bytes_of("counter"));
  ASSERT_FALSE(net->put(0, key, bytes_of("one")).ec);
  // One holder gets version 2 ahead of the others.
  const auto holders_of_key = holders(*net, key);
  ASSERT_GE(holders_of_key.size(), 2u);
  const std::size_t ahead = holders_of_key.front();
  auto newer = *net->node(ahead).store->get(key, net->now());
  newer.version = 2;
  newer.value = bytes_of("two");
  newer.original = false;
  ASSERT_EQ(net->node(ahead).store->put(newer, net->now()), put_result::stored);
  auto r = net->get(ahead, key);
  ASSERT_FALSE(r.ec) << r.ec.message();
  ASSERT_TRUE(r.value);
  EXPECT_EQ(r.value->version, 2u) << "the others answer version 1";
  EXPECT_EQ(r.value->value, bytes_of("two"));
}

TEST(DhtNode, LoneNodeStoresLocally) {
  dht_network net(default_seed + 7);
  net.add_node();
  node_id key = node_id::hash_of(bytes_of("solo"));
  auto p = net.put(0, key, bytes_of("x"));
  EXPECT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(p.replicas, 1u);
  auto g = net.get(0, key);
  ASSERT_TRUE(g.value);
  EXPECT_EQ(g.value->value, bytes_of("x"));
  auto f = net.find_node(0, key);
  EXPECT_EQ(f.ec, core::errc::not_connected);
}

TEST(DhtNode, AValueOverTheLimitIsRefusedBeforeAnythingIsSent) {
  dht_network net(default_seed + 8);
  for (int i = 0; i < 3; ++i) net.add_node();
  net.join_all();
  node_id key = node_id::hash_of(bytes_of("big"));
  auto p = net.put(0, key, byte_vector(default_max_value_size + 1, 'x'));
  EXPECT_EQ(p.ec, core::errc::too_large) << p.ec.message();
  EXPECT_EQ(p.stats.rounds, 0);  // no lookup
  EXPECT_EQ(p.bytes_sent, 0u);   // no STORE
  EXPECT_FALSE(net.put(0, key, byte_vector(default_max_value_size, 'x')).ec);  // the limit itself is fine
}

}  // namespace
}  // namespace kadnet::dht
