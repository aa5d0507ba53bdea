#pragma once
// Completing an asynchronous operation of the public API, as Asio requires.
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
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

// Per-operation cancellation: when `handler` has a cancellation slot (asio::bind_cancellation_slot,
// a coroutine's `||`, ...), a cancellation of a type in `honoured` posts `cancel` to `strand`.
// An operation that may have had an effect on the peer by then (a request sent) honours only
// terminal and partial cancellation, as Asio asks: total promises none. Call it in the
// initiating function, before the handler is moved. `cancel` must hold what it needs (a weak
// pointer to the node's driver and the operation's id) and do nothing when the operation has
// completed meanwhile: the slot keeps it until the slot is reused.
template <typename Handler, typename Cancel>
void on_cancellation(const Handler& handler, const boost::asio::any_io_executor& strand, Cancel cancel,
                     boost::asio::cancellation_type honoured = boost::asio::cancellation_type::all) {
  auto slot = boost::asio::get_associated_cancellation_slot(handler);
  if (!slot.is_connected()) return;
  slot.assign([strand, cancel = std::move(cancel), honoured](boost::asio::cancellation_type type) {
    if ((type & honoured) != boost::asio::cancellation_type::none) boost::asio::post(strand, cancel);
  });
}
}  // namespace detail

}  // namespace kadnet
