#pragma once
// Settings of a node's protocol engine. validate() is called at start-up and throws
// std::invalid_argument naming the first bad value.
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "kadnet/compression/codec.hpp"
#include "kadnet/core/envelope.hpp"
#include "kadnet/core/session.hpp"

namespace kadnet::core {

// zstd, snappy, zlib. (Out of line: GCC 12 warns of a maybe-uninitialized array where an
// initializer list of enums is inlined into every node_config.)
std::vector<compression::codec_id> default_compression_methods();

struct node_config {
  // How long a request waits for its ACK/NACK before it fails with errc::timeout.
  std::chrono::milliseconds request_timeout{5000};
  // The longest any of the timeouts here may be (their deadlines are counted in nanoseconds).
  static constexpr std::chrono::milliseconds max_timeout{std::chrono::hours(24)};
  // How long a new session may take to complete its handshake.
  std::chrono::milliseconds handshake_timeout{5000};
  // Largest opcode message accepted or sent, after decompression.
  std::size_t max_message_size = (1u << 20) + 1024;
  // Requests a peer may have waiting on our handlers at once; more are NACKed rate_limited.
  std::size_t max_inbound_requests_per_peer = 256;
  // How long a plugin handler may take to reply. Past it the request is NACKed handler_failed
  // and its place among max_inbound_requests_per_peer is free again (a handler that never
  // replies would otherwise lock its caller out for good); a reply after that is dropped.
  std::chrono::milliseconds handler_timeout{60000};
  // ℓ (seed 003): sessions this node dialed that it keeps open. Beyond it, the least recently
  // active dialed session with nothing in flight is closed (peers reach us again on demand).
  std::size_t max_outbound_sessions = 48;
  // ℓ for datagram (UDP) sessions, which share the node's one socket and cost only memory
  // (a few KiB each): enough to keep a session with every contact of a full routing table.
  std::size_t max_outbound_datagram_sessions = 512;
  // Bytes queued for a peer that does not read them before it is cut off.
  std::size_t max_queued_bytes_per_peer = 16u << 20;
  // Compression methods this node enables, most preferred first (empty: none).
  std::vector<compression::codec_id> compression = default_compression_methods();
  std::size_t compression_threshold = default_compression_threshold;
  // New inbound handshakes per second above which hellos must carry a cookie.
  std::size_t cookie_threshold_per_second = 2000;
  // The node's address may change: peers should not plan to dial it back.
  bool dynamic_ip = false;
  // Seal a session's packets with AES-256-GCM rather than ChaCha20-Poly1305 when the peer offers
  // it too and both CPUs have AES-NI and PCLMUL (PROTOCOL.md 3.4); faster there. Off: always
  // ChaCha20-Poly1305.
  bool prefer_aes_gcm = true;
  // URIs this node listens on, ANNOUNCEd to every peer after the handshake so that peers can
  // hand it out as a contact; a wildcard host (0.0.0.0, [::]) stands for "the address you see".
  // Empty: the node only dials out and is never handed out.
  std::vector<std::string> announce_addresses;
  // With no address to announce, an empty ANNOUNCE still goes out after the handshake: its ACK
  // tells a node that only dials out (one behind a NAT) its public address (STUN-like,
  // PROTOCOL.md 5.13; node_engine::observed_address()).
  bool ask_observed_address = true;
  // UDP hole punching (INTRODUCE, PROTOCOL.md 5.14): this node introduces two peers that both
  // have a datagram session with it, and punches towards a peer introduced to it. At most this
  // many introductions a second, both roles together (each costs a request and one 4-byte
  // datagram); 0 turns both roles off.
  std::size_t introductions_per_second = 32;
  // How long the dial after an introduction may take before the node gives up on the punch and
  // tries a relay instead (a few hello resends; the full handshake_timeout would keep a caller
  // waiting on a NAT that maps per destination).
  std::chrono::milliseconds punched_dial_timeout{1000};
  // Relayed sessions (RELAY, PROTOCOL.md 5.15): circuits this node relays for others at once;
  // beyond it an open is NACKed rate_limited, and 0 relays nothing. Ends of circuits (sessions
  // of our own through a relay) are bounded per session instead (max_circuits_per_session).
  std::size_t max_relayed_circuits = 64;
  // FIND_NODE, FIND_VALUE and STORE become `incoming` events for the DHT, answered with
  // node_engine::respond(); without it they are NACKed unsupported_opcode.
  bool serve_dht = false;
  // Datagram transports (UDP, the simulator): the reliable channel and the hello resends.
  datagram_settings datagram;
  // Sessions one transport address may have at once on a datagram transport (a simultaneous
  // dial makes two; a restarted peer briefly one more).
  std::size_t max_sessions_per_address = 4;

  void validate() const;
};

}  // namespace kadnet::core
