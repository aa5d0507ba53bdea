#pragma once
// Real nodes on loopback TCP, UDP or WebSocket, on one io_context run by a background thread. Tests wait
// on completion signals (futures filled by completion handlers), never on sleeps.
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "tests/support/fixed_keys.hpp"
#include "kadnet/transports/node.hpp"
#include "kadnet/transports/wait_for.hpp"

namespace kadnet::testing {

// DHT settings for nodes that all live on 127.0.0.1: no limit of contacts per /24.
inline transports::dht_settings loopback_dht() {
  transports::dht_settings s;
  s.config.routing.max_per_prefix = 0;
  return s;
}

// Every transport with real sockets: the schemes the Node's behaviour tests run over.
inline std::vector<std::string> loopback_transports() { return {"tcp", "udp", "ws"}; }

class loopback_nodes {
 public:
  // `transport` is the scheme every node listens on: "tcp", "udp" or "ws".
  explicit loopback_nodes(std::string transport = "tcp")
      : transport_(std::move(transport)), work_(boost::asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~loopback_nodes() {
    // Wait for each stop to run: it completes pending operations, whose handlers may hold the
    // node (a stream's pending read, an accept), before the io_context goes away.
    for (auto& n : nodes_) n->async_stop(boost::asio::use_future).get();
    nodes_.clear();
    work_.reset();
    io_.stop();
    thread_.join();
  }

  // A node listening on 127.0.0.1 (any port) over the transport.
  node& add(core::node_config config = {}, std::optional<core::identity> id = std::nullopt,
            transports::dht_settings dht = loopback_dht()) {
    nodes_.push_back(std::make_unique<node>(io_.get_executor(),
                                            id ? std::move(*id) : core::identity::generate(),
                                            std::move(config), std::move(dht)));
    addresses_.push_back(nodes_.back()->listen(*transports::parse_uri(transport_ + "://127.0.0.1:0")));
    return *nodes_.back();
  }
  // A node that listens nowhere (as one behind a NAT): it only dials out; address(i) is empty.
  node& add_dialing_only(core::node_config config = {}) {
    nodes_.push_back(std::make_unique<node>(io_.get_executor(), core::identity::generate(), std::move(config),
                                            loopback_dht()));
    addresses_.emplace_back();
    return *nodes_.back();
  }
  // The scheme every node listens on.
  const std::string& transport() const { return transport_; }
  node& operator[](std::size_t i) { return *nodes_[i]; }
  const uri& address(std::size_t i) const { return addresses_[i]; }
  std::size_t size() const { return nodes_.size(); }
  boost::asio::io_context& io() { return io_; }

 private:
  std::string transport_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  std::vector<std::unique_ptr<node>> nodes_;
  std::vector<uri> addresses_;
};

// Waits for an operation's completion values: wait<error_code, reply>([&](auto h){ n.async_call(..., h); }).
template <typename... Values, typename Start>
std::tuple<Values...> wait(Start start) {
  return transports::wait_for<Values...>(std::move(start));
}

}  // namespace kadnet::testing
