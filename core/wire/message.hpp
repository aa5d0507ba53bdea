#pragma once
// Opcode messages (docs/PROTOCOL.md section 5): the requests and replies two nodes exchange on a
// session, after the envelope (4.2) has been removed.
//
// Every message is   opcode (1) | message id (4) | fields of that opcode
// with integers big-endian. `message` holds the opcode-independent header and one plain struct
// per opcode; encode() appends the wire form, decode() parses exactly one message.
//
// decode() is written for hostile input: it never throws, never reads past the input, and never
// allocates more bytes than the input holds (every length is checked against the remaining input
// and the decode_limits before anything is copied). Each malformed input maps to one errc:
//   truncated       the input ends before a field (or before a length it announced)
//   trailing_bytes  bytes left after a message whose size is fully determined
//   unknown_opcode  opcode 13..63 (reserved for kadnet, not defined in this version)
//   bad_field       a flags byte with an undefined bit set (or STORE's bits 0 and 1 together, or
//                   its bits 1 and 2 together, or bit 2 with version 0), an
//                   undefined consensus phase, NACK text that is not UTF-8, or SHOUT levels that
//                   do not ascend below its scope
//   too_large       a length (or the bytes a field takes up) beyond decode_limits
// Values the codec cannot judge (a connection option or setting, a NACK code, the opcode an ACK
// answers) decode as they are: the node decides what to do with them.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/core/node_id.hpp"

