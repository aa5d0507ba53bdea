#include "kadnet/transports/ws_link.hpp"

#include <algorithm>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "kadnet/core/errors.hpp"
#include "kadnet/transports/tcp_link.hpp"

namespace kadnet::transports {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using boost::system::error_code;

constexpr std::string_view subprotocol = "kadnet";
constexpr std::size_t max_request_header = 8 * 1024;
constexpr std::size_t retained_read_buffer = 16 * 1024;

// Whether a Sec-WebSocket-Protocol value (a comma-separated list) names `wanted`.
bool lists_protocol(beast::string_view header, std::string_view wanted) {
  while (!header.empty()) {
    auto comma = header.find(',');
    auto item = header.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == wanted) return true;
    if (comma == beast::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

class ws_link final : public link, public std::enable_shared_from_this<ws_link> {
 public:
  ws_link(asio::ip::tcp::socket socket, const websocket_limits& limits)
      : ws_(std::move(socket)), limits_(limits) {
    boost::system::error_code ignored;
    beast::get_lowest_layer(ws_).socket().set_option(asio::ip::tcp::no_delay(true), ignored);
    ws_.read_message_max(limits_.max_message);
    ws_.auto_fragment(false);  // one frame per message: the session frames its own packets
    ws_.binary(true);
  }

  void accept(websocket_ready ready) {
    ready_ = std::move(ready);
    request_.header_limit(max_request_header);
    request_.body_limit(0);
    beast::get_lowest_layer(ws_).expires_after(limits_.handshake_timeout);
    http::async_read(ws_.next_layer(), read_buffer_, request_, [self = shared_from_this()](error_code ec, std::size_t) {
      if (self->finished_) return;
      if (ec) return self->opening_failed(ec);
      self->on_request();
    });
  }

  void dial(const std::string& host, websocket_ready ready) {
    ready_ = std::move(ready);
    use_websocket_timeouts(beast::role_type::client);
    ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
      req.set(http::field::sec_websocket_protocol, subprotocol);
      req.set(http::field::user_agent, "kadnet");
    }));
    ws_.async_handshake(response_, host, "/", [self = shared_from_this()](error_code ec) {
      if (self->finished_) return;
      if (!ec && self->response_[http::field::sec_websocket_protocol] != subprotocol) ec = core::errc::handshake_failed;
      if (ec) return self->opening_failed(ec);
      self->opened();
    });
  }

  void start(callbacks cb) override {
    cb_ = std::move(cb);
    read();
  }

  std::size_t send(byte_vector bytes) override {
    if (finished_ || bytes.empty()) return queued();
    if (pending_.empty()) pending_ = std::move(bytes);
    else pending_.insert(pending_.end(), bytes.begin(), bytes.end());
    if (!write_in_flight_) write();
    return queued();
  }

  void close_after_write() override {
    close_after_write_ = true;
    if (!write_in_flight_) write();
  }

  void close(error_code why) override { finish(why); }
  std::size_t queued() const override { return pending_.size() + writing_.size(); }
  byte_vector remote_address_bytes() const override { return address_bytes_of_peer(socket()); }
  std::string remote_text() const override { return "ws " + text_of_peer(socket()); }

 private:
  const asio::ip::tcp::socket& socket() const { return ws_.next_layer().socket(); }

  void use_websocket_timeouts(beast::role_type role) {
    // Beast's own timer from here on (the tcp_stream's must not run beside it): the opening and
    // closing handshakes are bounded; an idle link is the session's business (its keepalives).
    beast::get_lowest_layer(ws_).expires_never();
    auto timeouts = websocket::stream_base::timeout::suggested(role);
    timeouts.handshake_timeout = limits_.handshake_timeout;
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
  }

  void on_request() {
    const auto& req = request_.get();
    if (!websocket::is_upgrade(req)) return refuse_plain_http(req.version());
    const bool wants_kadnet = lists_protocol(req[http::field::sec_websocket_protocol], subprotocol);
    use_websocket_timeouts(beast::role_type::server);
    ws_.set_option(websocket::stream_base::decorator([wants_kadnet](websocket::response_type& res) {
      if (wants_kadnet) res.set(http::field::sec_websocket_protocol, subprotocol);
      res.set(http::field::server, "kadnet");
    }));
    ws_.async_accept(req, [self = shared_from_this()](error_code ec) {
      if (self->finished_) return;
      if (ec) return self->opening_failed(ec);
      self->opened();
    });
  }

