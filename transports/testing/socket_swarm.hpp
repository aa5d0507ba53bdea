#pragma once
// kadnet::testing::socket_swarm — N full nodes on loopback (or any local) sockets in one
// process, on one io_context run by worker threads, with bootstrap strategies and churn
// helpers: for tests, benchmarks and demos (`kadnet swarm --transport tcp|udp|ws` uses it). Its
// counterpart on the simulated network, in virtual time, is sim::swarm (transports/sim/swarm.hpp).
//
//   kadnet::testing::socket_swarm swarm({.transport = "udp"});
//   swarm.add_nodes(64);
//   swarm.join_all();                       // each through a random earlier node
//   swarm[3].dht().put(key, value, token);  // any node's full API
//   swarm.kill(5);
//   swarm.restart(5, 0);                    // same identity and address, rejoined through node 0
//   swarm.partition({0, 1, 2}, {3, 4});     // until swarm.heal()
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "kadnet/transports/node.hpp"

namespace kadnet::testing {

enum class bootstrap_strategy {
  random_earlier,  // node i joins through a random node added before it (the default)
  first,           // every node joins through node 0, one seed for all
  previous,        // node i joins through node i - 1, a chain
};

struct socket_swarm_settings {
  std::string transport = "udp";  // tcp, udp or ws
  std::string host = "127.0.0.1";
  unsigned threads = 2;           // running the one io_context
  core::node_config config{};     // every node's
  transports::dht_settings dht = local_dht();
  std::uint64_t seed = 1;         // the bootstrap choices of random_earlier

  // DHT settings for nodes that all share one host: no limit of contacts per /24 in a bucket.
  static transports::dht_settings local_dht() {
    transports::dht_settings s;
    s.config.routing.max_per_prefix = 0;
    return s;
  }
};

class socket_swarm {
 public:
  // Called once a join ended: whether it did, and the bootstrap lookup's rounds (-1 if none ran).
  using join_done = std::function<void(bool ok, int rounds)>;

  explicit socket_swarm(socket_swarm_settings settings = {});
  ~socket_swarm();
  socket_swarm(const socket_swarm&) = delete;
  socket_swarm& operator=(const socket_swarm&) = delete;

  // A node listening on settings.host, port 0; returns its index. Throws when it cannot bind.
  std::size_t add_node();
  void add_nodes(std::size_t count);
  std::size_t size() const { return members_.size(); }
  // Node i; throws std::logic_error while it is dead (killed, not restarted).
  node& operator[](std::size_t i) {
    auto& n = members_.at(i).n;
    if (!n) throw std::logic_error("socket_swarm: node " + std::to_string(i) + " is dead (killed, not restarted)");
    return *n;
  }
  const uri& address(std::size_t i) const { return members_.at(i).address; }
  bool alive(std::size_t i) const { return members_.at(i).n != nullptr; }
  boost::asio::io_context& io() { return io_; }

  // Node i dials `via`'s address, then looks itself up (the bootstrap); `done` runs on a worker
  // thread. join() waits for it.
  void async_join(std::size_t i, std::size_t via, join_done done);
  bool join(std::size_t i, std::size_t via);
  // Joins nodes from..size()-1, `in_flight` at a time, each through the node `strategy` picks;
  // returns how many joined.
  std::size_t join_all(bootstrap_strategy strategy = bootstrap_strategy::random_earlier, std::size_t from = 1,
                       std::size_t in_flight = 64);
  // The node `strategy` picks for node i to join through (i > 0).
  std::size_t bootstrap_for(std::size_t i, bootstrap_strategy strategy);

  // Stops node i (its sessions end; peers see it vanish) and frees it.
  void kill(std::size_t i);
  // Starts node i again with its identity on its address and joins it through `via`.
  bool restart(std::size_t i, std::size_t via);
  // No session between a node of `a` and one of `b` (those open are cut, new ones refused)
  // until heal(). A node in neither group keeps talking to both. Live nodes only.
  void partition(const std::vector<std::size_t>& a, const std::vector<std::size_t>& b);
  void heal();

 private:
  struct member {
    core::identity identity;
    uri address;
    std::unique_ptr<node> n;
  };
  std::unique_ptr<node> make_node(const core::identity& id);

  socket_swarm_settings settings_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  std::vector<member> members_;
  std::mutex rng_mutex_;
  std::mt19937_64 rng_;
};

}  // namespace kadnet::testing