namespace kadnet::core::wire {

enum class opcode : std::uint8_t {
  ack = 0,
  nack = 1,
  ping = 2,
  set_connection_opt = 3,
  shout = 4,
  speak = 5,
  whisper = 6,
  find_node = 7,
  find_value = 8,
  store = 9,
  announce = 10,
  introduce = 11,
  relay = 12,
};
inline constexpr std::uint8_t last_defined_opcode = 12;
// Opcodes from here to 255 are plugin RPCs; 13..63 are reserved for kadnet.
inline constexpr std::uint8_t first_plugin_opcode = 64;
inline constexpr std::size_t message_header_size = 5;  // opcode | message id

// The code a NACK carries (u16). Codes this version does not know decode as they are.
enum class nack_code : std::uint16_t {
  unspecified = 0,         // no reason given; the text may say more
  unsupported_opcode = 1,  // the node has no handler for the opcode (reserved, or a plugin it lacks)
  handler_failed = 2,      // the handler for the opcode threw or failed
  bad_request = 3,         // the request's body did not decode or its values are invalid
  option_refused = 4,      // SET_CONNECTION_OPT: the node does not support that option/setting
  locked = 5,              // DHT: the key is locked by another writer
  quota_full = 6,          // DHT: the node stores no more values (for this sender)
  version_conflict = 7,    // DHT: a STORE's version is not newer than the stored one
  not_found = 8,           // the thing asked for is not held by this node
  rate_limited = 9,        // the sender exceeded its request rate; retry later
  too_large = 10,          // the request (or a field of it) exceeds the node's limits
  stale = 11,              // dated outside the receiver's window: a replay, or the clocks apart
};

// Connection options and their settings (section 6). The codec carries any value; the node NACKs
// the ones it does not support with nack_code::option_refused.
enum class connection_option : std::uint8_t {
  compression_enabled = 0,    // setting: a compression method the sender accepts
  preferred_compression = 1,  // setting: the method the sender would like to receive
};

struct decode_limits {
  std::size_t max_text = 1024;          // NACK text, bytes
  std::size_t max_value = 64 * 1024;    // STORE value, bytes
  std::size_t max_payload = 1 << 20;    // any other payload or data field, bytes
};

// ACK 0: the request succeeded; `data` is what the request returns.
struct ack {
  std::uint8_t request_opcode = 0;
  byte_vector data;
  friend bool operator==(const ack&, const ack&) = default;
};

// NACK 1: the request failed.
struct nack {
  std::uint8_t request_opcode = 0;
  nack_code code = nack_code::unspecified;
  std::string text;  // UTF-8 for people, at most decode_limits::max_text bytes
  byte_vector data;
  friend bool operator==(const nack&, const nack&) = default;
};

// PING 2: answered with ACK PING and empty data.
struct ping {
  friend bool operator==(const ping&, const ping&) = default;
};

// SET_CONNECTION_OPT 3.
struct set_connection_opt {
  std::uint8_t option = 0;   // a connection_option value
  std::uint8_t setting = 0;  // a compression method number (bz2 0 ... zstd 5)
  friend bool operator==(const set_connection_opt&, const set_connection_opt&) = default;
};

// SHOUT 4: a broadcast that reaches every node once, along a tree; signed by its origin.
struct shout {
  node_id origin;
  std::uint64_t sequence = 0;
  std::uint8_t hops = 0;   // not signed: each forwarder increments it
  std::uint8_t scope = 0;  // not signed: the receiver covers the ids sharing its first `scope` bits
  byte_vector payload;
  signature sig{};        // over shout_signed_bytes()
  // Not signed: the receiver also covers the ids sharing exactly ℓ leading bits with it, for each
  // ℓ here (ascending, each below `scope`). On the wire it follows `scope`.
  std::vector<std::uint8_t> also_levels;
  friend bool operator==(const shout&, const shout&) = default;
};

// SPEAK 5: a message to direct peers, forwarded only at their discretion.
struct speak {
  node_id origin;
  std::uint64_t sequence = 0;
  byte_vector payload;
  friend bool operator==(const speak&, const speak&) = default;
};

// WHISPER 6: a message for one node, never forwarded.
struct whisper {
  node_id sender;
  node_id target;
  bool sealed = false;  // flags bit 0: the payload is sealed to the target's key
  byte_vector payload;
  friend bool operator==(const whisper&, const whisper&) = default;
};

// FIND_NODE 7.
struct find_node {
  node_id target;
  friend bool operator==(const find_node&, const find_node&) = default;
};

// FIND_VALUE 8.
// The listen block of a FIND_VALUE (PROTOCOL.md 8.10): the sender subscribes to new versions
// of the key for `lease_seconds` (0: cancels its subscription) and already holds
// `known_version` (0: nothing), the base the receiver's notifications may be diffs against.
struct listen_request {
  std::uint32_t lease_seconds = 0;
  std::uint64_t known_version = 0;
  friend bool operator==(const listen_request&, const listen_request&) = default;
};

// FIND_VALUE 8: 37 bytes, or 49 with a listen block.
struct find_value {
  node_id key;
  std::optional<listen_request> listen = std::nullopt;  // last: {key} still reads
  friend bool operator==(const find_value&, const find_value&) = default;
};

// The owner part of a signed STORE (flags bit 0).
struct store_owner {
  node_id owner;
  signature sig{};  // over store_signed_bytes()
  friend bool operator==(const store_owner&, const store_owner&) = default;
};

// The compare-and-swap part of a STORE (flags bit 1): one phase of the single-decree Paxos that
// decides each version of a key (docs/PROTOCOL.md 8.6). The phase says what the STORE's version
// and value mean: prepare — the slot asked for and the committed value of the version before it
// (the base); accept — the slot and the proposed value; commit — the slot and the chosen value.
enum class consensus_phase : std::uint8_t { prepare = 1, accept = 2, commit = 3 };
inline constexpr std::size_t proposal_id_size = 16;
using proposal_id = std::array<std::uint8_t, proposal_id_size>;
struct store_consensus {
  consensus_phase phase = consensus_phase::prepare;
  std::uint64_t round = 0;  // the ballot: (round, proposer), compared in that order
  node_id proposer;
  proposal_id proposal{};   // names the value proposed (prepare: the one the sender means to propose)
  friend bool operator==(const store_consensus&, const store_consensus&) = default;
};

// STORE 9. At most one of owner and consensus: compare-and-swap is for unowned keys. With
// `patch` (flags bit 2, PROTOCOL.md 8.8) `value` is a diff (dht/value_patch.hpp) that turns the
// receiver's version `version - 1` into version `version`; the owner's signature still covers
// the whole resulting value. Not with consensus; version >= 1.
struct store {
  node_id key;
  std::uint64_t version = 0;
  std::uint32_t ttl_seconds = 0;  // not signed: it shrinks as the value is replicated
  std::optional<store_owner> owner;
  byte_vector value;  // at most decode_limits::max_value bytes
  std::optional<store_consensus> consensus = std::nullopt;  // last: {key, version, ttl, owner, value} still reads
  bool patch = false;  // flags bit 2: `value` is a diff against version - 1
  // flags bit 3: a notification to a listener (PROTOCOL.md 8.10): "the key now holds this
  // version"; the receiver delivers it and stores nothing. Not with consensus.
  bool notify = false;
  friend bool operator==(const store&, const store&) = default;
};

// ANNOUNCE 10: the URIs the sender listens on, so the receiver can hand it out as a contact.
// Each is printable ASCII, 1..255 bytes; 1..max_announced_addresses of them.
inline constexpr std::size_t max_announced_addresses = 8;
struct announce {
  std::vector<std::string> addresses;
  friend bool operator==(const announce&, const announce&) = default;
};

// INTRODUCE 11 (PROTOCOL.md 5.14), UDP hole punching through a node both sides have a session
// with. Without an address: "introduce me to `peer`" (its ACK data is the peer's 18-byte
// transport address). With one: "`peer` is about to dial you from `address`: punch towards it".
inline constexpr std::size_t introduce_address_size = 18;  // IPv6 or v4-mapped ‖ port
struct introduce {
  node_id peer;
  byte_vector address;  // empty or introduce_address_size bytes
  friend bool operator==(const introduce&, const introduce&) = default;
};

// RELAY 12 (PROTOCOL.md 5.15): one circuit of a relayed session, which carries the byte stream
// of an end-to-end session between two nodes through a node both have a session with.
enum class relay_kind : std::uint8_t { open = 0, data = 1, close = 2 };
inline constexpr std::uint8_t relay_from_opener_flag = 0x80;
struct relay {
  std::uint32_t circuit = 0;  // numbered by the node that opened this leg of the circuit
  relay_kind kind = relay_kind::open;
  bool from_opener = false;   // sent by the node that opened this leg (flag 0x80)
  node_id peer;               // open only: the node the circuit is to reach (an end when it is us)
  byte_vector data;           // data only: bytes of the end-to-end session, 1 or more
  friend bool operator==(const relay&, const relay&) = default;
};

// Opcodes 64..255: a plugin RPC; the opcode is message::opcode.
struct plugin_call {
  byte_vector payload;
  friend bool operator==(const plugin_call&, const plugin_call&) = default;
};

using message_body = std::variant<ack, nack, ping, set_connection_opt, shout, speak, whisper,
                                  find_node, find_value, store, announce, introduce, relay,
                                  plugin_call>;

struct message {
  std::uint8_t opcode = 0;  // must agree with the body: its opcode, or >= 64 for plugin_call
  std::uint32_t id = 0;
  message_body body;
  friend bool operator==(const message&, const message&) = default;
};

// A message with the opcode its body implies. Not for plugin_call (use make_plugin_call).
message make_message(std::uint32_t id, message_body body);
// A plugin call; opcode must be >= first_plugin_opcode.
message make_plugin_call(std::uint8_t opcode, std::uint32_t id, byte_vector payload);

// Appends the wire form of `m` to `out`. Local misuse (an opcode that disagrees with the body,
// a field longer than its length field can express) is an assertion failure.
void encode(const message& m, byte_vector& out);

// Parses exactly one message filling `in`. On success `out` is replaced; on error it is left
// untouched. Errors: see the top of this file.
boost::system::error_code decode(byte_span in, message& out, const decode_limits& limits = {});

// Reads only the 5-byte header, so that a node can NACK a request whose body does not decode or
// whose opcode is reserved (13..63 are returned, not refused, here). Error: truncated.
boost::system::error_code decode_header(byte_span in, std::uint8_t& opcode, std::uint32_t& id);

// An address list as ANNOUNCE and the DHT's contacts carry it: count (1, 1..8; ANNOUNCE 0..8) |
// (length (1, 1..255) | printable ASCII URI) × count. Errors: truncated, bad_field (no address
// where one is required, an empty or non-printable one), too_large (more than
// max_announced_addresses).
boost::system::error_code read_address_list(byte_reader& r, std::vector<std::string>& out,
                                            bool may_be_empty = false);
void write_address_list(byte_writer& w, const std::vector<std::string>& addresses);

// The bytes an origin signs (Ed25519) for a SHOUT:
//   "kadnet-shout-1" ‖ origin ‖ sequence (u64) ‖ payload length (u32) ‖ payload
byte_vector shout_signed_bytes(const shout& s);
// The bytes an owner signs for a STORE:
//   "kadnet-store-1" ‖ key ‖ version (u64) ‖ value length (u32) ‖ value
// For a patched STORE the value signed is the whole value after the diff, not s.value: build
// the store of the result (patch unset) to sign or check it.
byte_vector store_signed_bytes(const store& s);

}  // namespace kadnet::core::wire
