#pragma once
// The arguments every binding takes as text, checked the same way: each parser throws
// std::invalid_argument naming the problem (Python sees ValueError, C gets KADNET_EINVAL).
#include <stdexcept>
#include <string>

#include "kadnet/transports/node_driver.hpp"

namespace kadnet::bindings {

// A URI to dial, or the NodeId (64 hex digits) of a peer with a session.
inline transports::peer_ref target_of(const std::string& text) {
  std::string problem;
  auto ref = transports::parse_peer_ref(text, &problem);
  if (!ref) throw std::invalid_argument(problem);
  return *ref;
}

inline transports::uri uri_of(const std::string& text) {
  std::string problem;
  auto u = transports::parse_uri(text, &problem);
  if (!u) throw std::invalid_argument(problem);
  return *u;
}

inline core::node_id node_id_of(const std::string& hex) {
  auto id = core::node_id::from_hex(hex);
  if (!id) throw std::invalid_argument("'" + hex + "' is not a NodeId (64 hex digits)");
  return *id;
}

inline std::uint8_t plugin_opcode(int opcode) {
  if (opcode < 64 || opcode > 255) throw std::invalid_argument("plugin opcodes are 64..255, not " + std::to_string(opcode));
  return static_cast<std::uint8_t>(opcode);
}

}  // namespace kadnet::bindings
