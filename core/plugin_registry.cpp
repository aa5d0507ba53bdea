#include "kadnet/core/plugin_registry.hpp"

#include <algorithm>
#include <stdexcept>

namespace kadnet::core {
namespace {

// Where `opcode`'s entry is or would go in a list sorted by opcode.
template <class List>
auto position(List& handlers, std::uint8_t opcode) {
  return std::lower_bound(handlers.begin(), handlers.end(), opcode,
                          [](const auto& entry, std::uint8_t op) { return entry.first < op; });
}

}  // namespace

void plugin_registry::add(std::uint8_t opcode, plugin_handler handler) {
  if (opcode < wire::first_plugin_opcode)
    throw std::invalid_argument("plugin opcode " + std::to_string(opcode) +
                                " is reserved for kadnet; use 64..255");
  auto h = std::make_shared<plugin_handler>(std::move(handler));
  auto it = position(handlers_, opcode);
  if (it != handlers_.end() && it->first == opcode) it->second = std::move(h);
  else handlers_.emplace(it, opcode, std::move(h));
}

void plugin_registry::remove(std::uint8_t opcode) {
  auto it = position(handlers_, opcode);
  if (it != handlers_.end() && it->first == opcode) handlers_.erase(it);
}

const plugin_handler* plugin_registry::find(std::uint8_t opcode) const {
  auto it = position(handlers_, opcode);
  return it != handlers_.end() && it->first == opcode ? it->second.get() : nullptr;
}

}  // namespace kadnet::core
