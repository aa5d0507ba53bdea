#pragma once
// Reading and writing one file-transfer frame (core/wire/file_transfer.hpp) on a kadnet::stream,
// as coroutines on the stream's executor.
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include "kadnet/core/wire/file_transfer.hpp"
#include "kadnet/transports/stream.hpp"

namespace kadnet::transports {

// Both fail with boost::asio::error::operation_aborted on a stream that was closed or reset here.

// Reads one whole frame. Fails with boost::asio::error::eof when the stream ended cleanly before
// the frame's first byte, core::errc::truncated when it ended inside the frame, a decode error
// (core::errc) for a malformed frame, or the stream's error.
boost::asio::awaitable<boost::system::error_code> read_file_frame(stream& s, core::wire::file_message& out);

// Writes the whole frame of `m`.
boost::asio::awaitable<boost::system::error_code> write_file_frame(stream& s, const core::wire::file_message& m);

}  // namespace kadnet::transports
