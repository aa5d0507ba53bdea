#pragma once
// A hand-driven peer for hostile-input tests: a blocking loopback socket plus, when wanted, a
// kadnet session run by hand — so a test can send garbage, half a hello, a wrong version, a
// tampered sealed packet, or requests it never reads the answers to.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "kadnet/core/session.hpp"
#include "kadnet/core/wire/message.hpp"
#include "kadnet/transports/uri.hpp"

namespace kadnet::testing {

class raw_peer {
 public:
  explicit raw_peer(const transports::uri& where) : socket_(io_) {
    socket_.connect({boost::asio::ip::make_address(where.host), where.port});
  }

  void send_raw(byte_span bytes) { boost::asio::write(socket_, boost::asio::buffer(bytes.data(), bytes.size())); }

  // Reads until the peer closes; returns everything read (bounded by `limit`).
  byte_vector read_until_closed(std::size_t limit = 1 << 20) {
    byte_vector all;
    std::array<std::uint8_t, 4096> buf;
    boost::system::error_code ec;
    while (all.size() < limit) {
      std::size_t n = socket_.read_some(boost::asio::buffer(buf), ec);
      if (ec) break;
      all.insert(all.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    }
    return all;
  }

  // Runs the handshake as initiator with a real session; true once established.
  bool handshake(const core::identity& self) {
    session_.emplace(core::session::dial(self, {}, std::nullopt, {}));
    flush();
    while (!session_->is_established() && !session_->is_failed()) {
      if (!receive_some()) return false;
      flush();
    }
    while (session_->poll_event()) {
    }
    return session_->is_established();
  }

  // Seals an opcode message and returns the bytes that would go out (not sent).
  byte_vector seal(const core::wire::message& m) {
    byte_vector encoded;
    core::wire::encode(m, encoded);
    session_->send(encoded, std::nullopt);
    return session_->take_transmit();
  }

  // Reads and decodes the next opcode message from the node.
  std::optional<core::wire::message> next_message() {
    for (;;) {
      while (auto ev = session_->poll_event()) {
        if (auto* m = std::get_if<core::session::message>(&*ev)) {
          core::wire::message out;
          if (!core::wire::decode(m->bytes, out)) return out;
        }
      }
      if (session_->is_failed() || !receive_some()) return std::nullopt;
    }
  }

  // True when the node closed the connection (read returns EOF or reset).
  bool closed_by_peer() {
    std::array<std::uint8_t, 4096> buf;
    boost::system::error_code ec;
    for (;;) {
      socket_.read_some(boost::asio::buffer(buf), ec);
      if (ec) return true;
    }
  }

  void shutdown_send() {
    boost::system::error_code ignored;
    socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
  }

 private:
  void flush() {
    auto out = session_->take_transmit();
    if (!out.empty()) send_raw(out);
  }
  bool receive_some() {
    std::array<std::uint8_t, 65536> buf;
    boost::system::error_code ec;
    std::size_t n = socket_.read_some(boost::asio::buffer(buf), ec);
    if (ec) return false;
    session_->handle_bytes(byte_span(buf.data(), n), 0);
    return true;
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  std::optional<core::session> session_;
};

}  // namespace kadnet::testing