  // Someone browsed to the port: tell them what it is, then close.
  void refuse_plain_http(unsigned version) {
    auto res = std::make_shared<http::response<http::string_body>>(http::status::upgrade_required, version);
    res->set(http::field::server, "kadnet");
    res->set(http::field::upgrade, "websocket");
    res->set(http::field::content_type, "text/plain");
    res->keep_alive(false);
    res->body() = "This is a kadnet node's WebSocket transport (ws://).\n";
    res->prepare_payload();
    http::async_write(ws_.next_layer(), *res, [self = shared_from_this(), res](error_code ec, std::size_t) {
      if (self->finished_) return;
      self->opening_failed(ec ? ec : make_error_code(core::errc::handshake_failed));
    });
  }

  void opened() {
    read_buffer_.clear();
    auto ready = std::move(ready_);
    ready_ = nullptr;
    ready({}, shared_from_this());
  }

  void opening_failed(error_code ec) { finish(ec); }

  void read() {
    ws_.async_read(read_buffer_, [self = shared_from_this()](error_code ec, std::size_t) {
      if (self->finished_) return;
      // The peer's close frame ends the link as a TCP peer's FIN does.
      if (ec == websocket::error::closed) ec = asio::error::eof;
      if (ec) return self->finish(ec);
      // Text has no meaning here: a peer that sends it does not speak this transport.
      if (!self->ws_.got_binary()) return self->finish(core::errc::bad_field);
      auto data = self->read_buffer_.cdata();
      self->cb_.on_bytes(byte_span(static_cast<const std::uint8_t*>(data.data()), data.size()));
      self->read_buffer_.clear();
      // An idle link should not keep a large message's room (thousands of sessions may be open).
      if (self->read_buffer_.capacity() > retained_read_buffer) self->read_buffer_.shrink_to_fit();
      if (!self->finished_) self->read();
    });
  }

  void write() {
    if (pending_.empty()) {
      if (close_after_write_) closing_handshake();
      return;
    }
    // At most max_message bytes per message: the peer refuses larger ones.
    if (pending_.size() <= limits_.max_message) {
      writing_.swap(pending_);
      pending_.clear();
    } else {
      writing_.assign(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(limits_.max_message));
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(limits_.max_message));
    }
    write_in_flight_ = true;
    ws_.async_write(asio::buffer(writing_), [self = shared_from_this()](error_code ec, std::size_t) {
      self->write_in_flight_ = false;
      self->writing_.clear();
      if (self->finished_) return;
      if (ec) return self->finish(ec);
      self->write();
    });
  }

  void closing_handshake() {
    if (close_sent_) return;
    close_sent_ = true;
    ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](error_code) {
      self->finish(core::errc::connection_closed);
    });
  }

  void finish(error_code ec) {
    if (finished_) return;
    finished_ = true;
    auto& socket = beast::get_lowest_layer(ws_).socket();
    error_code ignored;
    socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    pending_.clear();
    // Closed before the opening handshake ended (it failed, or the node stops): say so.
    if (ready_) {
      auto ready = std::move(ready_);
      ready_ = nullptr;
      ready(ec, shared_from_this());
    }
    if (cb_.on_closed) cb_.on_closed(ec);
  }

  websocket::stream<beast::tcp_stream> ws_;
  websocket_limits limits_;
  websocket_ready ready_;
  http::request_parser<http::empty_body> request_;
  websocket::response_type response_;
  callbacks cb_;
  beast::flat_buffer read_buffer_;
  byte_vector pending_, writing_;
  bool write_in_flight_ = false;
  bool close_after_write_ = false;
  bool close_sent_ = false;
  bool finished_ = false;
};

}  // namespace

std::shared_ptr<link> accept_websocket(asio::ip::tcp::socket socket, const websocket_limits& limits,
                                       websocket_ready ready) {
  auto l = std::make_shared<ws_link>(std::move(socket), limits);
  l->accept(std::move(ready));
  return l;
}

std::shared_ptr<link> dial_websocket(asio::ip::tcp::socket socket, const std::string& host,
                                     const websocket_limits& limits, websocket_ready ready) {
  auto l = std::make_shared<ws_link>(std::move(socket), limits);
  l->dial(host, std::move(ready));
  return l;
}

}  // namespace kadnet::transports
