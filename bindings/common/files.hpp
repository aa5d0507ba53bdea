#pragma once
// Files for the bindings' nodes (the Python module, the C API): every file transfer a peer starts
// (a stream of protocol "kadnet/file", PROTOCOL.md 9.7) is accepted into an inbox folder or, with
// none, refused with a reason rather than left unanswered; and sending one, with local problems
// told apart.
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "kadnet/transports/file_transfer.hpp"

namespace kadnet::bindings {

// Makes `dir` if missing and returns its absolute path (files land there whatever the working
// directory later is). Throws std::invalid_argument naming it when that fails.
std::filesystem::path prepare_inbox(const std::string& dir);

// Throws std::invalid_argument naming `path` unless it is a regular file this process can read
// whose name can be offered (the checks send_file makes before it sends).
void check_sendable(const std::string& path);
// Throws std::invalid_argument naming `path` when a send's error is a local refusal (the file or
// its name) rather than anything the peer said.
void throw_if_refused_locally(const std::string& path, const boost::system::error_code& ec);

// Sends the file at `path` to `to` and waits for the outcome (not from the node's own thread).
// A local problem — not a regular file this process can read, or a name that cannot be offered
// — throws std::invalid_argument naming the path, told apart from anything the peer says,
// which comes back as the error (with the receiver's reason in the result).
std::pair<boost::system::error_code, file_send_result> send_file(node& from, const transports::peer_ref& to,
                                                                  const std::string& path);

// How one incoming transfer ended: `name` as the peer offered it (empty when the stream ended
// before an offer), `path` where the file is stored (empty when it was not), `error` why not
// (empty when it was). Runs on the node's thread.
using file_done = std::function<void(const node_id& sender, const std::string& name, const std::string& path,
                                     const std::string& error)>;

// Takes every file transfer peers start with the node, from any peer, with the
// library's limits (file_receiver_settings: 16 at once, 1 TiB each, 120 s idle).
class file_inbox {
 public:
  // `dir` from prepare_inbox, or none (offers are refused).
  file_inbox(node& n, std::optional<std::filesystem::path> dir, file_done done);
  // No `done` runs after it. Destroy it before the node stops.
  ~file_inbox();
  file_inbox(const file_inbox&) = delete;
  file_inbox& operator=(const file_inbox&) = delete;

  // Where offers from now on go (none: refused).
  void set_directory(std::optional<std::filesystem::path> dir);

 private:
  struct directory {
    std::mutex mutex;
    std::optional<std::filesystem::path> path;
  };
  std::shared_ptr<directory> directory_;
  std::unique_ptr<file_receiver> receiver_;
};

}  // namespace kadnet::bindings
