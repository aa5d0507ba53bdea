#include "kadnet/transports/tcp_link.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>

#include "kadnet/core/errors.hpp"

namespace kadnet::transports {

namespace asio = boost::asio;

tcp_link::tcp_link(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {
  boost::system::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
}

void tcp_link::start(callbacks cb) {
  cb_ = std::move(cb);
  read();
}

void tcp_link::read() {
  socket_.async_read_some(asio::buffer(read_buffer_),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                            if (self->finished_) return;
                            if (ec) return self->finish(ec);
                            self->cb_.on_bytes(byte_span(self->read_buffer_.data(), n));
                            if (!self->finished_) self->read();
                          });
}

std::size_t tcp_link::send(byte_vector bytes) {
  if (finished_ || bytes.empty()) return queued();
  if (pending_.empty()) pending_ = std::move(bytes);
  else pending_.insert(pending_.end(), bytes.begin(), bytes.end());
  if (!write_in_flight_) write();
  return queued();
}

void tcp_link::write() {
  if (pending_.empty()) {
    if (close_after_write_) finish(core::errc::connection_closed);
    return;
  }
  writing_.swap(pending_);
  pending_.clear();
  write_in_flight_ = true;
  asio::async_write(socket_, asio::buffer(writing_),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->write_in_flight_ = false;
                      self->writing_.clear();
                      if (self->finished_) return;
                      if (ec) return self->finish(ec);
                      self->write();
                    });
}

void tcp_link::close_after_write() {
  close_after_write_ = true;
  if (!write_in_flight_) write();
}

void tcp_link::close(boost::system::error_code why) { finish(why); }

void tcp_link::finish(boost::system::error_code ec) {
  if (finished_) return;
  finished_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  pending_.clear();
  if (cb_.on_closed) cb_.on_closed(ec);
}

byte_vector tcp_link::remote_address_bytes() const { return address_bytes_of_peer(socket_); }

std::string tcp_link::remote_text() const { return text_of_peer(socket_); }

byte_vector address_bytes_of_peer(const asio::ip::tcp::socket& socket) {
  boost::system::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  byte_vector out(18, 0);
  if (ec) return out;
  auto v6 = ep.address().is_v4()
                ? asio::ip::make_address_v6(asio::ip::v4_mapped, ep.address().to_v4())
                : ep.address().to_v6();
  auto b = v6.to_bytes();
  std::copy(b.begin(), b.end(), out.begin());
  out[16] = static_cast<std::uint8_t>(ep.port() >> 8);
  out[17] = static_cast<std::uint8_t>(ep.port());
  return out;
}

std::string text_of_peer(const asio::ip::tcp::socket& socket) {
  boost::system::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace kadnet::transports
