#pragma once
// kadnet::stream — a reliable, ordered byte stream to a peer, over the node's session with it,
// whatever its transport: UDP, TCP, WebSocket or a relay (seed 004; PROTOCOL.md 9.6). It models Asio's AsyncReadStream and AsyncWriteStream, so
// boost::asio::async_read, async_write and async_read_until work on it unchanged:
//
//   kadnet::stream s = co_await a.async_open_stream(b_uri, boost::asio::use_awaitable);
//   co_await boost::asio::async_write(s, boost::asio::buffer(data), boost::asio::use_awaitable);
//   s.shutdown_send();                              // the peer's reads end with asio::error::eof
//
// Every stream is for a protocol its opener names (async_open_stream(target, protocol, token);
// "" by default): the peer hands it to an acceptor of that protocol or refuses it, and then
// its reads fail with core::errc::protocol_not_served.
//
// Reads end with boost::asio::error::eof once the peer shut its direction and everything was
// read; they fail with connection_reset when the peer reset the stream, and with the session's
// error (errc::connection_closed, errc::timeout) when the peer is lost. A write completes once
// the stream took some bytes (at most its window's worth); a reader that does not read makes the
// writer wait, never buffer without bound. One read and one write may be pending at a time;
// either takes Asio's per-operation cancellation (a cancelled write has taken no byte).
// Destroying a stream closes it.
#include <memory>
#include <stdexcept>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include "kadnet/transports/completion.hpp"
#include "kadnet/transports/node_driver.hpp"
#include "kadnet/transports/stream_state.hpp"

namespace kadnet {

class stream {
 public:
  using executor_type = boost::asio::any_io_executor;

  stream() = default;
  stream(std::shared_ptr<transports::node_driver> driver, std::shared_ptr<transports::stream_state> state)
      : driver_(std::move(driver)), state_(std::move(state)) {}
  stream(stream&&) noexcept = default;
  stream& operator=(stream&& other) noexcept {
    if (this != &other) {
      close();
      driver_ = std::move(other.driver_);
      state_ = std::move(other.state_);
    }
    return *this;
  }
  ~stream() { close(); }

  bool is_open() const { return state_ != nullptr; }
  // The node's executor. Throws std::logic_error for a stream made by the default constructor
  // (as does reading or writing it); on a closed stream, reads and writes fail with
  // asio::error::bad_descriptor, as on a closed socket.
  executor_type get_executor() const { return driver().any_executor(); }
  // Who and what it is; each throws std::logic_error once the stream is closed (or moved from).
  const core::node_id& peer() const { return open_state().peer; }
  core::stream_id id() const { return open_state().id; }
  // The protocol its opener named (PROTOCOL.md 9.6); "" is the default one.
  const std::string& protocol() const { return open_state().protocol; }

  template <typename MutableBufferSequence, typename Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    driver();  // throws for a default-constructed stream, here and not on the strand
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [d = driver_, s = state_](auto handler, std::vector<boost::asio::mutable_buffer> bufs) {
          const std::uint64_t read = cancellable(handler, d, s, &transports::node_driver::cancel_read);
          auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, s, bufs = std::move(bufs), read, h = std::move(handler),
                                                    work = std::move(work)]() mutable {
            d->stream_read(s, std::move(bufs), read, [d, h = std::move(h), work = std::move(work)](
                                                   boost::system::error_code ec, std::size_t n) mutable {
              detail::complete(std::move(h), d->any_executor(), ec, n);
            });
          });
        },
        token, std::vector<boost::asio::mutable_buffer>(boost::asio::buffer_sequence_begin(buffers),
                                                        boost::asio::buffer_sequence_end(buffers)));
  }

  template <typename ConstBufferSequence, typename Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    // Gathered into one block of at most a window's worth: a write may take fewer bytes.
    byte_vector bytes(std::min<std::size_t>(boost::asio::buffer_size(buffers), max_write));
    boost::asio::buffer_copy(boost::asio::buffer(bytes), buffers);
    driver();  // throws for a default-constructed stream, here and not on the strand
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [d = driver_, s = state_](auto handler, byte_vector bytes) {
          const std::uint64_t write = cancellable(handler, d, s, &transports::node_driver::cancel_write);
          auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, s, bytes = std::move(bytes), write, h = std::move(handler),
                                                    work = std::move(work)]() mutable {
            d->stream_write(s, std::move(bytes), write, [d, h = std::move(h), work = std::move(work)](
                                                     boost::system::error_code ec, std::size_t n) mutable {
              detail::complete(std::move(h), d->any_executor(), ec, n);
            });
          });
        },
        token, std::move(bytes));
  }

  // Ends this side's direction once what was written is delivered.
  void shutdown_send() {
    if (state_) boost::asio::dispatch(driver_->any_executor(), [d = driver_, s = state_] { d->stream_shutdown(s); });
  }
  // shutdown_send(), and stops reading: pending operations end with operation_aborted.
  void close() {
    if (!state_) return;
    boost::asio::dispatch(driver_->any_executor(), [d = driver_, s = std::move(state_)] { d->stream_close(s); });
  }
  // Abandons both directions at once; the peer's operations fail with connection_reset.
  void reset() {
    if (!state_) return;
    boost::asio::dispatch(driver_->any_executor(), [d = driver_, s = std::move(state_)] { d->stream_reset(s); });
  }

 private:
  static constexpr std::size_t max_write = 256 * 1024;
  using canceller = void (transports::node_driver::*)(const std::shared_ptr<transports::stream_state>&, std::uint64_t);
  // A read's or a write's id for `cancel` (node_driver::cancellable; any type: a pending read or
  // write has taken nothing yet).
  template <typename Handler>
  static std::uint64_t cancellable(const Handler& handler, const std::shared_ptr<transports::node_driver>& d,
                                   const std::shared_ptr<transports::stream_state>& s, canceller cancel) {
    return d->cancellable(handler, [ws = std::weak_ptr(s), cancel](transports::node_driver& n, std::uint64_t id) {
      if (auto state = ws.lock()) (n.*cancel)(state, id);
    });
  }
  transports::node_driver& driver() const {
    if (!driver_) throw std::logic_error("kadnet::stream: it has no node (made by the default constructor, or moved from)");
    return *driver_;
  }
  const transports::stream_state& open_state() const {
    if (!state_) throw std::logic_error("kadnet::stream: closed (or moved from)");
    return *state_;
  }
  std::shared_ptr<transports::node_driver> driver_;
  std::shared_ptr<transports::stream_state> state_;
};

}  // namespace kadnet
