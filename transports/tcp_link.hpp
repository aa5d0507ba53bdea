#pragma once
// One TCP connection of a node: reads into the node's engine and writes what the engine queues.
// Every handler runs on the node's strand; the link holds no protocol state.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/any_io_executor.hpp>

#include "core/bytes.hpp"

namespace kadnet::transports {

class tcp_link : public std::enable_shared_from_this<tcp_link> {
 public:
  using executor = boost::asio::strand<boost::asio::any_io_executor>;
  struct callbacks {
    std::function<void(byte_span)> on_bytes;
    std::function<void(boost::system::error_code)> on_closed;  // called once
  };

  explicit tcp_link(boost::asio::ip::tcp::socket socket);

  // Sets the callbacks and begins reading.
  void start(callbacks cb);
  // Queues bytes for writing; returns the bytes still queued (written ones excluded).
  std::size_t send(byte_vector bytes);
  // Closes once everything queued is written.
  void close_after_write();
  // Closes now, dropping what is queued.
  void close(boost::system::error_code why);
  std::size_t queued() const { return pending_.size() + writing_.size(); }
  // Source address as 16-byte IPv6 (IPv4-mapped) ‖ 2-byte port, for cookies.
  byte_vector remote_address_bytes() const;
  std::string remote_text() const;

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

}  // namespace kadnet::transports
