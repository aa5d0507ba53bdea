#pragma once
// A byte stream for the bindings (the Python module, the C API), whose callers block: reads and
// writes wait for their completion on the caller's thread. A node's streams are listed
// (stream_list) so that stopping the node closes them while it still runs, and so that no
// caller waits for ever on a completion the stopped node never runs.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include <boost/system/error_code.hpp>

#include "kadnet/transports/stream.hpp"

namespace kadnet::bindings {

class blocking_stream;

// One node's open blocking_streams.
class stream_list {
 public:
  // `node_thread`: the node's own thread, where a read or write could never complete.
  explicit stream_list(std::thread::id node_thread) : node_thread_(node_thread) {}

  // Marks the node stopped and closes every listed stream, ending the operations waiting on
  // them; later ones fail with errc::shutting_down. Call it before the node stops.
  void stop_all();
  // Wakes the callers still waiting: call it once the node's thread has ended (a completion
  // posted as the node stopped never runs then).
  void end();

 private:
  friend class blocking_stream;
  std::thread::id node_thread_;
  std::mutex mutex_;  // taken before a stream's own lock, never after
  std::set<blocking_stream*> open_;
  std::atomic<bool> stopped_ = false;  // set under mutex_
  // Where callers wait for their operations' completions.
  std::mutex waits_mutex_;
  std::condition_variable completed_;
  bool ended_ = false;
};

class blocking_stream {
 public:
  // Listed in `list` until destroyed (then closed).
  blocking_stream(std::shared_ptr<stream_list> list, stream s);
  ~blocking_stream();
  blocking_stream(const blocking_stream&) = delete;
  blocking_stream& operator=(const blocking_stream&) = delete;

  const std::string& peer() const { return peer_; }
  const std::string& protocol() const { return protocol_; }

  // Asked every 100 ms while a read or write waits (a Python caller checks for Ctrl-C): true
  // closes the stream, so that the operation ends (with operation_aborted) and the call returns.
  using interruption = std::function<bool()>;

  // Waits for at least one byte: how many arrived, or the stream's error — asio::error::eof once
  // the peer ended its direction and everything was read, operation_aborted once closed,
  // errc::shutting_down once the node stopped. One read at a time: more wait their turn.
  // Throws std::invalid_argument on the node's own thread.
  std::pair<boost::system::error_code, std::size_t> read_some(mutable_byte_span into,
                                                              const interruption& interrupted = {});
  // Writes every byte, one async_write_some at a time (close() may end the stream between two).
  // Errors and turns as read_some.
  boost::system::error_code write_all(byte_span bytes, const interruption& interrupted = {});
  // Ends this side's direction once what was written is delivered.
  boost::system::error_code shutdown();
  // Ends both directions; an operation waiting in another thread ends. Idempotent.
  void close();

 private:
  friend class stream_list;
  // close(), and lets go of the node's driver: the stream may outlive the node (a Python object,
  // a C handle not closed yet), and the driver must not be destroyed after the node's
  // io_context, whose strand service it would then touch.
  void let_go_of_node();
  // Why no operation can start: the node stopped, or the stream was closed (holding mutex_).
  boost::system::error_code why_not_open() const;
  // Starts op(stream, handler) under mutex_ and waits for its completion.
  template <typename Op>
  std::pair<boost::system::error_code, std::size_t> run(Op op, const interruption& interrupted);
  void check_may_wait() const;

  std::shared_ptr<stream_list> list_;
  std::string peer_, protocol_;
  std::mutex read_mutex_, write_mutex_;  // one read and one write at a time
  std::mutex mutex_;                     // operations start, and the stream closes, under it
  stream stream_;
};

}  // namespace kadnet::bindings
