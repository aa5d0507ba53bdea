#pragma once
// Byte streams for the bindings' nodes (the Python module, the C API), whose callers block:
// the streams peers open for a protocol are accepted for callers waiting for one (with a
// timeout), and reads and writes wait for their completion, or for the node's end.
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/error.hpp>

#include "transports/node.hpp"

namespace kadnet::bindings {

// The streams peers open to one node for the protocols callers asked for. The first accept() of
// a protocol makes the node serve it (node::async_accept_stream). A stream is accepted from the
// node only for a caller waiting for one (at most one accepted stream per protocol waits here
// when that caller's time ran out): the rest wait in the node's backlog, their windows still
// closed, so what peers may park stays within PROTOCOL.md 9.6's bound.
class stream_acceptor {
 public:
  explicit stream_acceptor(node& n);
  ~stream_acceptor() { stop(); }
  stream_acceptor(const stream_acceptor&) = delete;
  stream_acceptor& operator=(const stream_acceptor&) = delete;

  // The next stream of `protocol`, waiting up to `timeout` (none: until one comes). Nullopt when
  // the time ran out. Throws std::runtime_error when the node stopped meanwhile, and
  // std::invalid_argument for a protocol that is not valid (core::wire::valid_stream_protocol).
  // Not on the node's own thread.
  std::optional<stream> accept(const std::string& protocol, std::optional<std::chrono::milliseconds> timeout);
  // Closes the streams nobody took and wakes every caller waiting in accept() (they throw);
  // later accepts throw. Call it before the node stops. Idempotent.
  void stop();

  struct state;  // shared with the node's accept callbacks (streams.cpp)

 private:
  std::shared_ptr<state> state_;
};

// Where the callers blocked on one node's stream operations wait. A completion that the node
// posted as it stopped may never run once its thread is gone: end() (after the thread ended)
// then wakes whoever still waits, so that no caller waits for ever.
struct stream_waits {
  std::mutex mutex;
  std::condition_variable done;
  bool ended = false;

  void end() {
    std::lock_guard lock(mutex);
    ended = true;
    done.notify_all();
  }
};

// Starts one stream operation — start(handler), where handler(error_code, std::size_t) is its
// completion — and waits for it: its values, or operation_aborted when the node's thread ended
// first (nothing touches the operation's buffers then any more). Not on the node's thread.
template <typename Start>
std::pair<boost::system::error_code, std::size_t> wait_for_stream(const std::shared_ptr<stream_waits>& waits,
                                                                    Start start) {
  using outcome = std::optional<std::pair<boost::system::error_code, std::size_t>>;
  auto result = std::make_shared<outcome>();
  start([waits, result](boost::system::error_code ec, std::size_t n) {
    std::lock_guard lock(waits->mutex);
    *result = std::pair(ec, n);
    waits->done.notify_all();
  });
  std::unique_lock lock(waits->mutex);
  waits->done.wait(lock, [&] { return result->has_value() || waits->ended; });
  if (*result) return **result;
  return {make_error_code(boost::asio::error::operation_aborted), 0};
}

}  // namespace kadnet::bindings
