#include "bindings/common/files.hpp"

#include <fstream>
#include <stdexcept>
#include <system_error>

#include "kadnet/transports/wait_for.hpp"

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

namespace {

[[noreturn]] void refuse_to_send(const std::string& path, const std::string& why) {
  throw std::invalid_argument("cannot send '" + path + "': " + why);
}

}  // namespace

void check_sendable(const std::string& path) {
  auto refuse = [&](const std::string& why) { refuse_to_send(path, why); };
  std::error_code local;
  const auto status = fs::status(path, local);
  if (local) refuse(local.message());
  if (!fs::is_regular_file(status)) refuse("not a regular file");
  if (!std::ifstream(path, std::ios::binary)) refuse("it cannot be read");
  const std::string name = fs::path(path).filename().string();
  if (auto problem = core::wire::check_file_name(name); problem != core::wire::file_name_problem::none)
    refuse("its name '" + name + "' " + core::wire::describe(problem));
}

void throw_if_refused_locally(const std::string& path, const boost::system::error_code& ec) {
  // What changed between check_sendable and the send's own checks.
  if (ec == file_errc::bad_name || ec == file_errc::not_a_file || ec == file_errc::size_unknown)
    refuse_to_send(path, ec.message());
}

std::pair<boost::system::error_code, file_send_result> send_file(node& from, const transports::peer_ref& to,
                                                                  const std::string& path) {
  check_sendable(path);
  auto [ec, sent] = transports::wait_for<boost::system::error_code, file_send_result>(
      [&](auto done) { async_send_file(from, to, path, {}, done); });
  throw_if_refused_locally(path, ec);
  return {ec, std::move(sent)};
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
