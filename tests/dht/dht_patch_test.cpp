// dht_node's patch (PROTOCOL.md 8.8) in an in-memory network (tests/support/dht_network.hpp):
// the k closest get only the diff, replicas that lack the base get the whole value, owner-signed
// patches are verified on their result, and a small edit of a 64 KiB value costs a small
// fraction of a put's bytes. Fixed seeds, printed on failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>

#include "kadnet/core/errors.hpp"
#include "kadnet/dht/dht_node.hpp"
#include "tests/support/dht_network.hpp"

namespace kadnet::dht {
namespace {

using core::node_id;
using testing::dht_network;

constexpr std::uint64_t seed = 0x7061746368ull;  // "patch"
constexpr std::size_t network_size = 60;

byte_vector bytes_of(const std::string& s) { return byte_vector(s.begin(), s.end()); }

std::unique_ptr<dht_network> joined_network(std::uint64_t s) {
  auto net = std::make_unique<dht_network>(s);
  for (std::size_t i = 0; i < network_size; ++i) net->add_node();
  net->join_all();
  return net;
}

// A node that is not one of key's k closest (so that every replica is remote).
std::size_t outsider(dht_network& net, const node_id& key, std::size_t except = SIZE_MAX) {
  return net.outside_closest(key, default_k, except);
}

byte_vector pseudo_random_bytes(std::size_t n, std::uint64_t s) {
  std::mt19937_64 rng(s);
  byte_vector out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

std::string seed_text(std::uint64_t s) { return "seed " + std::to_string(s); }

TEST(DhtPatch, ReachesEveryReplicaAsADiff) {
  SCOPED_TRACE(seed_text(seed));
  auto net = joined_network(seed);
  node_id key = node_id::hash_of(bytes_of("document"));
  std::size_t writer = outsider(*net, key);
  byte_vector v1 = pseudo_random_bytes(64 * 1024, 1);
  auto p = net->put(writer, key, v1);
  ASSERT_FALSE(p.ec) << p.ec.message();

  byte_vector v2 = v1;
  for (std::size_t i = 1000; i < 1010; ++i) v2[i] ^= 0xff;
  auto r = net->patch(writer, key, p.version, v1, v2);
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.version, p.version + 1);
  EXPECT_EQ(r.by_diff, default_k);
  EXPECT_EQ(r.by_whole, 0u);
  EXPECT_EQ(r.replicas, default_k);
  for (const auto& id : net->true_closest(key, default_k)) {
    auto held = net->node(*net->index_of(id)).store->get(key, net->now());
    ASSERT_TRUE(held) << id.short_hex();
    EXPECT_EQ(held->version, 2u);
    EXPECT_TRUE(held->value == v2) << id.short_hex();
  }
  // The writer keeps its own copy, as after a put; a get sees the new version.
  EXPECT_EQ(net->node(writer).store->get(key, net->now())->version, 2u);
  auto got = net->get(outsider(*net, node_id::hash_of(bytes_of("elsewhere"))), key);
  ASSERT_TRUE(got.value);
  EXPECT_EQ(got.value->version, 2u);
  EXPECT_TRUE(got.value->value == v2);
}

TEST(DhtPatch, ReplicasWithoutTheBaseGetTheWholeValue) {
  SCOPED_TRACE(seed_text(seed + 1));
  auto net = joined_network(seed + 1);
  node_id key = node_id::hash_of(bytes_of("lagging"));
  std::size_t writer = outsider(*net, key);
  auto closest = net->true_closest(key, default_k);
  // Version 2 reached all but two replicas: one lagged at version 1, one holds nothing.
  // Values long enough for a diff to be worth sending (a splice header is 12 bytes).
  const byte_vector v1 = bytes_of("the first version of a value that is edited in place"),
                    v2 = bytes_of("the second version of a value that is edited in place");
  std::size_t lagged = *net->index_of(closest[3]), empty = *net->index_of(closest[11]);
  for (const auto& id : closest) {
    std::size_t i = *net->index_of(id);
    if (i == empty) continue;
    stored_value v;
    v.key = key;
    v.version = i == lagged ? 1 : 2;
    v.value = i == lagged ? v1 : v2;
    v.expires = net->now() + std::chrono::hours(1);
    ASSERT_EQ(net->node(i).store->put(v, net->now()), put_result::stored);
  }

  const byte_vector v3 = bytes_of("the third version of a value that is edited in place");
  auto r = net->patch(writer, key, 2, v2, v3);
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.by_diff, default_k - 2);
  EXPECT_EQ(r.by_whole, 2u);
  EXPECT_EQ(r.replicas, default_k);
  for (const auto& id : closest) {
    auto held = net->node(*net->index_of(id)).store->get(key, net->now());
    ASSERT_TRUE(held);
    EXPECT_EQ(held->version, 3u);
    EXPECT_EQ(held->value, v3);
  }
}

TEST(DhtPatch, ReplicaAheadKeepsItsVersionAndTheNackNamesIt) {
  SCOPED_TRACE(seed_text(seed + 2));
  auto net = joined_network(seed + 2);
  node_id key = node_id::hash_of(bytes_of("ahead"));
  std::size_t writer = outsider(*net, key);
  const byte_vector v1 = bytes_of("version one of a value long enough to patch");
  ASSERT_FALSE(net->put(writer, key, v1).ec);
  std::size_t ahead = *net->index_of(net->true_closest(key, default_k)[0]);
  stored_value v5;
  v5.key = key;
  v5.version = 5;
  v5.value = bytes_of("v5");
  v5.expires = net->now() + std::chrono::hours(1);
  ASSERT_EQ(net->node(ahead).store->put(v5, net->now()), put_result::stored);

  // A patched STORE to it: version_conflict with the held version as data (0 when none).
  core::wire::store s{key, 2, 60, std::nullopt, {0, 0}};
  s.patch = true;
  auto reply = net->request(writer, ahead, s);
  EXPECT_EQ(reply.code, core::wire::nack_code::version_conflict);
  EXPECT_EQ(reply.data, (byte_vector{0, 0, 0, 0, 0, 0, 0, 5}));
  core::wire::store elsewhere = s;
  elsewhere.key = node_id::hash_of(bytes_of("never written"));
  reply = net->request(writer, ahead, elsewhere);
  EXPECT_EQ(reply.code, core::wire::nack_code::version_conflict);
  EXPECT_EQ(reply.data, (byte_vector(8, 0)));
  // A diff that does not fit: bad_request.
  core::wire::store bad = s;
  bad.version = 6;
  bad.value = {0xff, 0xff};
  reply = net->request(writer, ahead, bad);
  EXPECT_EQ(reply.code, core::wire::nack_code::bad_request);

  // The patch: every other replica takes the diff; the one ahead is not sent the whole value.
  auto before = net->messages();
  auto r = net->patch(writer, key, 1, v1, bytes_of("version two of a value long enough to patch"));
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.by_diff, default_k - 1);
  EXPECT_EQ(r.by_whole, 0u);
  EXPECT_GT(net->messages(), before);
  EXPECT_EQ(net->node(ahead).store->get(key, net->now())->version, 5u);
}

