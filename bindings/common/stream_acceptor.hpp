#pragma once
// Accepting byte streams for the bindings' nodes (the Python module, the C API), whose callers
// block: the streams peers open for a protocol are accepted for callers waiting for one, with a
// timeout.
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "kadnet/transports/node.hpp"

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

}  // namespace kadnet::bindings
