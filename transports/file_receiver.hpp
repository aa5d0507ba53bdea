#pragma once
// The receiving side of file transfers (docs/PROTOCOL.md 9.7; the sender is async_send_file in
// transports/file_transfer.hpp). For each offer a policy decides: reject with a reason, or accept
// into a directory. An accepted file is written to DIR/NAME.part; a partial file left there by an
// interrupted transfer is resumed when its bytes are a prefix of the offered file (the sender
// checks its BLAKE2b-256). Only once every byte arrived and the BLAKE2b-256 of the whole file
// matches the offer is NAME.part renamed to NAME, and then the sender is told ok.
//
//   kadnet::file_receiver_settings settings;
//   settings.policy = [](const kadnet::file_offer_info&) { return kadnet::file_decision::accept_into("inbox"); };
//   settings.on_done = [](const kadnet::file_offer_info& f, boost::system::error_code ec,
//                         const kadnet::file_receive_result& r) { /* r.path */ };
//   kadnet::file_receiver receiver(node, std::move(settings));
//   receiver.start();  // every file transfer peers start with `node` is taken
//
// File transfers are the streams of protocol "kadnet/file" (core::wire::file_stream_protocol,
// PROTOCOL.md 9.6): start() accepts all of them. An application may instead accept them itself
// and pass them to handle().
//
// Peer input is bounded: names are checked (check_file_name) and never leave the directory,
// sizes are capped, at most max_transfers run at once, and a sender that sends a malformed frame,
// a frame out of order or more bytes than it offered is cut off (its stream reset) and its
// partial file removed. A transfer cut by the network keeps its partial file for a resume.
//
// The callbacks run on the node's strand, one at a time; they must not block, nor destroy the
// receiver. After the destructor returns none runs again; transfers still running are cut off
// at their next chunk (partial files kept). The node must outlive the receiver.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/system/error_code.hpp>

#include "kadnet/core/node_id.hpp"
#include "kadnet/core/wire/file_transfer.hpp"
#include "kadnet/transports/file_transfer_error.hpp"
#include "kadnet/transports/node.hpp"

namespace kadnet {

// What a peer offered.
struct file_offer_info {
  core::node_id peer;
  std::string name;  // as offered: check_file_name may refuse it (empty when the offer was malformed)
  std::uint64_t size = 0;
  core::wire::file_digest digest{};
};

// The policy's answer to an offer.
struct file_decision {
  bool accept = false;
  std::filesystem::path directory;  // with accept: where NAME.part and then NAME go (must exist)
  core::wire::file_reject_code code = core::wire::file_reject_code::declined;
  std::string reason;  // with a rejection: text for the sender's user (UTF-8; cut at 255 bytes)

  static file_decision accept_into(std::filesystem::path directory) {
    file_decision d;
    d.accept = true;
    d.directory = std::move(directory);
    return d;
  }
  static file_decision reject(core::wire::file_reject_code code, std::string reason) {
    file_decision d;
    d.code = code;
    d.reason = std::move(reason);
    return d;
  }
};

struct file_receive_result {
  std::filesystem::path path;       // where the file is stored (empty before a directory was chosen)
  std::uint64_t resumed_from = 0;   // bytes a partial file held already
  std::uint64_t bytes_received = 0; // bytes of the file received on this transfer
  // When this side rejected the offer (file_errc::rejected, bad_name, too_large): what it said.
  std::optional<core::wire::file_reject_code> reject_code;
  std::string reason;
};

struct file_receiver_settings {
  std::uint64_t max_size = std::uint64_t{1} << 40;  // larger offers are rejected (too_large)
  std::size_t max_transfers = 16;                    // at once; beyond, offers are rejected (busy)
  // A sender that sends nothing for this long (no offer, no start, no chunk, no end) is cut off
  // with core::errc::timeout; its partial file is kept for a resume. Zero: no limit.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(120)};
  // Decides each offer whose name and size passed the checks above. Without a policy every offer
  // is rejected with not_accepting.
  std::function<file_decision(const file_offer_info&)> policy;
  // Bytes of the file held so far: first the resume offset, then after each chunk.
  std::function<void(const file_offer_info&, std::uint64_t done)> on_progress;
  // Once per stream: the file is stored (ec clear), or why not —
  //   file_errc::rejected, bad_name, too_large   this side rejected the offer (see result)
  //   file_errc::protocol_violation              the sender was cut off (partial file removed)
  //   file_errc::size_mismatch, digest_mismatch  the bytes were not the offered file (removed)
  //   errno values                               the file could not be written (removed)
  //   core::errc::timeout                        the sender stalled (idle_timeout); partial file kept
  //   the stream's errors (connection_reset, errc::connection_closed, ...)   the partial file is kept
  std::function<void(const file_offer_info&, boost::system::error_code, const file_receive_result&)> on_done;
};

class file_receiver {
 public:
  file_receiver(node& n, file_receiver_settings settings);
  ~file_receiver();
  file_receiver(const file_receiver&) = delete;
  file_receiver& operator=(const file_receiver&) = delete;

  // Accepts every stream of the file protocol peers open to the node, until the node stops.
  // Call at most once.
  void start();
  // Takes one stream (accepted by the application) as an incoming file transfer.
  void handle(stream s);

  struct state;  // shared with the transfers' coroutines (file_receiver.cpp)

 private:
  node& node_;
  std::shared_ptr<state> state_;
};

}  // namespace kadnet
