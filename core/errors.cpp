#include "kadnet/core/errors.hpp"

#include <string>

namespace kadnet::core {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "kadnet"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::truncated: return "input truncated";
      case errc::bad_length: return "bad length field";
      case errc::trailing_bytes: return "trailing bytes after message";
      case errc::bad_version: return "unsupported protocol version";
      case errc::unknown_packet_type: return "unknown packet type";
      case errc::unknown_opcode: return "unknown opcode";
      case errc::bad_field: return "field value out of range";
      case errc::too_large: return "too large for the configured limit";
      case errc::bad_signature: return "bad signature";
      case errc::cookie_required: return "responder requires a cookie";
      case errc::bad_cookie: return "bad cookie";
      case errc::unexpected_identity: return "peer identity is not the expected NodeId";
      case errc::version_mismatch: return "protocol version mismatch";
      case errc::handshake_failed: return "handshake failed";
      case errc::decrypt_failed: return "packet failed authentication";
      case errc::replayed: return "replayed packet";
      case errc::timeout: return "request timed out";
      case errc::nack: return "peer answered NACK";
      case errc::unsupported_opcode: return "unsupported opcode";
      case errc::option_refused: return "connection option refused";
      case errc::handler_failed: return "remote handler failed";
      case errc::not_connected: return "not connected";
      case errc::connection_closed: return "connection closed";
      case errc::peer_cut_off: return "peer cut off for exceeding its limits";
      case errc::shutting_down: return "node shutting down";
      case errc::not_found: return "value not found";
      case errc::store_refused: return "no replica accepted the value";
      case errc::not_supported: return "not supported by this transport";
      case errc::too_many: return "too many open at once";
      case errc::receipt_mismatch: return "delivery receipt does not match the message sent";
      case errc::cas_conflict: return "the key is not at the expected version";
      case errc::no_quorum: return "no majority of the key's replicas answered";
      case errc::owned_key: return "compare-and-swap is for unowned keys; this one is owner-signed";
      case errc::locked: return "the key is locked by another node";
      case errc::not_lock_holder: return "this node does not hold the lock under that token";
      case errc::not_a_lock: return "the key holds a value that is not a lock record";
      case errc::protocol_not_served: return "the peer serves no stream of that protocol";
      case errc::own_id: return "that is this node's own id";
      case errc::peer_not_found: return "no node with that id could be found or reached";
      case errc::dht_disabled: return "this node runs without its DHT (dht_settings::enabled is false)";
    }
    return "unknown kadnet error " + std::to_string(value);
  }
};

}  // namespace

const boost::system::error_category& error_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace kadnet::core
