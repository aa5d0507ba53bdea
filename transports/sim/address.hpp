#pragma once
// The text form of a simulated endpoint, "sim://<id>" (decimal, no leading zeros), as nodes on
// the simulated network ANNOUNCE it and hand it out in contacts.
#include <optional>
#include <string>
#include <string_view>

#include "kadnet/transports/sim/network.hpp"

namespace kadnet::sim {

inline constexpr std::string_view address_scheme = "sim://";

std::string format_address(endpoint_id id);
// The endpoint of "sim://<id>"; nullopt for anything else (another scheme, no digits, a sign,
// leading zeros, trailing characters, an id beyond endpoint_id).
std::optional<endpoint_id> parse_address(std::string_view text);

}  // namespace kadnet::sim
