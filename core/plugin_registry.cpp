#include "core/plugin_registry.hpp"

#include <stdexcept>

namespace kadnet::core {

void plugin_registry::add(std::uint8_t opcode, plugin_handler handler) {
  if (opcode < wire::first_plugin_opcode)
    throw std::invalid_argument("plugin opcode " + std::to_string(opcode) +
                                " is reserved for kadnet; use 64..255");
  handlers_[opcode] = std::make_shared<plugin_handler>(std::move(handler));
}

void plugin_registry::remove(std::uint8_t opcode) { handlers_[opcode].reset(); }

const plugin_handler* plugin_registry::find(std::uint8_t opcode) const {
  return handlers_[opcode].get();
}

}  // namespace kadnet::core
