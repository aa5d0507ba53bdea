#pragma once
// kadnet.Stream: a byte stream to a peer (PROTOCOL.md 9.6) for Python, with blocking calls that
// release the GIL while they wait. Made by Node.open_stream and Node.accept_stream, which keep
// their Node alive as long as the stream.
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <pybind11/pybind11.h>

#include "bindings/common/streams.hpp"
#include "transports/stream.hpp"

namespace kadnet::python {

namespace py = pybind11;
class python_stream;

// A node's open streams: its stop() closes them all while the node still runs, so that no read
// or write can start afterwards on a node whose thread is gone (it would never complete).
struct stream_list {
  std::mutex mutex;  // taken before a stream's own lock, never after
  std::set<python_stream*> open;
  std::atomic<bool> stopped = false;
  std::shared_ptr<bindings::stream_waits> waits = std::make_shared<bindings::stream_waits>();
  // Whether the caller is the node's thread (a handler): a read or write there would wait for
  // a completion that only that thread can run.
  std::function<bool()> on_node_thread;

  // Marks the node stopped and closes every open stream (waiting operations end).
  void stop_all();
};

class python_stream {
 public:
  python_stream(std::shared_ptr<stream_list> list, stream s);
  ~python_stream();
  python_stream(const python_stream&) = delete;
  python_stream& operator=(const python_stream&) = delete;

  std::string peer() const { return peer_; }
  std::string protocol() const { return protocol_; }
  // Up to max_bytes that arrived (waiting for at least one); b"" once the peer ended its
  // direction and everything was read. kadnet.Error when the stream failed.
  py::bytes read(std::size_t max_bytes);
  // Writes every byte (waiting while the peer's window is full).
  void write(const py::bytes& data);
  // Ends this side's direction once what was written is delivered: the peer reads b"" then.
  void shutdown();
  // shutdown(), and stops reading; later calls raise kadnet.Error. Idempotent.
  void close();

 private:
  friend struct stream_list;
  // The stream, to start an operation on (holding stream_mutex_); raises kadnet.Error when it
  // was closed or its node stopped.
  stream& open_stream();
  // Raises kadnet.Error on the node's own thread, where a read or write could never complete.
  void check_may_wait() const;

  std::shared_ptr<stream_list> list_;
  std::string peer_, protocol_;
  // One read and one write may wait at a time on a stream: Python threads take turns (waiting
  // for their turn without the GIL).
  std::mutex read_mutex_, write_mutex_;
  std::mutex stream_mutex_;  // operations start, and the stream closes, under it
  stream stream_;
};

}  // namespace kadnet::python
