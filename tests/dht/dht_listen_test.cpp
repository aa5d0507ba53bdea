// dht_node's listen (PROTOCOL.md 8.10) in an in-memory network (tests/support/dht_network.hpp):
// a subscriber hears every new version once and in order — whole, or as the diff that travelled
// — from puts, patches and compare-and-swap; it starts from the version held, follows the replica
// set as it changes, survives loss, and stops on cancel. Fixed seeds, printed on failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

#include "kadnet/core/errors.hpp"
#include "kadnet/dht/dht_node.hpp"
#include "tests/support/dht_network.hpp"

namespace kadnet::dht {
namespace {

using namespace std::chrono_literals;
using core::node_id;
using testing::dht_network;

constexpr std::uint64_t seed = 0x6c697374656eull;  // "listen"
constexpr std::size_t network_size = 40;

byte_vector bytes_of(const std::string& s) { return byte_vector(s.begin(), s.end()); }

std::unique_ptr<dht_network> joined_network(std::uint64_t s, std::size_t size = network_size) {
  auto net = std::make_unique<dht_network>(s);
  for (std::size_t i = 0; i < size; ++i) net->add_node();
  net->join_all();
  net->set_delay(5ms);
  return net;
}

// A node that is not one of key's k closest, so that it holds no copy of the key itself.
std::size_t outsider(dht_network& net, const node_id& key, std::size_t except = SIZE_MAX) {
  return net.outside_closest(key, default_k, except);
}

std::vector<std::uint64_t> versions_heard(const dht_network::sim_node& n) {
  std::vector<std::uint64_t> v;
  for (const auto& d : n.versions) v.push_back(d.value.version);
  return v;
}

std::vector<std::uint64_t> one_to(std::uint64_t n) {
  std::vector<std::uint64_t> v(n);
  for (std::uint64_t i = 0; i < n; ++i) v[i] = i + 1;
  return v;
}

TEST(DhtListen, HearsEveryNewVersionOnceInOrder) {
  auto net = joined_network(seed);
  const node_id key = node_id::hash_of(as_bytes(std::string_view("listened")));
  const std::size_t listener = outsider(*net, key), writer = outsider(*net, key, listener);
  auto o = net->listen(listener, key);
  ASSERT_FALSE(o.ec) << o.ec.message();
  EXPECT_EQ(o.replicas, net->node(listener).dht->table().size() > 0 ? 4u : 0u);
  for (int v = 1; v <= 10; ++v) ASSERT_FALSE(net->put(writer, key, bytes_of("value " + std::to_string(v))).ec);
  net->advance(1s);

  const auto& heard = net->node(listener).versions;
  ASSERT_EQ(versions_heard(net->node(listener)), one_to(10));
  for (const auto& d : heard) {
    EXPECT_EQ(d.subscription, o.subscription);
    EXPECT_EQ(d.value.key, key);
    EXPECT_EQ(d.value.value, bytes_of("value " + std::to_string(d.value.version)));
  }
  // Each registered replica tells it once per version.
  EXPECT_LE(net->node(listener).notifications, 4u * 10);
}

TEST(DhtListen, StartsWithTheVersionHeldNow) {
  auto net = joined_network(seed + 1);
  const node_id key = node_id::hash_of(as_bytes(std::string_view("held")));
  const std::size_t listener = outsider(*net, key), writer = outsider(*net, key, listener);
  net->put(writer, key, bytes_of("first"));
  net->put(writer, key, bytes_of("second"));
  ASSERT_FALSE(net->listen(listener, key).ec);
  ASSERT_EQ(versions_heard(net->node(listener)), std::vector<std::uint64_t>{2});
  EXPECT_EQ(net->node(listener).versions[0].value.value, bytes_of("second"));
}

TEST(DhtListen, SmallEditsArriveAsDiffs) {
  auto net = joined_network(seed + 2);
  const node_id key = node_id::hash_of(as_bytes(std::string_view("document")));
  const std::size_t listener = outsider(*net, key), writer = outsider(*net, key, listener);
  std::mt19937_64 rng(seed);
  byte_vector doc(64 * 1024);
  for (auto& b : doc) b = static_cast<std::uint8_t>(rng());
  ASSERT_FALSE(net->put(writer, key, doc).ec);
  ASSERT_FALSE(net->listen(listener, key).ec);
  const std::size_t bytes_before = net->node(listener).notification_bytes;

  constexpr int edits = 20;
  for (int e = 0; e < edits; ++e) {
    byte_vector next = doc;
    next[rng() % next.size()] ^= 0x5a;
    // Half of the edits are patches, half plain puts: a replica makes the diff itself then.
    if (e % 2 == 0) ASSERT_FALSE(net->patch(writer, key, static_cast<std::uint64_t>(e + 1), doc, next).ec);
    else ASSERT_FALSE(net->put(writer, key, next).ec);
    doc = std::move(next);
  }
  net->advance(1s);

  const auto& heard = net->node(listener).versions;
  ASSERT_EQ(heard.size(), 1u + edits);
  for (std::size_t i = 1; i < heard.size(); ++i) {
    EXPECT_EQ(heard[i].value.version, i + 1);
    EXPECT_TRUE(heard[i].diff.has_value()) << "version " << heard[i].value.version;
  }
  EXPECT_EQ(heard.back().value.value, doc);
  // What the notifications of the edits cost, against one whole copy per edit and replica.
  const std::size_t sent = net->node(listener).notification_bytes - bytes_before;
  EXPECT_LT(sent * 100, std::size_t{edits} * 4 * doc.size()) << sent << " bytes";
}

TEST(DhtListen, CancelStopsDeliveriesAndTheReplicasForgetIt) {
  auto net = joined_network(seed + 3);
  const node_id key = node_id::hash_of(as_bytes(std::string_view("cancelled")));
  const std::size_t listener = outsider(*net, key), writer = outsider(*net, key, listener);
  auto o = net->listen(listener, key);
  ASSERT_FALSE(o.ec);
  net->put(writer, key, bytes_of("one"));
  net->advance(1s);
  ASSERT_EQ(versions_heard(net->node(listener)), std::vector<std::uint64_t>{1});
  const std::size_t notified = net->node(listener).notifications;
  ASSERT_GT(notified, 0u);

  EXPECT_TRUE(net->cancel(listener, o.subscription));
  net->advance(1s);
  net->put(writer, key, bytes_of("two"));
  net->advance(2min);
  EXPECT_EQ(versions_heard(net->node(listener)), std::vector<std::uint64_t>{1});
  EXPECT_EQ(net->node(listener).notifications, notified) << "a replica still notified after the cancel";
  EXPECT_FALSE(net->cancel(listener, o.subscription));
}

TEST(DhtListen, FollowsTheReplicaSetAsItChanges) {
  auto net = joined_network(seed + 4);
  const node_id key = node_id::hash_of(as_bytes(std::string_view("moving")));
  const std::size_t listener = outsider(*net, key), writer = outsider(*net, key, listener);
  ASSERT_FALSE(net->listen(listener, key).ec);
  net->put(writer, key, bytes_of("one"));
  net->advance(1s);
  ASSERT_EQ(versions_heard(net->node(listener)), std::vector<std::uint64_t>{1});

  // The nodes it registered at go, and new ones join.
  for (const node_id& id : net->true_closest(key, 8)) net->kill(*net->index_of(id));
  for (int i = 0; i < 10; ++i) net->join(net->add_node(), writer);
  ASSERT_FALSE(net->put(writer, key, bytes_of("two")).ec);
  net->advance(1s);
  EXPECT_EQ(versions_heard(net->node(listener)), std::vector<std::uint64_t>{1}) << "heard with every registration gone";

  // The next refresh registers at the key's closest nodes as they are now; their answer carries
  // the version it missed, and the next write is notified.
  net->advance(dht_config{}.listen.refresh);
  EXPECT_EQ(versions_heard(net->node(listener)), (std::vector<std::uint64_t>{1, 2}));
  ASSERT_FALSE(net->put(writer, key, bytes_of("three")).ec);
  net->advance(1s);
  EXPECT_EQ(versions_heard(net->node(listener)), (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST(DhtListen, UnderLossVersionsStayInOrderAndTheLatestArrives) {
  auto net = joined_network(seed + 5);
  const node_id key = node_id::hash_of(as_bytes(std::string_view("lossy")));
  const std::size_t listener = outsider(*net, key), writer = outsider(*net, key, listener);
  net->set_loss(0.1);
  ASSERT_FALSE(net->listen(listener, key).ec);
  constexpr std::uint64_t writes = 30;
  for (std::uint64_t v = 1; v <= writes; ++v) {
    put_options numbered;
    numbered.version = v;  // a lost lookup reply must not make a put skip or repeat a version
    ASSERT_FALSE(net->put(writer, key, bytes_of("v" + std::to_string(v)), numbered).ec) << v;
  }
  net->advance(dht_config{}.listen.refresh + 1s);

  auto heard = versions_heard(net->node(listener));
  ASSERT_FALSE(heard.empty());
  EXPECT_TRUE(std::ranges::is_sorted(heard) && std::ranges::adjacent_find(heard) == heard.end());
  EXPECT_EQ(heard.back(), writes);
  EXPECT_GE(heard.size(), writes * 9 / 10) << "seed " << seed + 5;
}

TEST(DhtListen, AReplicaListeningHearsItsOwnWritesAndOthers) {
  auto net = joined_network(seed + 6);
  const node_id key = node_id::hash_of(as_bytes(std::string_view("close")));
  const std::size_t listener = *net->index_of(net->true_closest(key, 1)[0]);
  const std::size_t writer = outsider(*net, key);
  ASSERT_FALSE(net->listen(listener, key).ec);
  net->put(writer, key, bytes_of("theirs"));
  net->put(listener, key, bytes_of("mine"));
  net->advance(1s);
  EXPECT_EQ(versions_heard(net->node(listener)), (std::vector<std::uint64_t>{1, 2}));
}

TEST(DhtListen, CompareAndSwapWritesAreHeard) {
  auto net = joined_network(seed + 7);
  const node_id key = node_id::hash_of(as_bytes(std::string_view("counter")));
  const std::size_t listener = outsider(*net, key), writer = outsider(*net, key, listener);
  ASSERT_FALSE(net->listen(listener, key).ec);
  for (int i = 0; i < 3; ++i) {
    auto r = net->update(writer, key, [](const std::optional<versioned_value>& current) -> std::optional<byte_vector> {
      return byte_vector{static_cast<std::uint8_t>(current ? current->value.at(0) + 1 : 1)};
    });
    ASSERT_FALSE(r.ec) << r.ec.message();
  }
  net->advance(1s);
  ASSERT_EQ(versions_heard(net->node(listener)), one_to(3));
  EXPECT_EQ(net->node(listener).versions.back().value.value, byte_vector{3});
}

TEST(DhtListen, WithoutPeersThereIsNoSubscription) {
  dht_network net(seed + 8);
  net.add_node();
  auto o = net.listen(0, node_id::hash_of(as_bytes(std::string_view("alone"))));
  EXPECT_EQ(o.ec, core::errc::not_connected);
  EXPECT_FALSE(net.cancel(0, o.subscription));
}

TEST(DhtListen, NotificationsFromNodesNotAskedAreRefused) {
  auto net = joined_network(seed + 9);
  const node_id key = node_id::hash_of(as_bytes(std::string_view("forged")));
  const std::size_t listener = outsider(*net, key), forger = outsider(*net, key, listener);
  ASSERT_FALSE(net->listen(listener, key).ec);
  core::wire::store forged{key, 99, 60, std::nullopt, bytes_of("forged")};
  forged.notify = true;
  auto r = net->request(forger, listener, forged);
  EXPECT_EQ(r.code, core::wire::nack_code::not_found);
  EXPECT_TRUE(net->node(listener).versions.empty());
}

}  // namespace
}  // namespace kadnet::dht
