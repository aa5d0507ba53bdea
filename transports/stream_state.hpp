#pragma once
// What the driver and a kadnet::stream share about one byte stream: where it is (connection,
// stream id, peer), the one read and the one write that may be pending on it, and how it ended.
// Touched only on the node's strand.
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/buffer.hpp>

#include "kadnet/core/node_engine.hpp"
#include "kadnet/core/wire/stream_header.hpp"

namespace kadnet::transports {

using stream_io_handler = boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;

struct stream_state {
  core::connection_id connection = 0;
  core::stream_id id = 0;
  core::node_id peer;
  std::string protocol;  // what its opener named in its header (PROTOCOL.md 9.6)
  // A stream a peer opened: its header, while it is still arriving; and whether it waits to be
  // accepted (in the driver's queue of headers still arriving, or of its protocol's backlog).
  std::optional<core::wire::stream_header_reader> header;
  bool awaiting_accept = false;
  struct pending_read {
    std::uint64_t id;  // names it for node_driver::cancel_read
    std::vector<boost::asio::mutable_buffer> buffers;
    stream_io_handler handler;
  };
  struct pending_write {
    std::uint64_t id;   // names it for node_driver::cancel_write
    byte_vector bytes;  // gathered from the caller's buffers (at most one window's worth)
    stream_io_handler handler;
  };
  std::optional<pending_read> read;
  std::optional<pending_write> write;
  boost::system::error_code failure;  // set once the stream was reset or its session ended
  bool closed_by_us = false;
};

}  // namespace kadnet::transports
