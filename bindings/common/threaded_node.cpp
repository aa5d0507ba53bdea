#include "bindings/common/threaded_node.hpp"

#include <stdexcept>

#include <boost/asio/use_future.hpp>

namespace kadnet::bindings {

threaded_node::threaded_node(core::identity self, core::node_config config, transports::dht_settings dht)
    : work_(boost::asio::make_work_guard(io_)),
      node_(std::make_unique<node>(io_.get_executor(), std::move(self), std::move(config), std::move(dht))),
      thread_([this] { io_.run(); }) {}

void threaded_node::stop() {
  if (!node_) return;
  if (on_own_thread()) throw std::logic_error("a node cannot be stopped from its own handler");
  // As the tests' loopback nodes do: the stop completes pending operations, whose handlers may
  // hold the node, before the io_context goes away.
  node_->async_stop(boost::asio::use_future).get();
  node_.reset();
  work_.reset();
  io_.stop();
  thread_.join();
}

}  // namespace kadnet::bindings
