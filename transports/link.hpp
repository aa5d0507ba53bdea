#pragma once
// One byte-stream connection of a node (TCP, or WebSocket over TCP): reads into the node's
// engine and writes what the engine queues. Every handler runs on the node's strand; a link
// holds no protocol state, so the engine sees the same byte stream over either.
#include <functional>
#include <memory>
#include <string>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"

namespace kadnet::transports {

class link {
 public:
  struct callbacks {
    std::function<void(byte_span)> on_bytes;
    std::function<void(boost::system::error_code)> on_closed;  // called once
  };

  virtual ~link() = default;
  // Sets the callbacks and begins reading.
  virtual void start(callbacks cb) = 0;
  // Queues bytes for writing; returns the bytes still queued (written ones excluded).
  virtual std::size_t send(byte_vector bytes) = 0;
  // Closes once everything queued is written.
  virtual void close_after_write() = 0;
  // Closes now, dropping what is queued.
  virtual void close(boost::system::error_code why) = 0;
  virtual std::size_t queued() const = 0;
  // Source address as 16-byte IPv6 (IPv4-mapped) ‖ 2-byte port, for cookies.
  virtual byte_vector remote_address_bytes() const = 0;
  virtual std::string remote_text() const = 0;
};

}  // namespace kadnet::transports
