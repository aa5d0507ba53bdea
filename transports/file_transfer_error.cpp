#include "kadnet/transports/file_transfer_error.hpp"

#include <string>

namespace kadnet {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "kadnet.file"; }

  std::string message(int value) const override {
    switch (static_cast<file_errc>(value)) {
      case file_errc::rejected: return "the receiver rejected the file";
      case file_errc::bad_name: return "the file name cannot be used";
      case file_errc::not_a_file: return "not a regular file";
      case file_errc::too_large: return "the file exceeds the size limit";
      case file_errc::size_mismatch: return "fewer bytes arrived than the offer announced";
      case file_errc::digest_mismatch: return "the file arrived with another BLAKE2b-256 than offered";
      case file_errc::protocol_violation: return "the peer broke the file transfer protocol";
      case file_errc::receiver_failed: return "the receiver could not store the file";
      case file_errc::file_changed: return "the file changed while it was sent";
      case file_errc::size_unknown:
        return "its size is not known before it is read (a /proc or /sys file?); copy it to a regular file first";
      case file_errc::stopped: return "the file receiver stopped";
    }
    return "unknown file transfer error";
  }
};

}  // namespace

const boost::system::error_category& file_error_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace kadnet