TEST(DhtPatch, OwnerSignedPatchIsVerifiedOnItsResult) {
  SCOPED_TRACE(seed_text(seed + 3));
  auto net = joined_network(seed + 3);
  node_id key = node_id::hash_of(bytes_of("owned document"));
  std::size_t owner = outsider(*net, key);
  put_options o;
  o.signed_by_self = true;
  const byte_vector v1 = bytes_of("signed text, first draft");
  auto p = net->put(owner, key, v1, o);
  ASSERT_FALSE(p.ec) << p.ec.message();

  const byte_vector v2 = bytes_of("signed text, final draft");
  patch_options po;
  po.signed_by_self = true;
  auto r = net->patch(owner, key, p.version, v1, v2, po);
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.by_diff, default_k);
  for (const auto& id : net->true_closest(key, default_k)) {
    auto held = net->node(*net->index_of(id)).store->get(key, net->now());
    ASSERT_TRUE(held);
    EXPECT_EQ(held->value, v2);
    EXPECT_EQ(held->owner, net->node(owner).identity.id());
    EXPECT_TRUE(verify_owner_signature(*held));
  }

  // Another node's patch of the owned key is refused everywhere (signed by itself: owner
  // mismatch; unsigned: an unowned value cannot replace an owned one).
  std::size_t other = outsider(*net, key, owner);
  auto forged = net->patch(other, key, 2, v2, bytes_of("signed text, stolen draft"), po);
  EXPECT_TRUE(forged.ec);
  EXPECT_EQ(forged.by_diff + forged.by_whole, 0u);
}

