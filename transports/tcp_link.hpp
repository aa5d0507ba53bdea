#pragma once
// One TCP connection of a node: the bytes of its socket are the session's byte stream.
#include <array>
#include <cstdint>
#include <memory>

#include <boost/asio/ip/tcp.hpp>

#include "kadnet/transports/link.hpp"

namespace kadnet::transports {

class tcp_link final : public link, public std::enable_shared_from_this<tcp_link> {
 public:
  explicit tcp_link(boost::asio::ip::tcp::socket socket);

  void start(callbacks cb) override;
  std::size_t send(byte_vector bytes) override;
  void close_after_write() override;
  void close(boost::system::error_code why) override;
  std::size_t queued() const override { return pending_.size() + writing_.size(); }
  byte_vector remote_address_bytes() const override;
  std::string remote_text() const override;

 private:
  void read();
  void write();
  void finish(boost::system::error_code ec);

  boost::asio::ip::tcp::socket socket_;
  callbacks cb_;
  std::array<std::uint8_t, 64 * 1024> read_buffer_;
  byte_vector pending_, writing_;
  bool write_in_flight_ = false;
  bool close_after_write_ = false;
  bool finished_ = false;
};

// A connected socket's peer as 16-byte IPv6 (IPv4-mapped) ‖ 2-byte port (zeros when unknown),
// and as text for people ("?" when unknown).
byte_vector address_bytes_of_peer(const boost::asio::ip::tcp::socket& socket);
std::string text_of_peer(const boost::asio::ip::tcp::socket& socket);

}  // namespace kadnet::transports
