#pragma once
// The reply payloads of compare-and-swap (docs/PROTOCOL.md 8.6): the data an acceptor puts in the
// ACK or NACK answering a STORE with a consensus part, and the ballot both sides compare.
// Decoders treat their input as hostile, like wire::decode: every length is checked against the
// remaining bytes and a limit before anything is copied; trailing bytes are an error.
//
//   promise   (ACK of a prepare)        flags (1) [bit 0: accepted] | accepted proposal?
//             accepted proposal = round (8) | proposer (32) | proposal (16) | value length (4) | value
//   conflict  (NACK version_conflict)   version (8) | flags (1) [bit 0: writer known] | writer (16)? |
//                                       value length (4) | value
//   outbid    (NACK locked)             round (8) | proposer (32): the ballot the acceptor promised
//   behind    (NACK not_found)          version (8): the acceptor holds an older version than the
//                                       one the slot builds on
#include <compare>
#include <cstdint>
#include <optional>

#include <boost/system/error_code.hpp>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/node_id.hpp"
#include "kadnet/core/wire/message.hpp"

namespace kadnet::dht {

using core::wire::proposal_id;

// A Paxos ballot: unique because the proposer's id is part of it; rounds compare first.
struct ballot {
  std::uint64_t round = 0;
  core::node_id proposer;
  friend auto operator<=>(const ballot&, const ballot&) = default;
  friend bool operator==(const ballot&, const ballot&) = default;
};

struct accepted_proposal {
  ballot by;
  proposal_id proposal{};
  byte_vector value;
  friend bool operator==(const accepted_proposal&, const accepted_proposal&) = default;
};

struct cas_promise {
  std::optional<accepted_proposal> accepted;  // what this acceptor accepted for the slot, if anything
  friend bool operator==(const cas_promise&, const cas_promise&) = default;
};

struct cas_conflict {
  std::uint64_t version = 0;            // the version the acceptor holds (0: none)
  // The proposal chosen for the slot the request asked about, if the acceptor remembers it: how a
  // proposer whose own replies were lost learns whether it won.
  std::optional<proposal_id> writer;
  byte_vector value;                    // the value of `version`
  friend bool operator==(const cas_conflict&, const cas_conflict&) = default;
};

void encode_promise(const cas_promise& p, byte_vector& out);
boost::system::error_code decode_promise(byte_span in, cas_promise& out, std::size_t max_value_size);

void encode_conflict(const cas_conflict& c, byte_vector& out);
boost::system::error_code decode_conflict(byte_span in, cas_conflict& out, std::size_t max_value_size);

void encode_ballot(const ballot& b, byte_vector& out);
boost::system::error_code decode_ballot(byte_span in, ballot& out);

// The data of NACK not_found (behind) and of a plain STORE's version_conflict: one u64.
void encode_version(std::uint64_t version, byte_vector& out);
boost::system::error_code decode_version(byte_span in, std::uint64_t& out);

}  // namespace kadnet::dht
