#include "bindings/common/streams.hpp"

#include <stdexcept>

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>

#include "core/wire/stream_header.hpp"
#include "transports/wait_for.hpp"

namespace kadnet::bindings {

struct stream_acceptor::state : std::enable_shared_from_this<state> {
  node* n;
  std::mutex mutex;
  std::condition_variable arrived;
  struct queue {
    std::deque<stream> ready;
    bool accepting = false;  // an async_accept_stream of the protocol is pending on the node
  };
  std::map<std::string, queue> queues;
  bool stopped = false;  // the node stopped, or the acceptor is going away

  explicit state(node& node) : n(&node) {}

  // Asks the node for the protocol's next stream unless one ask is pending or the queue is full.
  // Holds `mutex`.
  void keep_accepting(const std::string& protocol, queue& q) {
    if (stopped || q.accepting || q.ready.size() >= queued_per_protocol) return;
    q.accepting = true;
    n->async_accept_stream(protocol, [self = shared_from_this(), protocol](boost::system::error_code ec, stream s) {
      std::unique_lock lock(self->mutex);
      auto& q = self->queues[protocol];
      q.accepting = false;
      if (ec || self->stopped) {
        if (ec) self->stopped = true;  // only the node's stop fails an accept
        self->arrived.notify_all();
        lock.unlock();  // `s` closes on the node's thread, outside the lock
        return;
      }
      q.ready.push_back(std::move(s));
      self->keep_accepting(protocol, q);
      self->arrived.notify_all();
    });
  }
};

stream_acceptor::stream_acceptor(node& n) : state_(std::make_shared<state>(n)) {}

stream_acceptor::~stream_acceptor() {
  std::map<std::string, state::queue> dropped;
  {
    std::lock_guard lock(state_->mutex);
    state_->stopped = true;
    dropped = std::move(state_->queues);
    state_->queues.clear();
    state_->arrived.notify_all();
  }
}

std::optional<stream> stream_acceptor::accept(const std::string& protocol,
                                              std::optional<std::chrono::milliseconds> timeout) {
  if (!core::wire::valid_stream_protocol(protocol))
    throw std::invalid_argument("a stream protocol is 0 to 255 bytes of UTF-8 without control characters");
  std::unique_lock lock(state_->mutex);
  auto& q = state_->queues[protocol];
  const auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout : std::chrono::steady_clock::time_point::max();
  for (;;) {
    if (state_->stopped) throw std::runtime_error("the node is stopped");
    if (!q.ready.empty()) {
      stream s = std::move(q.ready.front());
      q.ready.pop_front();
      state_->keep_accepting(protocol, q);  // room again in a queue that was full
      return s;
    }
    state_->keep_accepting(protocol, q);
    if (!timeout) state_->arrived.wait(lock);
    else if (state_->arrived.wait_until(lock, deadline) == std::cv_status::timeout && q.ready.empty())
      return std::nullopt;
  }
}

std::pair<boost::system::error_code, std::size_t> read_some(stream& s, mutable_byte_span into) {
  auto [ec, n] = transports::wait_for<boost::system::error_code, std::size_t>(
      [&](auto done) { s.async_read_some(boost::asio::buffer(into.data(), into.size()), done); });
  return std::pair(ec, n);
}

boost::system::error_code write_all(stream& s, byte_span bytes) {
  auto [ec, n] = transports::wait_for<boost::system::error_code, std::size_t>(
      [&](auto done) { boost::asio::async_write(s, boost::asio::buffer(bytes.data(), bytes.size()), done); });
  return ec;
}

}  // namespace kadnet::bindings
