#pragma once
// kadnet's error codes for the protocol core. Expected failures (malformed peer input, timeouts,
// NACKs, refused options) travel as boost::system::error_code with this category; exceptions are
// kept for misuse and bad configuration at start-up.
#include <boost/system/error_code.hpp>

namespace kadnet::core {

enum class errc {
  truncated = 1,          // input ended before a field it announced
  bad_length,             // a length field disagrees with the data or exceeds its limit
  trailing_bytes,         // bytes left over after a complete message
  bad_version,            // the packet's protocol version is not one this node speaks
  unknown_packet_type,    // outer packet type not defined
  unknown_opcode,         // opcode reserved for kadnet but not defined (13..63)
  bad_field,              // a field holds a value outside its range
  too_large,              // a message exceeds the configured maximum size
  bad_signature,          // an Ed25519 signature does not verify
  cookie_required,        // the responder is under load and answered with a cookie challenge
  bad_cookie,             // the cookie is not one this node issued for that address recently
  unexpected_identity,    // the peer's key is not the NodeId the caller dialed
  version_mismatch,       // the peer refused our protocol version (or we refused theirs)
  handshake_failed,       // the handshake broke off for another reason
  decrypt_failed,         // AEAD authentication failed: altered or forged packet
  replayed,               // a packet counter seen before or too old
  timeout,                // a request got no reply in time
  nack,                   // the peer answered NACK (its code and text travel with the result)
  unsupported_opcode,     // the peer has no handler for the opcode
  option_refused,         // the peer NACKed a SET_CONNECTION_OPT
  handler_failed,         // the remote handler threw or failed
  not_connected,          // no session with that peer and no address to dial
  connection_closed,      // the session ended before the reply came
  peer_cut_off,           // the peer exceeded its limits and was disconnected
  shutting_down,          // the node is stopping
  not_found,              // a DHT lookup ended without finding the value
  store_refused,          // no replica accepted a STORE (each NACKed it; see its code)
  not_supported,          // the transport cannot do that (unreliable datagrams over a TCP session)
  too_many,               // a per-session limit is reached (open streams)
  receipt_mismatch,       // a WHISPER's receipt is not the hash of the bytes sent (PROTOCOL.md 5.7)
  cas_conflict,           // compare-and-swap: the key is not at the expected version (the result
                          // carries the current version and value)
  no_quorum,              // compare-and-swap: no majority of the key's replicas answered in time
  owned_key,              // compare-and-swap on an owner-signed key: it is for unowned keys only
  locked,                 // the key is locked by another node whose lease is live at the replicas
                          // (PROTOCOL.md 8.9); the result names the holder
  not_lock_holder,        // renew or unlock by a node that does not hold the lock under that token
  not_a_lock,             // a lock operation on a key that holds a value other than a lock record
  protocol_not_served,    // the peer accepts no byte stream of that protocol (PROTOCOL.md 9.6)
  own_id,                 // a call, ping, stream or whisper addressed to this node's own id
  peer_not_found,         // no node with that id was found in the DHT, or none could reach it
  dht_disabled,           // a DHT operation (or a shout) on a node made without its DHT
};

const boost::system::error_category& error_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace kadnet::core

template <>
struct boost::system::is_error_code_enum<kadnet::core::errc> : std::true_type {};
