#pragma once
// A contact: what a node knows about another node — its NodeId, where it can be dialed, and how
// it has behaved. Sans-I/O: times are values, never read from a clock.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "kadnet/core/node_id.hpp"
#include "kadnet/core/rpc_tracker.hpp"

namespace kadnet::core {
struct reply;  // core/node_engine.hpp
}

namespace kadnet::dht {

struct contact {
  core::node_id id;
  // URIs the node listens on ("tcp://203.0.113.7:4000"). Empty for a node that only dials out:
  // it is reached over its own sessions and never handed to others as someone to dial.
  std::vector<std::string> addresses;
  core::time_point last_seen{};
  std::chrono::microseconds rtt{0};  // smoothed round-trip time, 0 until measured
  int failures = 0;                  // consecutive unanswered requests
  // A session with it is up (from on_peer_connected until on_peer_disconnected): a request to it
  // costs no dial. Not persisted.
  bool connected = false;

  bool dialable() const { return !addresses.empty(); }
};

// The network a contact's first address belongs to, for eclipse resistance: "v4:a.b.c" (the /24)
// or "v6:xxxx:xxxx:xxxx:xxxx" (the /64); nullopt when it has no IP address.
std::optional<std::string> network_prefix(const contact& c);

// A reply that says nothing about whether the peer is alive (it never got the request or never
// answered: timeout, no session, session lost), as opposed to an ACK or a NACK, which prove it
// is up.
bool unreachable(const core::reply& r);

// Folds a new RTT sample into the smoothed value (RFC 6298's 1/8 gain).
std::chrono::microseconds smooth_rtt(std::chrono::microseconds old, std::chrono::microseconds sample);

}  // namespace kadnet::dht
