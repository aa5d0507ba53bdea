#include "kadnet/transports/sim/node_address.hpp"

#include <stdexcept>

#include <gtest/gtest.h>

namespace kadnet::sim {
namespace {

TEST(SimNodeAddress, LowBitsComeFirst) {
  EXPECT_EQ(node_uri(0), "udp://10.0.0.0:4000");
  EXPECT_EQ(node_uri(1), "udp://10.1.0.0:4000");
  EXPECT_EQ(node_uri(0x030201), "udp://10.1.2.3:4000");
  byte_vector a = node_transport_address(0x030201);
  byte_vector expected{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3, 0x0f, 0xa0};
  EXPECT_EQ(a, expected);
}

TEST(SimNodeAddress, RoundTrips) {
  for (endpoint_id e : {0u, 1u, 255u, 256u, 65535u, 65536u, 99999u, max_node_endpoint}) {
    EXPECT_EQ(endpoint_of_uri(node_uri(e)), e);
    EXPECT_EQ(endpoint_of_transport_address(node_transport_address(e)), e);
  }
}

TEST(SimNodeAddress, EndpointsBeyondTenSlashEightAreMisuse) {
  EXPECT_THROW(node_uri(max_node_endpoint + 1), std::out_of_range);
  EXPECT_THROW(node_transport_address(max_node_endpoint + 1), std::out_of_range);
}

TEST(SimNodeAddress, RejectsOtherAddresses) {
  for (const char* bad : {"", "udp://10.1.2.3", "udp://10.1.2.3:4001", "tcp://10.1.2.3:4000", "udp://11.1.2.3:4000",
                          "udp://10.1.2:4000", "udp://10.1.2.3.4:4000", "udp://10.01.2.3:4000", "udp://[::1]:4000",
                          "sim://7", "udp://10.1.2.256:4000"})
    EXPECT_FALSE(endpoint_of_uri(bad).has_value()) << bad;
  byte_vector a = node_transport_address(5);
  a[12] = 11;  // another /8
  EXPECT_FALSE(endpoint_of_transport_address(a).has_value());
  a = node_transport_address(5);
  a[17] ^= 1;  // another port
  EXPECT_FALSE(endpoint_of_transport_address(a).has_value());
  a.pop_back();
  EXPECT_FALSE(endpoint_of_transport_address(a).has_value());
}

}  // namespace
}  // namespace kadnet::sim
