#pragma once
// Application RPC handlers by opcode (64..255). A handler receives the caller's NodeId and the
// payload and answers through `reply` exactly once — at once (a synchronous handler) or later
// (an asynchronous one). Replying with an error sends a NACK with its code and text; a handler
// that throws is answered with NACK handler_failed and the node goes on.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/node_id.hpp"
#include "kadnet/core/wire/message.hpp"

namespace kadnet::core {

struct plugin_error {
  wire::nack_code code = wire::nack_code::handler_failed;
  std::string text;
};
using plugin_result = std::variant<byte_vector, plugin_error>;
using plugin_reply = std::function<void(plugin_result)>;
using plugin_handler =
    std::function<void(const node_id& caller, byte_span payload, plugin_reply reply)>;

class plugin_registry {
 public:
  // Registers (or replaces) the handler for `opcode`. Throws std::invalid_argument for an
  // opcode below 64, which kadnet reserves.
  void add(std::uint8_t opcode, plugin_handler handler);
  void remove(std::uint8_t opcode);
  const plugin_handler* find(std::uint8_t opcode) const;

 private:
  // Sorted by opcode. A node has a handful of plugins at most, and a swarm of thousands of
  // nodes in one process should not pay 256 slots each.
  std::vector<std::pair<std::uint8_t, std::shared_ptr<plugin_handler>>> handlers_;
};

}  // namespace kadnet::core
