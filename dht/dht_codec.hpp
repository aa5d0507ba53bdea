#pragma once
// The DHT's reply payloads (docs/PROTOCOL.md, "DHT replies"): the data of the ACKs that answer
// FIND_NODE, FIND_VALUE and STORE. Decoders treat their input as hostile, like wire::decode: each
// length is checked against the remaining bytes and a limit before anything is copied.
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/core/node_id.hpp"
#include "kadnet/core/wire/message.hpp"

namespace kadnet::dht {

inline constexpr std::size_t max_contacts_per_reply = 32;
inline constexpr std::size_t max_addresses_per_contact = core::wire::max_announced_addresses;

// A contact as it travels: a NodeId and the URIs it listens on (at least one: nodes that
// cannot be dialed are never handed out).
struct wire_contact {
  core::node_id id;
  std::vector<std::string> addresses;
  friend bool operator==(const wire_contact&, const wire_contact&) = default;
};

// A stored value as FIND_VALUE returns it (the STORE fields after the key).
struct wire_value {
  std::uint64_t version = 0;
  std::uint32_t ttl_seconds = 0;
  std::optional<core::node_id> owner;
  std::optional<core::signature> sig;  // present exactly when owner is
  byte_vector value;
  friend bool operator==(const wire_value&, const wire_value&) = default;
};

// FIND_NODE's ACK data: count (1) | contact*.  contact = id (32) | n (1) | (len (1) | uri)*n
void encode_contacts(const std::vector<wire_contact>& contacts, byte_vector& out);
boost::system::error_code decode_contacts(byte_span in, std::vector<wire_contact>& out);

// A value as the DHT's records end: value length (u32) | value, the length checked against
// max_value_size before the bytes are read. errc::truncated or too_large.
boost::system::error_code read_value(byte_reader& r, std::size_t max_value_size, byte_vector& out);

// The answer to a listen request (FIND_VALUE with a listen block, PROTOCOL.md 8.10) from a node
// that holds exactly the version the subscriber said it knows: the value is not sent again.
struct wire_current {
  std::uint64_t version = 0;
  friend bool operator==(const wire_current&, const wire_current&) = default;
};

// FIND_VALUE's ACK data: status (1) = 0 | contacts, status = 1 | value record, or (listen only)
// status = 2 | version (u64).
using find_value_reply = std::variant<std::vector<wire_contact>, wire_value, wire_current>;
void encode_find_value_reply(const find_value_reply& reply, byte_vector& out);
boost::system::error_code decode_find_value_reply(byte_span in, find_value_reply& out,
                                                  std::size_t max_value_size);

}  // namespace kadnet::dht
