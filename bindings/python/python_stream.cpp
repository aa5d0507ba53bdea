#include "bindings/python/python_stream.hpp"

#include <algorithm>
#include <future>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>

#include "bindings/python/python_node.hpp"

namespace kadnet::python {

namespace {
// What one read allocates at most, whatever max_bytes asks: a read returns what arrived anyway.
constexpr std::size_t largest_read = 1 << 20;
using boost::system::error_code;
}  // namespace

python_stream::python_stream(python_node& owner, stream s)
    : owner_(owner), peer_(s.peer().to_hex()), protocol_(s.protocol()), stream_(std::move(s)) {}

python_stream::~python_stream() { close(); }

stream& python_stream::open_stream() {
  if (!stream_.is_open()) throw error("the stream is closed");
  if (owner_.stopped()) throw error("the node is stopped");
  return stream_;
}

py::bytes python_stream::read(std::size_t max_bytes) {
  if (max_bytes == 0) throw py::value_error("max_bytes must be at least 1");
  std::lock_guard reading(read_mutex_);
  std::string buffer(std::min(max_bytes, largest_read), '\0');
  error_code ec;
  std::size_t n = 0;
  {
    py::gil_scoped_release release;
    std::promise<std::pair<error_code, std::size_t>> done;
    auto result = done.get_future();
    {
      std::lock_guard lock(stream_mutex_);
      open_stream().async_read_some(boost::asio::buffer(buffer),
                                    [&done](error_code e, std::size_t k) { done.set_value({e, k}); });
    }
    std::tie(ec, n) = result.get();
  }
  if (ec && ec != boost::asio::error::eof) throw error(ec.message());
  buffer.resize(n);
  return py::bytes(buffer);
}

void python_stream::write(const py::bytes& data) {
  std::lock_guard writing(write_mutex_);
  std::string_view view = data;
  std::string bytes(view);  // the Python object may change once the GIL is released
  {
    std::lock_guard lock(stream_mutex_);
    open_stream();  // closed, or its node stopped: raises, even for no bytes
  }
  error_code ec;
  {
    py::gil_scoped_release release;
    // One async_write_some at a time, each started under stream_mutex_: close() in another
    // thread may end the stream between two of them (asio::async_write would go on with a
    // closed stream on the node's thread).
    for (std::size_t done = 0; done < bytes.size() && !ec;) {
      std::promise<std::pair<error_code, std::size_t>> written;
      auto result = written.get_future();
      {
        std::lock_guard lock(stream_mutex_);
        if (!stream_.is_open() || owner_.stopped()) {
          ec = boost::asio::error::operation_aborted;
          break;
        }
        stream_.async_write_some(boost::asio::buffer(bytes.data() + done, bytes.size() - done),
                                 [&written](error_code e, std::size_t k) { written.set_value({e, k}); });
      }
      auto [e, k] = result.get();
      ec = e;
      done += k;
    }
  }
  if (ec) throw error(ec == boost::asio::error::operation_aborted ? "the stream is closed" : ec.message());
}

void python_stream::shutdown() {
  std::lock_guard lock(stream_mutex_);
  open_stream().shutdown_send();
}

void python_stream::close() {
  std::lock_guard lock(stream_mutex_);
  stream_.close();  // a read or write waiting in another thread ends with operation_aborted
}

}  // namespace kadnet::python
