#include "kadnet/transports/sim/address.hpp"

#include <gtest/gtest.h>

namespace kadnet::sim {
namespace {

TEST(SimAddress, FormatsAndParsesBack) {
  EXPECT_EQ(format_address(0), "sim://0");
  EXPECT_EQ(format_address(99999), "sim://99999");
  for (endpoint_id id : {0u, 1u, 42u, 100000u, 4294967295u}) EXPECT_EQ(parse_address(format_address(id)), id);
}

TEST(SimAddress, RejectsEverythingElse) {
  for (const char* bad : {"", "sim://", "sim:/1", "tcp://1", "SIM://1", "sim://01", "sim://-1", "sim://+1",
                          "sim://1 ", "sim:// 1", "sim://1x", "sim://4294967296", "sim://127.0.0.1:4000"})
    EXPECT_FALSE(parse_address(bad).has_value()) << bad;
}

}  // namespace
}  // namespace kadnet::sim
