#include "bindings/common/stream_acceptor.hpp"

#include <map>
#include <stdexcept>

#include "kadnet/core/wire/stream_header.hpp"

namespace kadnet::bindings {

struct stream_acceptor::state : std::enable_shared_from_this<state> {
  node* n;
  std::mutex mutex;
  std::condition_variable arrived;
  struct queue {
    std::optional<stream> ready;  // accepted for a caller whose time ran out
    bool accepting = false;       // an async_accept_stream of the protocol is pending on the node
  };
  std::map<std::string, queue> queues;
  bool stopped = false;  // the node stopped, or stop() was called

  explicit state(node& node) : n(&node) {}

  // Asks the node for the protocol's next stream, unless one ask is pending or one stream waits
  // here already. Holds `mutex`.
  void accept_one(const std::string& protocol, queue& q) {
    if (stopped || q.accepting || q.ready) return;
    q.accepting = true;
    n->async_accept_stream(protocol, [self = shared_from_this(), protocol](boost::system::error_code ec, stream s) {
      std::unique_lock lock(self->mutex);
      auto& q = self->queues[protocol];
      q.accepting = false;
      if (ec) self->stopped = true;  // only the node's stop fails an accept
      if (!self->stopped) q.ready.emplace(std::move(s));
      self->arrived.notify_all();
      lock.unlock();  // a stream nobody will take closes here, on the node's thread
    });
  }
};

stream_acceptor::stream_acceptor(node& n) : state_(std::make_shared<state>(n)) {}

void stream_acceptor::stop() {
  std::map<std::string, state::queue> dropped;  // closed outside the lock
  std::lock_guard lock(state_->mutex);
  state_->stopped = true;
  dropped.swap(state_->queues);
  state_->arrived.notify_all();
}

std::optional<stream> stream_acceptor::accept(const std::string& protocol,
                                              std::optional<std::chrono::milliseconds> timeout) {
  core::wire::check_stream_protocol(protocol);
  const auto st = state_;  // the callbacks share it; stop() may run meanwhile
  const auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout : std::chrono::steady_clock::time_point::max();
  std::unique_lock lock(st->mutex);
  for (;;) {
    if (st->stopped) throw std::runtime_error("the node is stopped");
    auto& q = st->queues[protocol];  // looked up again after every wait: stop() empties the map
    if (q.ready) {
      stream s = std::move(*q.ready);
      q.ready.reset();
      return s;
    }
    st->accept_one(protocol, q);
    if (!timeout) st->arrived.wait(lock);
    else if (st->arrived.wait_until(lock, deadline) == std::cv_status::timeout) {
      if (st->stopped) throw std::runtime_error("the node is stopped");
      auto& again = st->queues[protocol];
      if (!again.ready) return std::nullopt;
    }
  }
}

}  // namespace kadnet::bindings
