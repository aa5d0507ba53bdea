#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tools/cli_options.hpp"
#include "tools/swarm_command.hpp"

namespace kadnet::tools {
namespace {

using args = std::vector<std::string>;

std::string error_of(const args& a) {
  try {
    parse_swarm_options(a);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "no std::invalid_argument thrown";
  return {};
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

TEST(SwarmOptions, SimTransportIsAccepted) {
  auto o = parse_swarm_options({"--transport", "sim", "--nodes", "10000", "--ops", "1000", "--json"});
  EXPECT_EQ(o.transport, "sim");
  EXPECT_EQ(o.nodes, 10000);
  EXPECT_EQ(o.ops, 1000);
  EXPECT_TRUE(o.json);
}

TEST(SwarmOptions, NodeLimitsDependOnTheTransport) {
  // The limit is checked once the transport is known, whichever flag comes first.
  EXPECT_EQ(parse_swarm_options({"--nodes", "100000", "--transport", "sim"}).nodes, 100000);
  EXPECT_EQ(parse_swarm_options({"--nodes", "5000"}).nodes, 5000);
  std::string what = error_of({"--nodes", "5001", "--transport", "udp"});
  EXPECT_CONTAINS(what, "--nodes");
  EXPECT_CONTAINS(what, "--transport sim");
  EXPECT_CONTAINS(error_of({"--transport", "sim", "--nodes", "100001"}), "from 2 to 100000");
}

TEST(SwarmOptions, UnknownTransportIsNamed) {
  std::string what = error_of({"--transport", "quic"});
  EXPECT_CONTAINS(what, "'quic'");
  EXPECT_CONTAINS(what, "tcp, udp, ws or sim");
}

TEST(SwarmOptions, UsageOffersTheSimTransport) {
  std::string usage = usage_text;
  EXPECT_CONTAINS(usage, "--transport tcp|udp|ws|sim");
  EXPECT_EQ(usage.find("not available yet"), std::string::npos);
}

}  // namespace
}  // namespace kadnet::tools
