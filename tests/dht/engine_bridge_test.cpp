#include "kadnet/dht/engine_bridge.hpp"

#include <memory>
#include <optional>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kadnet/core/errors.hpp"
#include "kadnet/dht/memory_store.hpp"
#include "tests/support/fixed_keys.hpp"

namespace kadnet::dht {
namespace {

using testing::fixed_identity;

core::node_config serving_dht() {
  core::node_config c;
  c.serve_dht = true;
  return c;
}

// One node: engine, DHT and the bridge between them; the dialer is the test's.
struct bridged_node {
  bridged_node(std::uint8_t key, engine_bridge::dialer dial)
      : identity(fixed_identity(key)),
        rng(key),
        engine(identity, serving_dht()),
        dht(identity, {}, store, [this](mutable_byte_span out) {
          for (auto& b : out) b = static_cast<std::uint8_t>(rng());
        }),
        bridge(std::make_unique<engine_bridge>(engine, dht, std::move(dial))) {}

  core::identity identity;
  std::mt19937_64 rng;
  core::node_engine engine;
  memory_store store;
  dht_node dht;
  std::unique_ptr<engine_bridge> bridge;
};

// Two bridged nodes over an in-memory stream, on a fixed virtual time.
class EngineBridge : public ::testing::Test {
 protected:
  EngineBridge()
      : a(1, [this](const contact& to, engine_bridge::ready_fn ready) {
          dialed.push_back(to);
          readies.push_back(std::move(ready));
          return dialer_accepts;
        }),
        b(2, {}) {}

  void connect() {
    a_conn = a.engine.dial(now, b.identity.id(), byte_vector(18, 0));
    b_conn = b.engine.accept(now, byte_vector(18, 0));
    settle();
  }

  // Carries bytes and feeds events through the bridges until nothing moves.
  void settle() {
    for (bool moved = true; moved;) {
      moved = carry(a.engine, b.engine, b_conn) | carry(b.engine, a.engine, a_conn);
      for (bridged_node* n : {&a, &b}) {
        while (auto ev = n->engine.poll_event()) {
          moved = true;
          if (!n->bridge->on_event(*ev, now)) unclaimed.push_back(std::move(*ev));
        }
        if (n->bridge->pump(now)) moved = true;
      }
    }
  }

  bool carry(core::node_engine& from, core::node_engine& to, core::connection_id to_conn) {
    bool moved = false;
    for (auto c : from.take_dirty()) {
      byte_vector bytes = from.take_transmit(c);
      if (!bytes.empty()) to.on_bytes(to_conn, now, bytes), moved = true;
    }
    return moved;
  }

  // Starts a find_node on A and returns where its result will land.
  std::shared_ptr<std::optional<find_node_result>> find_from_a(const core::node_id& target) {
    auto result = std::make_shared<std::optional<find_node_result>>();
    a.bridge->expect(a.dht.find_node(target, now), [result](dht_node::operation_done& done) {
      *result = std::get<find_node_result>(done.result);
    });
    settle();
    return result;
  }

  core::time_point now{std::chrono::hours(1)};
  bool dialer_accepts = true;
  std::vector<contact> dialed;
  std::vector<engine_bridge::ready_fn> readies;
  std::vector<core::node_engine::event> unclaimed;
  bridged_node a, b;
  core::connection_id a_conn = 0, b_conn = 0;
};

TEST_F(EngineBridge, SessionsReachTheDhtAndRequestsAreAnswered) {
  connect();
  EXPECT_TRUE(a.dht.table().find(b.identity.id()).has_value());
  EXPECT_TRUE(b.dht.table().find(a.identity.id()).has_value());
  // A's lookup goes over the session; B's DHT answers through its bridge.
  auto result = find_from_a(b.identity.id());
  ASSERT_TRUE(result->has_value());
  EXPECT_FALSE((*result)->ec);
  ASSERT_FALSE((*result)->closest.empty());
  EXPECT_EQ((*result)->closest.front().id, b.identity.id());
  EXPECT_TRUE(dialed.empty());
  EXPECT_EQ(a.bridge->requests_in_flight(), 0u);
  // Only the DHT's own request_done events were claimed.
  for (const auto& ev : unclaimed) EXPECT_FALSE(std::holds_alternative<core::node_engine::request_done>(ev));
}

TEST_F(EngineBridge, ContactsWithoutASessionGoToTheDialer) {
  connect();
  // B knows C, which A has no session with: A's lookup learns C from B and wants it dialed.
  const core::identity c = fixed_identity(3);
  b.dht.on_peer_connected(c.id(), now);
  b.dht.on_peer_announced(c.id(), {"udp://10.9.9.9:4000"}, now);
  auto result = find_from_a(c.id());
  ASSERT_EQ(dialed.size(), 1u);
  EXPECT_EQ(dialed[0].id, c.id());
  EXPECT_EQ(dialed[0].addresses, std::vector<std::string>{"udp://10.9.9.9:4000"});
  EXPECT_FALSE(result->has_value()) << "the lookup waits for the dial";
  // The dial fails: the request fails, and the lookup finishes without C.
  readies[0](core::errc::timeout, 0, now);
  settle();
  ASSERT_TRUE(result->has_value());
  for (const auto& found : (*result)->closest) EXPECT_NE(found.id, c.id());
}

TEST_F(EngineBridge, ARefusedDialFailsTheRequestAtOnce) {
  dialer_accepts = false;
  connect();
  const core::identity c = fixed_identity(3);
  b.dht.on_peer_connected(c.id(), now);
  b.dht.on_peer_announced(c.id(), {"udp://10.9.9.9:4000"}, now);
  auto result = find_from_a(c.id());
  EXPECT_EQ(dialed.size(), 1u);
  EXPECT_TRUE(result->has_value());
}

TEST_F(EngineBridge, FailOperationsCompletesWhatIsExpected) {
  std::optional<boost::system::error_code> ec;
  a.bridge->expect(a.dht.get(b.identity.id(), now), [&](dht_node::operation_done& done) { ec = error_of(done); });
  a.bridge->fail_operations(core::errc::shutting_down);
  EXPECT_EQ(ec, make_error_code(core::errc::shutting_down));
}

TEST_F(EngineBridge, AReadyAfterTheBridgeIsGoneDoesNothing) {
  connect();
  const core::identity c = fixed_identity(3);
  b.dht.on_peer_connected(c.id(), now);
  b.dht.on_peer_announced(c.id(), {"udp://10.9.9.9:4000"}, now);
  find_from_a(c.id());
  ASSERT_EQ(readies.size(), 1u);
  a.bridge.reset();
  readies[0]({}, a_conn, now);  // would send the request; the bridge is gone
  EXPECT_TRUE(a.engine.take_dirty().empty());
}

TEST(EngineBridgeGlue, FindNodeFindValueStoreAndShoutAreDhtRequests) {
  using core::wire::opcode;
  for (auto op : {opcode::find_node, opcode::find_value, opcode::store, opcode::shout})
    EXPECT_TRUE(is_dht_request(static_cast<std::uint8_t>(op)));
  for (auto op : {opcode::ack, opcode::nack, opcode::ping, opcode::speak, opcode::whisper, opcode::announce})
    EXPECT_FALSE(is_dht_request(static_cast<std::uint8_t>(op)));
  EXPECT_FALSE(is_dht_request(64));
}

}  // namespace
}  // namespace kadnet::dht
