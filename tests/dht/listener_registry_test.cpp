// A replica's listeners (dht/listener_registry.cpp): leases, renewal and cancel, the bounds on
// memory, and dropping listeners that stopped answering.
#include "kadnet/dht/listener_registry.hpp"

#include <gtest/gtest.h>

namespace kadnet::dht {
namespace {

using namespace std::chrono_literals;
using core::wire::listen_request;

core::node_id id_of(std::uint8_t b) {
  core::node_id::bytes_type a{};
  a.fill(b);
  return core::node_id(a);
}

const core::time_point t0 = core::time_point{} + 1h;

TEST(ListenerRegistry, LeaseRunsFromSubscribeAndIsCutToTheMaximum) {
  listener_registry r(listen_limits{.max_lease = 600s});
  EXPECT_EQ(r.subscribe(id_of(1), id_of(9), listen_request{7200, 4}, t0), listener_registry::subscribe_result::listening);
  auto live = r.live(id_of(1), t0 + 599s);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].subscriber, id_of(9));
  EXPECT_EQ(live[0].known_version, 4u);
  EXPECT_TRUE(r.live(id_of(1), t0 + 600s).empty());
  EXPECT_FALSE(r.has_listeners(id_of(1)));
  EXPECT_EQ(r.size(), 0u);
}

TEST(ListenerRegistry, RenewalMovesTheLeaseAndTheKnownVersionCancelRemoves) {
  listener_registry r;
  r.subscribe(id_of(1), id_of(9), listen_request{60, 1}, t0);
  r.subscribe(id_of(1), id_of(9), listen_request{60, 5}, t0 + 50s);
  auto live = r.live(id_of(1), t0 + 100s);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].known_version, 5u);
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(r.subscribe(id_of(1), id_of(9), listen_request{0, 0}, t0 + 101s), listener_registry::subscribe_result::cancelled);
  EXPECT_FALSE(r.has_listeners(id_of(1)));
  EXPECT_EQ(r.size(), 0u);
}

TEST(ListenerRegistry, OneSubscriberCannotTakeMoreThanItsShare) {
  listener_registry r(listen_limits{.max_listeners = 100, .max_per_subscriber = 3});
  for (std::uint8_t k = 1; k <= 3; ++k)
    EXPECT_EQ(r.subscribe(id_of(k), id_of(9), listen_request{60, 0}, t0), listener_registry::subscribe_result::listening);
  EXPECT_EQ(r.subscribe(id_of(4), id_of(9), listen_request{60, 0}, t0), listener_registry::subscribe_result::full);
  // Another node still gets in; and once the first one's leases are over, it may listen again.
  EXPECT_EQ(r.subscribe(id_of(4), id_of(8), listen_request{60, 0}, t0), listener_registry::subscribe_result::listening);
  EXPECT_EQ(r.subscribe(id_of(4), id_of(9), listen_request{60, 0}, t0 + 60s), listener_registry::subscribe_result::listening);
  EXPECT_EQ(r.size(), 1u);  // the three expired ones were swept to make room; node 8's too
}

TEST(ListenerRegistry, TotalIsBounded) {
  listener_registry r(listen_limits{.max_listeners = 4, .max_per_subscriber = 64});
  for (std::uint8_t s = 1; s <= 4; ++s) r.subscribe(id_of(1), id_of(s), listen_request{60, 0}, t0);
  EXPECT_EQ(r.subscribe(id_of(2), id_of(5), listen_request{60, 0}, t0), listener_registry::subscribe_result::full);
  EXPECT_EQ(r.size(), 4u);
}

TEST(ListenerRegistry, FailuresInARowDropAListenerAnAckResetsThem) {
  listener_registry r(listen_limits{.max_failures = 3});
  r.subscribe(id_of(1), id_of(9), listen_request{60, 0}, t0);
  r.failed(id_of(1), id_of(9));
  r.failed(id_of(1), id_of(9));
  r.acknowledged(id_of(1), id_of(9), 2);
  r.failed(id_of(1), id_of(9));
  r.failed(id_of(1), id_of(9));
  ASSERT_EQ(r.live(id_of(1), t0).size(), 1u);
  EXPECT_EQ(r.live(id_of(1), t0)[0].known_version, 2u);
  r.failed(id_of(1), id_of(9));
  EXPECT_TRUE(r.live(id_of(1), t0).empty());
  EXPECT_EQ(r.size(), 0u);
}

}  // namespace
}  // namespace kadnet::dht
