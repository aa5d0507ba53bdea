#pragma once
// Cuts off a kadnet::stream that makes no progress: when `limit` passes without a kick(), the
// stream is reset, so that its pending read or write fails at once (and the peer's with
// connection_reset), and fired() says why. Used on the stream's executor (the node's strand)
// only; the destructor disarms it.
//
//   stream_watchdog watch(s, std::chrono::seconds(120));
//   auto ec = co_await read_file_frame(s, m);   // fails when the peer stalls
//   if (watch.fired()) ec = core::errc::timeout;
//   watch.kick();
#include <chrono>
#include <memory>

#include <boost/asio/steady_timer.hpp>

#include "kadnet/transports/stream.hpp"

namespace kadnet::transports {

class stream_watchdog {
 public:
  // A limit of zero never fires.
  stream_watchdog(stream& s, std::chrono::steady_clock::duration limit);
  ~stream_watchdog();
  stream_watchdog(const stream_watchdog&) = delete;
  stream_watchdog& operator=(const stream_watchdog&) = delete;

  // Progress was made: the limit counts from now.
  void kick();
  bool fired() const { return shared_ && shared_->fired; }

 private:
  struct shared_state {
    explicit shared_state(stream& s) : target(&s), timer(s.get_executor()) {}
    stream* target;
    boost::asio::steady_timer timer;
    std::chrono::steady_clock::time_point deadline;
    bool alive = true;
    bool fired = false;
  };
  static void wait(std::shared_ptr<shared_state> state);

  std::chrono::steady_clock::duration limit_;
  std::shared_ptr<shared_state> shared_;  // with the timer's handler, which may outlive us
};

}  // namespace kadnet::transports