TEST(DhtPatch, ACallersDiffIsAppliedFirstAndRefusedWhenItDoesNotFit) {
  SCOPED_TRACE(seed_text(seed + 4));
  auto net = joined_network(seed + 4);
  node_id key = node_id::hash_of(bytes_of("spliced"));
  std::size_t writer = outsider(*net, key);
  const byte_vector v1 = bytes_of("hello world, hello world, hello world, hello world");
  ASSERT_FALSE(net->put(writer, key, v1).ec);

  auto before = net->messages();
  auto bad = net->patch(writer, key, 1, v1, value_patch{{splice{100, 1, {}}}});
  EXPECT_EQ(bad.ec, core::errc::bad_field);
  EXPECT_EQ(net->messages(), before);  // nothing sent

  auto r = net->patch(writer, key, 1, v1, value_patch{{splice{6, 5, bytes_of("kadnet")}}});
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.by_diff, default_k);
  auto held = net->node(*net->index_of(net->true_closest(key, 1)[0])).store->get(key, net->now());
  ASSERT_TRUE(held);
  EXPECT_EQ(std::string(held->value.begin(), held->value.end()),
            "hello kadnet, hello world, hello world, hello world");

  // A rewrite whose diff would not be smaller than the value goes whole to everyone.
  auto whole = net->patch(writer, key, 2, held->value, bytes_of("z"));
  ASSERT_FALSE(whole.ec) << whole.ec.message();
  EXPECT_EQ(whole.by_diff, 0u);
  EXPECT_EQ(whole.by_whole, default_k);
}

// Seed 003 goal 6.3 / issue 5 point 6: a 64 KiB value edited in small places, with patch and
// with whole puts. Target: at least 20 times fewer bytes sent.
TEST(DhtPatch, SmallEditsOfA64KiBValueSendFarFewerBytesThanPuts) {
  SCOPED_TRACE(seed_text(seed + 5));
  auto net = joined_network(seed + 5);
  node_id patched_key = node_id::hash_of(bytes_of("edited by patch"));
  node_id put_key = node_id::hash_of(bytes_of("edited by put"));
  std::size_t writer = outsider(*net, patched_key);
  byte_vector value = pseudo_random_bytes(64 * 1024, 7);
  auto first = net->put(writer, patched_key, value);
  ASSERT_FALSE(first.ec);
  ASSERT_FALSE(net->put(writer, put_key, value).ec);

  std::mt19937_64 rng(seed + 5);
  std::size_t patch_bytes = 0, put_bytes = 0;
  std::uint64_t version = first.version;
  constexpr int edits = 100;
  for (int e = 0; e < edits; ++e) {
    byte_vector next = value;
    std::size_t at = rng() % (next.size() - 16);
    for (std::size_t i = 0; i < 1 + rng() % 16; ++i) next[at + i] = static_cast<std::uint8_t>(rng());
    auto r = net->patch(writer, patched_key, version, value, next);
    ASSERT_FALSE(r.ec) << "edit " << e << ": " << r.ec.message();
    ASSERT_EQ(r.by_whole, 0u) << "edit " << e;
    patch_bytes += r.bytes_sent;
    version = r.version;
    auto p = net->put(writer, put_key, next);
    ASSERT_FALSE(p.ec) << "edit " << e << ": " << p.ec.message();
    put_bytes += p.bytes_sent;
    value = std::move(next);
  }
  auto held = net->node(*net->index_of(net->true_closest(patched_key, 1)[0])).store->get(patched_key, net->now());
  ASSERT_TRUE(held);
  EXPECT_TRUE(held->value == value);
  std::printf("%d edits of a 64 KiB value: patch %zu bytes, put %zu bytes, %.0fx fewer\n", edits, patch_bytes,
              put_bytes, static_cast<double>(put_bytes) / static_cast<double>(patch_bytes));
  EXPECT_GE(put_bytes, 20 * patch_bytes);
}

}  // namespace
}  // namespace kadnet::dht
