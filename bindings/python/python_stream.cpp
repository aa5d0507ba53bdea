#include "bindings/python/python_stream.hpp"

#include <algorithm>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>

#include "bindings/python/python_node.hpp"

namespace kadnet::python {

namespace {
// What one read allocates at most, whatever max_bytes asks: a read returns what arrived anyway.
constexpr std::size_t largest_read = 1 << 20;
using boost::system::error_code;
}  // namespace

void stream_list::stop_all() {
  std::lock_guard lock(mutex);
  stopped = true;
  for (python_stream* s : open) s->close();
}

python_stream::python_stream(std::shared_ptr<stream_list> list, stream s)
    : list_(std::move(list)), peer_(s.peer().to_hex()), protocol_(s.protocol()), stream_(std::move(s)) {
  std::lock_guard lock(list_->mutex);
  if (list_->stopped) stream_.close();  // stop() ran while it was being made
  else list_->open.insert(this);
}

python_stream::~python_stream() {
  {
    std::lock_guard lock(list_->mutex);
    list_->open.erase(this);
  }
  close();
}

stream& python_stream::open_stream() {
  if (list_->stopped) throw error("the node is stopped");
  if (!stream_.is_open()) throw error("the stream is closed");
  return stream_;
}

void python_stream::check_may_wait() const {
  if (list_->on_node_thread && list_->on_node_thread())
    throw error("a handler cannot wait on a stream of its own node (it runs on the node's thread)");
}

py::bytes python_stream::read(std::size_t max_bytes) {
  if (max_bytes == 0) throw py::value_error("max_bytes must be at least 1");
  check_may_wait();
  std::string buffer(std::min(max_bytes, largest_read), '\0');
  error_code ec;
  std::size_t n = 0;
  {
    py::gil_scoped_release release;
    std::lock_guard reading(read_mutex_);
    std::tie(ec, n) = bindings::wait_for_stream(list_->waits, [&](auto done) {
      std::lock_guard lock(stream_mutex_);
      open_stream().async_read_some(boost::asio::buffer(buffer), std::move(done));
    });
  }
  if (ec == boost::asio::error::operation_aborted) throw error(list_->stopped ? "the node is stopped" : "the stream is closed");
  if (ec && ec != boost::asio::error::eof) throw error(ec.message());
  buffer.resize(n);
  return py::bytes(buffer);
}

void python_stream::write(const py::bytes& data) {
  check_may_wait();
  std::string_view view = data;
  std::string bytes(view);  // the Python object may change once the GIL is released
  error_code ec;
  {
    py::gil_scoped_release release;
    std::lock_guard writing(write_mutex_);
    {
      std::lock_guard lock(stream_mutex_);
      open_stream();  // closed, or its node stopped: raises, even for no bytes
    }
    // One async_write_some at a time, each started under stream_mutex_: close() in another
    // thread may end the stream between two of them (asio::async_write would go on with a
    // closed stream on the node's thread).
    for (std::size_t sent = 0; sent < bytes.size() && !ec;) {
      std::size_t n = 0;
      std::tie(ec, n) = bindings::wait_for_stream(list_->waits, [&](auto done) {
        std::lock_guard lock(stream_mutex_);
        open_stream().async_write_some(boost::asio::buffer(bytes.data() + sent, bytes.size() - sent), std::move(done));
      });
      sent += n;
    }
  }
  if (ec == boost::asio::error::operation_aborted) throw error(list_->stopped ? "the node is stopped" : "the stream is closed");
  if (ec) throw error(ec.message());
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
