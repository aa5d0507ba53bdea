#pragma once
// A kadnet::node with an io_context and a thread of its own, for callers that block (the Python
// module, the C API): they start an operation with a callback and wait for its values
// (transports::wait_for). The node's handlers run on that thread.
#include <memory>
#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "kadnet/transports/node.hpp"
#include "kadnet/transports/wait_for.hpp"

namespace kadnet::bindings {

class threaded_node {
 public:
  threaded_node(core::identity self, core::node_config config, transports::dht_settings dht);
  ~threaded_node() { stop(); }
  threaded_node(const threaded_node&) = delete;
  threaded_node& operator=(const threaded_node&) = delete;

  // Null once stopped.
  node* get() { return node_.get(); }
  const node* get() const { return node_.get(); }
  // Ends every session, then the thread. Idempotent. On the node's own thread (from one of its
  // handlers) it would wait for itself: it throws std::logic_error there.
  void stop();
  // Whether the caller is the node's thread: waiting there for the node would never end.
  bool on_own_thread() const { return std::this_thread::get_id() == thread_.get_id(); }
  std::thread::id thread_id() const { return thread_.get_id(); }

 private:
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::unique_ptr<node> node_;
  std::thread thread_;
};

using transports::wait_for;

}  // namespace kadnet::bindings
