#include "bindings/common/file_inbox.hpp"

#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace kadnet::bindings {

std::unique_ptr<file_receiver> receive_files(node& n, const std::optional<std::string>& inbox, file_done done) {
  file_receiver_settings settings;
  settings.policy = [](const file_offer_info&) {
    return file_decision::reject(core::wire::file_reject_code::not_accepting, "this node takes no files (it has no inbox)");
  };
  if (inbox) {
    std::error_code ec;
    std::filesystem::create_directories(*inbox, ec);
    if (ec || !std::filesystem::is_directory(*inbox))
      throw std::invalid_argument("inbox '" + *inbox + "' is not a folder that can be made" +
                                  (ec ? ": " + ec.message() : std::string()));
    settings.policy = [dir = std::filesystem::path(*inbox)](const file_offer_info&) { return file_decision::accept_into(dir); };
  }
  settings.on_done = [done = std::move(done)](const file_offer_info& offer, boost::system::error_code ec,
                                              const file_receive_result& result) {
    if (!done) return;
    const std::string why = ec ? ec.message() + (result.reason.empty() ? "" : ": " + result.reason) : "";
    done(offer.peer, offer.name, ec ? "" : result.path.string(), why);
  };
  auto receiver = std::make_unique<file_receiver>(n, std::move(settings));
  receiver->start();
  return receiver;
}

}  // namespace kadnet::bindings
