#pragma once
// kadnet.Stream: a byte stream to a peer (PROTOCOL.md 9.6) for Python, with blocking calls that
// release the GIL while they wait. Made by Node.open_stream and Node.accept_stream, which keep
// their Node alive as long as the stream.
#include <mutex>
#include <string>

#include <pybind11/pybind11.h>

#include "transports/stream.hpp"

namespace kadnet::python {

namespace py = pybind11;
class python_node;

class python_stream {
 public:
  python_stream(python_node& owner, stream s);
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
  stream& open_stream();

  python_node& owner_;
  std::string peer_, protocol_;
  // One read and one write may wait at a time on a stream: Python threads take turns.
  std::mutex read_mutex_, write_mutex_;
  std::mutex stream_mutex_;  // guards closing against calls
  stream stream_;
};

}  // namespace kadnet::python
