// The subscriber's side of listening (dht/key_watches.cpp): what a notification means, which
// versions are delivered, and whom a subscriber believes.
#include "kadnet/dht/key_watches.hpp"

#include <gtest/gtest.h>

#include "kadnet/core/identity.hpp"
#include "kadnet/dht/cas_codec.hpp"
#include "tests/support/signed_store.hpp"

namespace kadnet::dht {
namespace {

using namespace std::chrono_literals;
namespace wire = core::wire;

core::node_id id_of(std::uint8_t b) {
  core::node_id::bytes_type a{};
  a.fill(b);
  return core::node_id(a);
}

byte_vector bytes_of(std::string_view s) { return byte_vector(s.begin(), s.end()); }

const core::time_point t0 = core::time_point{} + 1h;
const core::node_id key = id_of(1);
const core::node_id replica = id_of(2);

wire::store notification(std::uint64_t version, std::string_view value) {
  wire::store s{key, version, 60, std::nullopt, bytes_of(value)};
  s.notify = true;
  return s;
}

wire::store diff_notification(std::uint64_t version, const value_patch& p) {
  wire::store s{key, version, 60, std::nullopt, {}};
  encode_patch(p, s.value);
  s.notify = true;
  s.patch = true;
  return s;
}

std::vector<listen_delivery> drain(key_watches& w) {
  std::vector<listen_delivery> out;
  while (auto d = w.poll()) out.push_back(std::move(*d));
  return out;
}

// The NACK a reply is, copied out of it (the reply is often a temporary).
std::optional<wire::nack> nack_of(const wire::message_body& b) {
  if (const auto* n = std::get_if<wire::nack>(&b)) return *n;
  return std::nullopt;
}

// A watch of `key` with one subscription (id 10), registered at `replica`.
key_watches watching() {
  key_watches w(patch_limits{});
  w.add(key, 10, t0 + 60s).replicas[replica] = t0 + 180s;
  return w;
}

TEST(KeyWatches, NewerVersionsAreDeliveredOnceInOrder) {
  auto w = watching();
  EXPECT_TRUE(std::holds_alternative<wire::ack>(w.on_notify(replica, notification(1, "one"), t0)));
  EXPECT_TRUE(std::holds_alternative<wire::ack>(w.on_notify(replica, notification(3, "three"), t0)));
  // An older or the same version is ACKed (the replica has nothing to fix) and not delivered.
  EXPECT_TRUE(std::holds_alternative<wire::ack>(w.on_notify(replica, notification(2, "two"), t0)));
  EXPECT_TRUE(std::holds_alternative<wire::ack>(w.on_notify(replica, notification(3, "three"), t0)));
  auto got = drain(w);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].value.version, 1u);
  EXPECT_EQ(got[0].value.value, bytes_of("one"));
  EXPECT_EQ(got[1].value.version, 3u);
  EXPECT_EQ(got[0].subscription, 10u);
}

TEST(KeyWatches, ADiffAppliesToTheVersionDeliveredAndTravelsOn) {
  auto w = watching();
  w.on_notify(replica, notification(1, "hello world"), t0);
  value_patch p{{splice{6, 5, bytes_of("kadnet")}}};
  EXPECT_TRUE(std::holds_alternative<wire::ack>(w.on_notify(replica, diff_notification(2, p), t0)));
  auto got = drain(w);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[0].diff);
  EXPECT_EQ(got[1].value.value, bytes_of("hello kadnet"));
  ASSERT_TRUE(got[1].diff);
  EXPECT_EQ(*got[1].diff, p);
}

TEST(KeyWatches, ADiffAgainstAnotherBaseIsRefusedNamingTheVersionHeld) {
  auto w = watching();
  w.on_notify(replica, notification(1, "hello world"), t0);
  auto reply = w.on_notify(replica, diff_notification(3, value_patch{{splice{0, 1, bytes_of("J")}}}), t0);
  auto n = nack_of(reply);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->code, wire::nack_code::version_conflict);
  std::uint64_t held = 0;
  ASSERT_FALSE(decode_version(n->data, held));
  EXPECT_EQ(held, 1u);
  // A diff that does not fit the base is a bad request; neither is delivered.
  n = nack_of(w.on_notify(replica, diff_notification(2, value_patch{{splice{50, 1, {}}}}), t0));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->code, wire::nack_code::bad_request);
  EXPECT_EQ(drain(w).size(), 1u);
}

TEST(KeyWatches, OnlyNodesWeRegisteredAtAreBelieved) {
  auto w = watching();
  auto n = nack_of(w.on_notify(id_of(3), notification(1, "forged"), t0));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->code, wire::nack_code::not_found);
  wire::store other_key = notification(1, "x");
  other_key.key = id_of(4);
  n = nack_of(w.on_notify(replica, other_key, t0));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->code, wire::nack_code::not_found);
  EXPECT_TRUE(drain(w).empty());
}

TEST(KeyWatches, OwnedValuesMustVerifyAndKeepTheirOwner) {
  auto owner = core::identity::from_seed(std::array<std::uint8_t, 32>{1});
  auto other = core::identity::from_seed(std::array<std::uint8_t, 32>{2});
  auto w = watching();
  wire::store good = testing::signed_by(owner, notification(1, "signed"));
  EXPECT_TRUE(std::holds_alternative<wire::ack>(w.on_notify(replica, good, t0)));
  wire::store forged = good;
  forged.version = 2;  // the signature covered version 1
  auto n = nack_of(w.on_notify(replica, forged, t0));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->code, wire::nack_code::bad_request);
  n = nack_of(w.on_notify(replica, testing::signed_by(other, notification(2, "taken over")), t0));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->code, wire::nack_code::bad_request);
  EXPECT_EQ(drain(w).size(), 1u);
}

TEST(KeyWatches, ALaterSubscriptionStartsFromTheVersionDeliveredAndCancelTellsTheReplicas) {
  auto w = watching();
  w.on_notify(replica, notification(4, "four"), t0);
  drain(w);
  w.add(key, 11, t0 + 60s);
  auto got = drain(w);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].subscription, 11u);
  EXPECT_EQ(got[0].value.version, 4u);
  // Both hear the next version; the key's replicas are handed back only with its last subscription.
  w.on_notify(replica, notification(5, "five"), t0);
  EXPECT_EQ(drain(w).size(), 2u);
  EXPECT_FALSE(w.remove(10).has_value());
  auto gone = w.remove(11);
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->key, key);
  EXPECT_EQ(gone->replicas, std::vector<core::node_id>{replica});
  EXPECT_FALSE(w.watching(key));
  EXPECT_FALSE(w.remove(11).has_value());
}

TEST(KeyWatches, RefreshesComeDueAndForgetLapsedReplicas) {
  auto w = watching();
  EXPECT_EQ(w.next_refresh(), t0 + 60s);
  EXPECT_TRUE(w.due(t0 + 59s, 60s).empty());
  EXPECT_EQ(w.due(t0 + 60s, 60s), std::vector<core::node_id>{key});
  EXPECT_EQ(w.next_refresh(), t0 + 120s);
  EXPECT_EQ(w.find(key)->replicas.size(), 1u);
  w.due(t0 + 180s, 60s);
  EXPECT_TRUE(w.find(key)->replicas.empty());
}

}  // namespace
}  // namespace kadnet::dht
