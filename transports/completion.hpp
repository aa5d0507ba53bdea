#pragma once
// Completing an asynchronous operation of the public API, as Asio requires.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/post.hpp>

namespace kadnet {

namespace detail {
// Invokes a completion handler with `args` on the handler's associated executor (the node's
// strand when it has none), as Asio requires of an asynchronous operation. Always posted, never
// run inline: a handler must not run inside the call that started it, nor re-enter the engine in
// the middle of one of its calls (a handler may well stop the node).
template <typename Handler, typename... Args>
void complete(Handler handler, const boost::asio::any_io_executor& fallback, Args... args) {
  auto ex = boost::asio::get_associated_executor(handler, fallback);
  boost::asio::post(ex, [h = std::move(handler), ... a = std::move(args)]() mutable {
    std::move(h)(std::move(a)...);
  });
}
}  // namespace detail

}  // namespace kadnet
