#pragma once
// Files for the bindings' nodes (the Python module, the C API): every stream a peer opens is a
// file transfer (PROTOCOL.md 9.7), accepted into an inbox folder or, with none, refused with a
// reason rather than left unanswered.
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "transports/file_receiver.hpp"

namespace kadnet::bindings {

// How one offer ended: `path` is where the file is stored (empty when it was not), `error` why
// not (empty when it was). Runs on the node's thread.
using file_done = std::function<void(const node_id& sender, const std::string& name, const std::string& path,
                                     const std::string& error)>;

// Starts taking the node's incoming streams as files. Makes `inbox` if missing; throws
// std::invalid_argument naming it when that fails. Destroy the receiver before stopping the node:
// no `done` runs after that.
std::unique_ptr<file_receiver> receive_files(node& n, const std::optional<std::string>& inbox, file_done done);

}  // namespace kadnet::bindings
