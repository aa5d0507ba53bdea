#include "bindings/common/blocking_stream.hpp"

#include <optional>
#include <stdexcept>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>

#include "kadnet/core/errors.hpp"

namespace kadnet::bindings {

using boost::system::error_code;

void stream_list::stop_all() {
  std::lock_guard lock(mutex_);
  stopped_ = true;
  for (blocking_stream* s : open_) s->let_go_of_node();
}

void stream_list::end() {
  std::lock_guard lock(waits_mutex_);
  ended_ = true;
  completed_.notify_all();
}

blocking_stream::blocking_stream(std::shared_ptr<stream_list> list, stream s)
    : list_(std::move(list)), peer_(s.peer().to_hex()), protocol_(s.protocol()), stream_(std::move(s)) {
  std::lock_guard lock(list_->mutex_);
  if (list_->stopped_) stream_ = stream{};  // the node stopped while it was being made: let go of it
  else list_->open_.insert(this);
}

blocking_stream::~blocking_stream() {
  // Closed under the list's lock: a stop cannot come between, and once the node stopped the
  // stream was closed already (a close now would reach a node that may be gone).
  std::lock_guard lock(list_->mutex_);
  if (list_->open_.erase(this) && !list_->stopped_) close();
}

error_code blocking_stream::why_not_open() const {
  if (list_->stopped_) return core::errc::shutting_down;
  if (!stream_.is_open()) return boost::asio::error::operation_aborted;
  return {};
}

void blocking_stream::check_may_wait() const {
  if (std::this_thread::get_id() == list_->node_thread_)
    throw std::invalid_argument("a handler cannot wait on a stream of its own node (it runs on the node's thread)");
}

template <typename Op>
std::pair<error_code, std::size_t> blocking_stream::run(Op op, const interruption& interrupted) {
  using outcome = std::optional<std::pair<error_code, std::size_t>>;
  auto result = std::make_shared<outcome>();
  auto done = [list = list_, result](error_code ec, std::size_t n) {
    std::lock_guard lock(list->waits_mutex_);
    *result = std::pair(ec, n);
    list->completed_.notify_all();
  };
  {
    std::lock_guard lock(mutex_);
    if (auto ec = why_not_open()) return {ec, 0};
    op(stream_, std::move(done));
  }
  std::unique_lock lock(list_->waits_mutex_);
  auto over = [&] { return result->has_value() || list_->ended_; };
  if (!interrupted) {
    list_->completed_.wait(lock, over);
  } else {
    bool closed = false;
    while (!list_->completed_.wait_for(lock, std::chrono::milliseconds(100), over)) {
      if (closed) continue;
      // Asked without the lock: the check may run Python code (signal handlers, which may stop
      // the node), and every completion of the node's streams takes this lock.
      lock.unlock();
      closed = interrupted();
      if (closed) close();  // close() takes the stream's own lock
      lock.lock();
    }
  }
  // Not completed: the node's thread is gone, and with it anything that could touch the buffers.
  auto [ec, n] = result->value_or(std::pair(make_error_code(boost::asio::error::operation_aborted), std::size_t{0}));
  if (ec == boost::asio::error::operation_aborted && list_->stopped_) ec = core::errc::shutting_down;
  return {ec, n};
}

std::pair<error_code, std::size_t> blocking_stream::read_some(mutable_byte_span into, const interruption& interrupted) {
  check_may_wait();
  std::lock_guard reading(read_mutex_);
  return run([&](stream& s, auto done) { s.async_read_some(boost::asio::buffer(into.data(), into.size()), std::move(done)); },
             interrupted);
}

error_code blocking_stream::write_all(byte_span bytes, const interruption& interrupted) {
  check_may_wait();
  std::lock_guard writing(write_mutex_);
  {
    std::lock_guard lock(mutex_);
    if (auto ec = why_not_open()) return ec;  // even for no bytes
  }
  for (std::size_t sent = 0; sent < bytes.size();) {
    auto [ec, n] = run([&](stream& s, auto done) {
      s.async_write_some(boost::asio::buffer(bytes.data() + sent, bytes.size() - sent), std::move(done));
    }, interrupted);
    if (ec) return ec;
    sent += n;
  }
  return {};
}

error_code blocking_stream::shutdown() {
  std::lock_guard lock(mutex_);
  if (auto ec = why_not_open()) return ec;
  stream_.shutdown_send();
  return {};
}

void blocking_stream::close() {
  std::lock_guard lock(mutex_);
  stream_.close();
}

void blocking_stream::let_go_of_node() {
  std::lock_guard lock(mutex_);
  stream_ = stream{};  // closes it first
}

}  // namespace kadnet::bindings
