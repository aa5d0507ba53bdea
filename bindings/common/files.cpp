#include "bindings/common/files.hpp"

#include <fstream>
#include <stdexcept>
#include <system_error>

namespace kadnet::bindings {

namespace fs = std::filesystem;

fs::path prepare_inbox(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw std::invalid_argument("inbox '" + dir + "' is not a folder that can be made" +
                                (ec ? ": " + ec.message() : std::string()));
  return fs::absolute(dir);
}

void check_sendable(const std::string& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec) throw std::invalid_argument("cannot send '" + path + "': " + ec.message());
  if (!fs::is_regular_file(status)) throw std::invalid_argument("cannot send '" + path + "': not a regular file");
  if (!std::ifstream(path, std::ios::binary)) throw std::invalid_argument("cannot send '" + path + "': it cannot be read");
}

file_inbox::file_inbox(node& n, std::optional<fs::path> dir, file_done done)
    : directory_(std::make_shared<directory>()) {
  directory_->path = std::move(dir);
  file_receiver_settings settings;
  settings.policy = [d = directory_](const file_offer_info&) {
    std::lock_guard lock(d->mutex);
    if (!d->path)
      return file_decision::reject(core::wire::file_reject_code::not_accepting, "this node takes no files (it has no inbox)");
    return file_decision::accept_into(*d->path);
  };
  settings.on_done = [done = std::move(done)](const file_offer_info& offer, boost::system::error_code ec,
                                              const file_receive_result& result) {
    if (!done) return;
    const std::string why = ec ? ec.message() + (result.reason.empty() ? "" : ": " + result.reason) : "";
    done(offer.peer, offer.name, ec ? "" : result.path.string(), why);
  };
  receiver_ = std::make_unique<file_receiver>(n, std::move(settings));
  receiver_->start();
}

file_inbox::~file_inbox() = default;

void file_inbox::set_directory(std::optional<fs::path> dir) {
  std::lock_guard lock(directory_->mutex);
  directory_->path = std::move(dir);
}

}  // namespace kadnet::bindings
