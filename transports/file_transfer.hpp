#pragma once
// Sending files to peers over kadnet byte streams (seed 001's file offer / accept / reject /
// chunked transfer; docs/PROTOCOL.md 9.7). One stream carries one file: the sender offers the
// name, size and BLAKE2b-256 of the whole file, the receiver accepts (saying how many bytes of it
// it already holds, so that an interrupted transfer resumes) or rejects with a reason, the sender
// streams the rest in chunks, and the receiver verifies the whole file before it gives the file
// its name and answers ok.
//
//   auto [ec, sent] = co_await kadnet::async_send_file(a, b_uri, "photo.jpg",
//       [](std::uint64_t done, std::uint64_t total) { /* progress */ },
//       boost::asio::as_tuple(boost::asio::use_awaitable));
//
// The receiving side is kadnet::file_receiver (transports/file_receiver.hpp, included here).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include "kadnet/core/wire/file_transfer.hpp"
#include "kadnet/transports/file_receiver.hpp"
#include "kadnet/transports/file_transfer_error.hpp"
#include "kadnet/transports/node.hpp"

namespace kadnet {

using core::wire::file_digest;

// Called on the node's strand with the bytes of the file done so far and its size: first with
// the offset the transfer starts from, then after each chunk; never decreasing, the last call
// says `total` unless the transfer failed. Must not block.
using file_progress = std::function<void(std::uint64_t done, std::uint64_t total)>;

// A sender whose receiver makes no progress (no answer, no room for the next chunk, no verdict)
// for this long gives up with core::errc::timeout.
inline constexpr std::chrono::seconds file_send_idle_timeout{120};

struct file_send_result {
  std::string name;                 // the name offered: the path's file name
  std::uint64_t size = 0;           // of the file
  file_digest digest{};             // BLAKE2b-256 of the whole file (zero until computed)
  std::uint64_t resumed_from = 0;   // bytes the receiver held already and were not sent again
  std::uint64_t bytes_sent = 0;     // bytes of the file sent on this transfer
  // With file_errc::rejected: the receiver's code and text.
  std::optional<core::wire::file_reject_code> reject_code;
  std::string reason;
};

namespace detail {
// Called exactly once with the outcome, on the node's strand or in the initiating call; it
// posts the application's handler (async_send_file's wrapper).
using send_file_done = boost::asio::any_completion_handler<void(boost::system::error_code, file_send_result)>;
void start_send_file(node& from, peer_ref to, std::filesystem::path path, file_progress progress,
                     send_file_done done);
}  // namespace detail

// Sends the file at `path` to a peer under its file name. Completes with the result once the
// receiver verified and stored the whole file, or with why not:
//   file_errc::bad_name         the file name cannot be offered (check_file_name; nothing is sent)
//   file_errc::not_a_file, errno values   the path cannot be read as a regular file
//   file_errc::size_unknown     a /proc or /sys file, or one that says it is empty and is not: its
//                               size is not known before it is read (nothing is sent)
//   file_errc::rejected         the receiver said no; result.reject_code and .reason say why
//   core::errc::protocol_not_served  the receiver takes no files at all (no file_receiver)
//   file_errc::digest_mismatch / size_mismatch / receiver_failed   the receiver's verdict
//   file_errc::file_changed     the file shrank while it was sent
//   file_errc::protocol_violation  the receiver broke the protocol
//   core::errc::timeout         the receiver made no progress for file_send_idle_timeout
//   the stream's errors         connection_reset, core::errc::timeout, errc::shutting_down, ...
// The node is used only while this call runs; the file is read on the node's strand, a slice
// at a time, and hashed once before the stream is opened.
template <typename Token>
auto async_send_file(node& from, peer_ref to, std::filesystem::path path, file_progress progress, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, file_send_result)>(
      [&from](auto handler, peer_ref to, std::filesystem::path path, file_progress progress) {
        auto ex = from.get_executor();
        auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, ex));
        detail::start_send_file(
            from, std::move(to), std::move(path), std::move(progress),
            [ex, h = std::move(handler), work = std::move(work)](boost::system::error_code ec,
                                                                 file_send_result r) mutable {
              detail::complete(std::move(h), ex, ec, std::move(r));
            });
      },
      token, std::move(to), std::move(path), std::move(progress));
}

}  // namespace kadnet
