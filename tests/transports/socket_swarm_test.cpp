// kadnet::testing::socket_swarm: real nodes on loopback sockets, joined by a strategy, churned.
#include "kadnet/transports/testing/socket_swarm.hpp"

#include <gtest/gtest.h>

#include <boost/asio/use_future.hpp>

#include "tests/support/loopback_nodes.hpp"

namespace kadnet {
namespace {

using testing::bootstrap_strategy;
using testing::socket_swarm;
using testing::socket_swarm_settings;
using testing::wait;

class SocketSwarm : public ::testing::TestWithParam<std::string> {};

std::optional<byte_vector> get(node& n, const node_id& key) {
  auto [ec, r] = wait<boost::system::error_code, dht::get_result>([&](auto h) { n.dht().get(key, h); });
  if (ec || !r.value) return std::nullopt;
  return r.value->value;
}

TEST_P(SocketSwarm, JoinsStoresFindsAndSurvivesAKillAndARestart) {
  socket_swarm swarm(socket_swarm_settings{.transport = GetParam()});
  swarm.add_nodes(16);
  EXPECT_EQ(swarm.join_all(), 15u);
  const node_id key = text_key("socket swarm");
  const byte_vector value{'o', 'n', 'e'};
  auto [ec, put] = wait<boost::system::error_code, dht::put_outcome>([&](auto h) { swarm[3].dht().put(key, value, h); });
  ASSERT_FALSE(ec) << ec.message();
  for (std::size_t i = 0; i < swarm.size(); ++i) EXPECT_EQ(get(swarm[i], key), value) << "node " << i;

  const node_id five = swarm[5].id();
  const uri where = swarm.address(5);
  swarm.kill(5);
  swarm.kill(6);
  EXPECT_FALSE(swarm.alive(5));
  EXPECT_THROW(swarm[5], std::logic_error) << "a dead node is not there to use";
  for (std::size_t i : {0u, 7u, 15u}) EXPECT_EQ(get(swarm[i], key), value) << "node " << i;

  EXPECT_TRUE(swarm.restart(5, 0));
  EXPECT_TRUE(swarm.alive(5));
  EXPECT_EQ(swarm[5].id(), five);
  EXPECT_EQ(swarm.address(5), where);
  EXPECT_EQ(get(swarm[5], key), value);
}

TEST_P(SocketSwarm, APartitionSeparatesTwoGroupsUntilHealed) {
  socket_swarm swarm(socket_swarm_settings{.transport = GetParam()});
  swarm.add_nodes(6);
  EXPECT_EQ(swarm.join_all(bootstrap_strategy::first), 5u);
  auto ping = [&](std::size_t from, std::size_t to) {
    return std::get<0>(wait<boost::system::error_code, std::chrono::microseconds>(
        [&](auto h) { swarm[from].async_ping(swarm.address(to), h); }));
  };
  EXPECT_FALSE(ping(1, 4));
  swarm.partition({0, 1, 2}, {3, 4});
  EXPECT_TRUE(ping(1, 4));   // the session they had is cut, and a new one is refused
  EXPECT_TRUE(ping(4, 2));
  EXPECT_FALSE(ping(1, 5));  // node 5 is in neither group
  EXPECT_FALSE(ping(4, 5));
  EXPECT_FALSE(ping(0, 2));  // within a group
  swarm.heal();
  EXPECT_FALSE(ping(1, 4));
  EXPECT_FALSE(ping(4, 2));
}

INSTANTIATE_TEST_SUITE_P(Loopback, SocketSwarm, ::testing::ValuesIn(testing::loopback_transports()),
                         [](const auto& info) { return info.param; });

TEST(SocketSwarmSettings, StrategiesPickTheNodeToJoinThrough) {
  socket_swarm a(socket_swarm_settings{.seed = 7}), b(socket_swarm_settings{.seed = 7});
  EXPECT_EQ(a.bootstrap_for(9, bootstrap_strategy::first), 0u);
  EXPECT_EQ(a.bootstrap_for(9, bootstrap_strategy::previous), 8u);
  bool varied = false;
  for (std::size_t i = 1; i < 200; ++i) {
    std::size_t via = a.bootstrap_for(i, bootstrap_strategy::random_earlier);
    EXPECT_LT(via, i);
    EXPECT_EQ(via, b.bootstrap_for(i, bootstrap_strategy::random_earlier)) << "the seed fixes the choices";
    varied = varied || (via != 0 && via != i - 1);
  }
  EXPECT_TRUE(varied);
  EXPECT_THROW(a.bootstrap_for(0, bootstrap_strategy::first), std::invalid_argument);
}

TEST(SocketSwarmSettings, ABadTransportIsNamed) {
  try {
    socket_swarm swarm(socket_swarm_settings{.transport = "quic"});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'quic'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kadnet
