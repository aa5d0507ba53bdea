#pragma once
// Blocking on a node's asynchronous operation from a thread that is not the node's own (a CLI,
// a test, a language binding): the operation gets a callback that fills a promise, and the
// caller waits for its completion values. (Boost 1.81's as_tuple cannot wrap use_future.)
//
//   auto [ec, rtt] = kadnet::transports::wait_for<error_code, std::chrono::microseconds>(
//       [&](auto done) { n.async_ping(target, done); });
//
// Never call it on the node's own thread (its handlers included): the completion could not run.
#include <future>
#include <memory>
#include <tuple>

namespace kadnet::transports {

template <typename... Values, typename Start>
std::tuple<Values...> wait_for(Start start) {
  auto done = std::make_shared<std::promise<std::tuple<Values...>>>();
  auto result = done->get_future();
  start([done](Values... v) { done->set_value(std::tuple<Values...>(std::move(v)...)); });
  return result.get();
}

}  // namespace kadnet::transports
