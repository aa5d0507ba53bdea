#include "bindings/python/python_stream.hpp"

#include <algorithm>
#include <stdexcept>

#include <boost/asio/error.hpp>

#include "bindings/python/python_node.hpp"
#include "kadnet/core/errors.hpp"

namespace kadnet::python {

namespace {
// What one read allocates at most, whatever max_bytes asks: a read returns what arrived anyway.
constexpr std::size_t largest_read = 1 << 20;
using boost::system::error_code;

// Raises kadnet.Error for a stream's error (eof is no error).
void raise_if_failed(const error_code& ec) {
  if (!ec || ec == boost::asio::error::eof) return;
  if (ec == core::errc::shutting_down) throw error("the node is stopped");
  if (ec == boost::asio::error::operation_aborted) throw error("the stream is closed");
  throw error(ec.message());
}

// Runs a blocking_stream call with the GIL released; its misuse (a wait on the node's own
// thread) raises kadnet.Error.
template <typename Call>
auto without_gil(Call call) {
  try {
    py::gil_scoped_release release;
    return call();
  } catch (const std::invalid_argument& e) {
    throw error(e.what());
  }
}
}  // namespace

py::bytes python_stream::read(std::size_t max_bytes) {
  if (max_bytes == 0) throw py::value_error("max_bytes must be at least 1");
  std::string buffer(std::min(max_bytes, largest_read), '\0');
  auto [ec, n] = without_gil([&] {
    return stream_.read_some(mutable_byte_span(reinterpret_cast<std::uint8_t*>(buffer.data()), buffer.size()),
                             signal_raised);
  });
  if (PyErr_Occurred()) throw py::error_already_set();  // Ctrl-C closed the stream to end the read
  raise_if_failed(ec);
  buffer.resize(n);
  return py::bytes(buffer);
}

void python_stream::write(const py::bytes& data) {
  std::string_view view = data;
  std::string bytes(view);  // the Python object may change once the GIL is released
  auto ec = without_gil([&] {
    return stream_.write_all(byte_span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()),
                             signal_raised);
  });
  if (PyErr_Occurred()) throw py::error_already_set();  // Ctrl-C closed the stream to end the write
  raise_if_failed(ec);
}

void python_stream::shutdown() { raise_if_failed(stream_.shutdown()); }

}  // namespace kadnet::python
