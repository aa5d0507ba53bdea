#include "kadnet/transports/stream_watchdog.hpp"

namespace kadnet::transports {

stream_watchdog::stream_watchdog(stream& s, std::chrono::steady_clock::duration limit) : limit_(limit) {
  if (limit <= limit.zero()) return;
  shared_ = std::make_shared<shared_state>(s);
  shared_->deadline = std::chrono::steady_clock::now() + limit;
  wait(shared_);
}

stream_watchdog::~stream_watchdog() {
  if (!shared_) return;
  shared_->alive = false;
  shared_->timer.cancel();
}

void stream_watchdog::kick() {
  // Only the deadline moves; the timer, when it expires, waits again for the rest. (Re-arming it
  // on every chunk would cost a cancellation and a new wait each time.)
  if (shared_) shared_->deadline = std::chrono::steady_clock::now() + limit_;
}

void stream_watchdog::wait(std::shared_ptr<shared_state> state) {
  state->timer.expires_at(state->deadline);
  state->timer.async_wait([state](boost::system::error_code) {
    if (!state->alive) return;
    if (std::chrono::steady_clock::now() < state->deadline) return wait(state);
    state->fired = true;
    state->target->reset();
  });
}

}  // namespace kadnet::transports
