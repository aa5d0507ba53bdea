#pragma once
// kadnet.Stream: a byte stream to a peer (PROTOCOL.md 9.6) for Python — a
// bindings::blocking_stream whose calls release the GIL while they wait and raise kadnet.Error.
// Made by Node.open_stream and Node.accept_stream, which keep their Node alive as long as the
// stream.
#include <memory>
#include <string>

#include <pybind11/pybind11.h>

#include "bindings/common/blocking_stream.hpp"

namespace kadnet::python {

namespace py = pybind11;

class python_stream {
 public:
  python_stream(std::shared_ptr<bindings::stream_list> list, stream s) : stream_(std::move(list), std::move(s)) {}

  std::string peer() const { return stream_.peer(); }
  std::string protocol() const { return stream_.protocol(); }
  // Up to max_bytes that arrived (waiting for at least one); b"" once the peer ended its
  // direction and everything was read. kadnet.Error when the stream failed.
  py::bytes read(std::size_t max_bytes);
  // Writes every byte (waiting while the peer's window is full).
  void write(const py::bytes& data);
  // Ends this side's direction once what was written is delivered: the peer reads b"" then.
  void shutdown();
  // shutdown(), and stops reading; later calls raise kadnet.Error. Idempotent.
  void close() { stream_.close(); }

 private:
  bindings::blocking_stream stream_;
};

}  // namespace kadnet::python
