#pragma once
// Why a file transfer (transports/file_transfer.hpp, PROTOCOL.md 9.7) failed, beyond the stream's
// own errors (connection_reset, core::errc::timeout, ...) and the file system's (errno values in
// boost::system::system_category).
#include <boost/system/error_code.hpp>

namespace kadnet {

enum class file_errc {
  rejected = 1,        // the receiver rejected the offer; the result carries its code and text
  bad_name,            // the name cannot be offered or stored (core::wire::check_file_name)
  not_a_file,          // the path to send is not a regular file
  too_large,           // the offer exceeds the receiver's size limit
  size_mismatch,       // the stream ended before the offered size arrived
  digest_mismatch,     // the bytes that arrived do not have the offered BLAKE2b-256
  protocol_violation,  // the peer sent a malformed frame, one out of order, or more bytes than offered
  receiver_failed,     // the receiver could not store the file (its verdict said io_error)
  file_changed,        // the file being sent shrank while it was read
  stopped,             // the receiver was destroyed while the transfer ran
  size_unknown,        // a /proc or /sys file, or one that says it is empty and is not: size unknown
};

const boost::system::error_category& file_error_category() noexcept;

inline boost::system::error_code make_error_code(file_errc e) noexcept {
  return {static_cast<int>(e), file_error_category()};
}

}  // namespace kadnet

template <>
struct boost::system::is_error_code_enum<kadnet::file_errc> : std::true_type {};
