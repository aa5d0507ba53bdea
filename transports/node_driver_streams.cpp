// node_driver's byte streams: opening and accepting them, and completing reads and writes as the
// engine reports bytes, room, ends and failures (core/stream_mux.hpp, PROTOCOL.md 9.6). Handlers
// here are the public API's wrappers, which post the application's handler: calling them on the
// strand, even inside an initiating call, is safe.
#include <array>
#include <cassert>

#include <boost/asio/error.hpp>

#include "kadnet/core/errors.hpp"
#include "kadnet/transports/node_driver.hpp"

namespace kadnet::transports {

using core::errc;
namespace {
// Streams of one protocol that peers opened and nobody accepted yet; beyond this, new ones of it
// are reset.
constexpr std::size_t accept_backlog = 256;
// Streams whose header is still arriving; beyond this, the one waiting longest is reset (a peer
// that never sends a header cannot hold the places, nor keep other peers' streams out).
constexpr std::size_t max_headers_pending = 64;
}  // namespace

void node_driver::open_stream(peer_ref target, std::string protocol, std::uint64_t wait, stream_handler handler) {
  auto shared = std::make_shared<stream_handler>(std::move(handler));
  with_connection(target, abortable(wait, [this, shared, protocol = std::move(protocol)](boost::system::error_code ec,
                                                                                         core::connection_id c) {
    std::shared_ptr<stream_state> s;
    if (!ec) {
      if (auto id = engine_.open_stream(c, ec)) {
        s = std::make_shared<stream_state>();
        s->connection = c;
        s->id = *id;
        s->peer = *engine_.peer_of(c);
        s->protocol = protocol;
        streams_[{c, *id}] = s;
        // The header leads the stream's bytes; a new stream's queue always has room for it.
        const byte_vector header = core::wire::encode_stream_header(protocol);
        [[maybe_unused]] const std::size_t taken = engine_.write_stream(c, *id, header);
        assert(taken == header.size());
        pump();  // the opening unit and the header: the peer's accept completes before any byte is written
      }
    }
    std::move(*shared)(ec, std::move(s));
  }), still_waiting(wait));
}

void node_driver::accept_stream(std::string protocol, std::uint64_t waiter, stream_handler handler) {
  if (stopped_) return std::move(handler)(make_error_code(errc::shutting_down), std::shared_ptr<stream_state>{});
  if (auto waiting = unaccepted_.find(protocol); waiting != unaccepted_.end() && !waiting->second.empty()) {
    auto s = std::move(waiting->second.front());
    waiting->second.pop_front();
    hand_over(s, std::move(handler));
    pump();
    return;
  }
  served_protocols_.insert(protocol);
  acceptors_waiting_[std::move(protocol)].push_back(waiting_acceptor{waiter, std::move(handler)});
}

void node_driver::cancel_accept(std::uint64_t waiter) {
  for (auto& [protocol, waiting] : acceptors_waiting_) {
    auto it = std::find_if(waiting.begin(), waiting.end(), [&](const waiting_acceptor& a) { return a.waiter == waiter; });
    if (it == waiting.end()) continue;
    auto handler = std::move(it->handler);
    waiting.erase(it);
    // The protocol stays served: its streams wait for the next accept.
    return std::move(handler)(boost::asio::error::operation_aborted, std::shared_ptr<stream_state>{});
  }
}

void node_driver::read_stream_header(const std::shared_ptr<stream_state>& s) {
  auto& header = *s->header;
  std::array<std::uint8_t, 1 + core::wire::max_stream_protocol> buffer;
  while (header.wanted() > 0) {
    // Exactly what the header still needs: the bytes after it are the acceptor's to read.
    const std::size_t n =
        engine_.read_stream(s->connection, s->id, mutable_byte_span(buffer.data(), header.wanted()));
    if (n == 0) {
      // The stream ended before its header did: malformed.
      if (engine_.stream_at_end(s->connection, s->id)) refuse_stream(s, core::stream_mux::reset_code::abandoned);
      return;
    }
    header.feed(byte_span(buffer.data(), n));
  }
  if (header.failed()) return refuse_stream(s, core::stream_mux::reset_code::abandoned);
  s->protocol = header.protocol();
  std::erase(headers_pending_, s);
  s->header.reset();
  route_stream(s);
}

void node_driver::route_stream(const std::shared_ptr<stream_state>& s) {
  if (auto waiting = acceptors_waiting_.find(s->protocol);
      waiting != acceptors_waiting_.end() && !waiting->second.empty()) {
    auto acceptor = std::move(waiting->second.front().handler);
    waiting->second.pop_front();
    return hand_over(s, std::move(acceptor));
  }
  // The default protocol is always served, so that a stream may be opened before its peer's
  // first accept; another waits only once someone asked for its protocol.
  if (!s->protocol.empty() && !served_protocols_.contains(s->protocol))
    return refuse_stream(s, core::stream_mux::reset_code::protocol_not_served);
  auto& waiting = unaccepted_[s->protocol];
  if (waiting.size() >= accept_backlog) return refuse_stream(s, core::stream_mux::reset_code::abandoned);
  waiting.push_back(s);
}

void node_driver::hand_over(const std::shared_ptr<stream_state>& s, stream_handler acceptor) {
  stop_awaiting_accept(*s);
  engine_.accept_stream(s->connection, s->id);  // within a pump: its window goes out with it
  std::move(acceptor)(boost::system::error_code{}, s);
}

void node_driver::refuse_stream(const std::shared_ptr<stream_state>& s, core::stream_mux::reset_code code) {
  stop_awaiting_accept(*s);
  streams_.erase({s->connection, s->id});
  engine_.reset_stream(s->connection, s->id, code);
}

void node_driver::stop_awaiting_accept(stream_state& s) {
  if (!s.awaiting_accept) return;
  s.awaiting_accept = false;
  auto is_s = [&](const auto& queued) { return queued.get() == &s; };
  if (s.header) std::erase_if(headers_pending_, is_s);
  else if (auto waiting = unaccepted_.find(s.protocol); waiting != unaccepted_.end())
    std::erase_if(waiting->second, is_s);
}

void node_driver::stream_read(const std::shared_ptr<stream_state>& s, std::vector<boost::asio::mutable_buffer> buffers,
                              std::uint64_t read, stream_io_handler handler) {
  if (!s) return handler(boost::asio::error::bad_descriptor, 0);  // the stream was closed
  if (s->read) throw std::logic_error("kadnet::stream: a read is already pending");
  s->read.emplace(stream_state::pending_read{read, std::move(buffers), std::move(handler)});
  try_read(*s);
  pump();
}

void node_driver::stream_write(const std::shared_ptr<stream_state>& s, byte_vector bytes, std::uint64_t write,
                               stream_io_handler handler) {
  if (!s) return handler(boost::asio::error::bad_descriptor, 0);  // the stream was closed
  if (s->write) throw std::logic_error("kadnet::stream: a write is already pending");
  s->write.emplace(stream_state::pending_write{write, std::move(bytes), std::move(handler)});
  try_write(*s);
  pump();
}

void node_driver::cancel_write(const std::shared_ptr<stream_state>& s, std::uint64_t write) {
  if (!s->write || s->write->id != write) return;  // completed already (this write or one before)
  auto handler = std::move(s->write->handler);
  s->write.reset();
  std::move(handler)(boost::asio::error::operation_aborted, 0);  // it waited for room: nothing taken
}

void node_driver::cancel_read(const std::shared_ptr<stream_state>& s, std::uint64_t read) {
  if (!s->read || s->read->id != read) return;  // completed already (this read or one before)
  auto handler = std::move(s->read->handler);
  s->read.reset();
  std::move(handler)(boost::asio::error::operation_aborted, 0);  // nothing read: no byte is lost
}

void node_driver::try_read(stream_state& s) {
  if (!s.read) return;
  std::size_t total = 0, wanted = 0;
  boost::system::error_code ec = s.failure;
  if (!ec) {
    for (const auto& b : s.read->buffers) {
      wanted += b.size();
      std::size_t n = engine_.read_stream(s.connection, s.id, mutable_byte_span(static_cast<std::uint8_t*>(b.data()), b.size()));
      total += n;
      if (n < b.size()) break;
    }
    if (total == 0 && wanted > 0) {
      if (!engine_.stream_at_end(s.connection, s.id)) return;  // nothing yet: wait for `readable`
      ec = boost::asio::error::eof;
    }
  }
  auto handler = std::move(s.read->handler);
  s.read.reset();
  std::move(handler)(ec, total);
}

void node_driver::try_write(stream_state& s) {
  if (!s.write) return;
  boost::system::error_code ec = s.failure;
  std::size_t n = 0;
  if (!ec && !s.write->bytes.empty()) {
    n = engine_.write_stream(s.connection, s.id, s.write->bytes);
    if (n == 0) return;  // the stream's queue is full: wait for `writable`
  }
  auto handler = std::move(s.write->handler);
  s.write.reset();
  std::move(handler)(ec, n);
}

void node_driver::fail_stream(stream_state& s, boost::system::error_code ec) {
  if (!s.failure) s.failure = ec;
  try_read(s);
  try_write(s);
}

void node_driver::stream_shutdown(const std::shared_ptr<stream_state>& s) {
  if (!s->failure) engine_.shutdown_stream(s->connection, s->id);
  pump();
}

void node_driver::stream_close(const std::shared_ptr<stream_state>& s) {
  if (s->closed_by_us) return;
  s->closed_by_us = true;
  if (!s->failure) engine_.close_stream(s->connection, s->id);
  fail_stream(*s, boost::asio::error::operation_aborted);
  pump();
}

void node_driver::stream_reset(const std::shared_ptr<stream_state>& s) {
  if (!s->failure) engine_.reset_stream(s->connection, s->id);
  fail_stream(*s, boost::asio::error::operation_aborted);
  pump();
}

void node_driver::on_stream_event(core::node_engine::event& ev) {
  using kind = core::stream_mux::event_kind;
  if (auto* down = std::get_if<core::node_engine::disconnected>(&ev)) {
    // The session ended: every stream on it fails with the session's reason. A TCP or WebSocket
    // connection's end of file is not a stream's: to a reader, eof means the peer ended the
    // stream and every byte arrived, so a connection that ended under it is connection_closed.
    const bool clean_end = !down->ec || down->ec == boost::asio::error::eof;
    const auto why = clean_end ? make_error_code(errc::connection_closed) : down->ec;
    for (auto it = streams_.lower_bound({down->connection, 0});
         it != streams_.end() && it->first.first == down->connection;) {
      auto s = it->second;
      it = streams_.erase(it);
      stop_awaiting_accept(*s);
      fail_stream(*s, why);
    }
    return;
  }
  auto* e = std::get_if<core::node_engine::stream_event>(&ev);
  if (!e) return;
  const std::pair key{e->connection, e->stream};
  if (e->kind == kind::opened) {
    auto s = std::make_shared<stream_state>();
    s->connection = e->connection;
    s->id = e->stream;
    s->peer = e->peer;
    s->header.emplace();
    s->awaiting_accept = true;
    streams_[key] = s;
    read_stream_header(s);  // usually whole already: it came with the opening unit
    if (!s->header || !streams_.contains(key)) return;  // routed or refused
    if (headers_pending_.size() >= max_headers_pending) {
      auto oldest = headers_pending_.front();  // refusing it takes it out of the queue
      refuse_stream(oldest, core::stream_mux::reset_code::abandoned);
    }
    headers_pending_.push_back(s);
    return;
  }
  auto it = streams_.find(key);
  if (it == streams_.end()) return;
  auto s = it->second;
  switch (e->kind) {
    case kind::readable:
      if (s->header) return read_stream_header(s);
      try_read(*s);
      break;
    case kind::writable: try_write(*s); break;
    case kind::failed:
      streams_.erase(it);
      stop_awaiting_accept(*s);
      // Refused for its protocol (the opener learns why), or reset.
      fail_stream(*s, e->ec == errc::protocol_not_served ? e->ec : boost::asio::error::connection_reset);
      break;
    case kind::closed:
      // Both directions ended and were read: anything still waiting sees the end.
      streams_.erase(it);
      stop_awaiting_accept(*s);
      fail_stream(*s, boost::asio::error::eof);
      break;
    case kind::opened: break;
  }
}

}  // namespace kadnet::transports
