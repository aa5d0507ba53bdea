#include "kadnet/transports/sim/address.hpp"

#include <charconv>
#include <limits>

namespace kadnet::sim {

std::string format_address(endpoint_id id) {
  return std::string(address_scheme) + std::to_string(id);
}

std::optional<endpoint_id> parse_address(std::string_view text) {
  if (!text.starts_with(address_scheme)) return std::nullopt;
  std::string_view digits = text.substr(address_scheme.size());
  // One spelling per endpoint: "sim://07" would make two addresses for one node.
  if (digits.empty() || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  endpoint_id id = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return id;
}

}  // namespace kadnet::sim
