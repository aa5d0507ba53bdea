#include "kadnet/dht/value_store.hpp"

namespace kadnet::dht {

value_store::~value_store() = default;

core::wire::nack_code to_nack(put_result r) {
  using core::wire::nack_code;
  switch (r) {
    case put_result::stored:
    case put_result::refreshed: return nack_code::unspecified;
    case put_result::version_conflict: return nack_code::version_conflict;
    case put_result::bad_signature:
    case put_result::owner_mismatch:
    case put_result::bad_patch: return nack_code::bad_request;
    case put_result::too_large: return nack_code::too_large;
    case put_result::quota_full: return nack_code::quota_full;
    case put_result::storage_failed: return nack_code::handler_failed;
  }
  return nack_code::unspecified;
}

std::string_view nack_text(put_result r) {
  switch (r) {
    case put_result::stored: return "stored";
    case put_result::refreshed: return "refreshed";
    case put_result::version_conflict: return "version not newer than the one held";
    case put_result::bad_signature: return "owner signature does not verify";
    case put_result::owner_mismatch: return "key held by another owner (or unowned)";
    case put_result::too_large: return "value larger than this node accepts";
    case put_result::quota_full: return "storage quota full";
    case put_result::storage_failed: return "value storage failed";
    case put_result::bad_patch: return "diff does not apply to the version held";
  }
  return "unknown";
}

core::wire::nack make_nack(put_result r) {
  core::wire::nack n;
  n.request_opcode = static_cast<std::uint8_t>(core::wire::opcode::store);
  n.code = to_nack(r);
  n.text = std::string(nack_text(r));
  return n;
}

}  // namespace kadnet::dht
