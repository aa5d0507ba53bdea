#include "kadnet/core/peer_address.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>

namespace kadnet::core {
namespace {

TEST(PeerAddress, AFixedAddressHoldsUpTo18BytesInline) {
  byte_vector bytes(18, 0);
  bytes[17] = 7;
  const fixed_address a(bytes);
  EXPECT_TRUE(std::equal(a.bytes().begin(), a.bytes().end(), bytes.begin(), bytes.end()));
  EXPECT_TRUE(fixed_address().empty());
  EXPECT_TRUE(fixed_address().bytes().empty());
  bytes[17] = 8;
  EXPECT_NE(a, fixed_address(bytes));
  EXPECT_NE(fixed_address(byte_span(bytes).first(17)), fixed_address(bytes));  // the length counts
  EXPECT_EQ(fixed_address::hash()(fixed_address(bytes)), fixed_address::hash()(fixed_address(bytes)));
  EXPECT_THROW(fixed_address(byte_vector(19, 0)), std::invalid_argument);
}

TEST(PeerAddress, FormatsIpv4MappedAndIpv6) {
  byte_vector v4(18, 0);
  v4[10] = v4[11] = 0xff;
  v4[12] = 127, v4[15] = 1, v4[16] = 0x0f, v4[17] = 0xa0;
  EXPECT_EQ(address_text(v4), "127.0.0.1:4000");
  byte_vector v6(18, 0);
  v6[15] = 1, v6[17] = 80;
  EXPECT_EQ(address_text(v6), "[::1]:80");
  EXPECT_EQ(address_text(byte_vector(5, 0)), "");
  EXPECT_EQ(host_of_address_text("[::1]:80"), "::1");
  EXPECT_EQ(host_of_address_text("127.0.0.1:4000"), "127.0.0.1");
}

// What a peer's ACK of our ANNOUNCE says about us is kept only in address_text()'s form.
TEST(PeerAddress, ObservedAddressesHaveAddressTextsForm) {
  byte_vector v4(18, 0);
  v4[10] = v4[11] = 0xff, v4[12] = 198, v4[13] = 18, v4[14] = 0, v4[15] = 1, v4[16] = 0x0f, v4[17] = 0xa0;
  EXPECT_TRUE(is_address_text(address_text(v4))) << address_text(v4);
  byte_vector v6(18, 0);
  v6[15] = 1, v6[17] = 80;
  EXPECT_TRUE(is_address_text(address_text(v6))) << address_text(v6);
  for (const char* bad : {"", "198.18.0.1", "198.18.0.1:", "198.18.0.1:0", "198.18.0.1:65536", "example.org:80",
                          "::1:80", "[::1]", "[::1]80", "[198.18.0.1]:80", "198.18.0.1:80\n", "<script>:80"})
    EXPECT_FALSE(is_address_text(bad)) << bad;
}

TEST(PeerAddress, AnnouncementsMustMatchTheSource) {
  EXPECT_EQ(checked_announcement("tcp://0.0.0.0:4000", "198.18.0.1"), "tcp://198.18.0.1:4000");
  EXPECT_EQ(checked_announcement("tcp://198.18.0.1:4000", "198.18.0.1"), "tcp://198.18.0.1:4000");
  EXPECT_EQ(checked_announcement("tcp://[::]:4000", "::1"), "tcp://[::1]:4000");
  EXPECT_EQ(checked_announcement("tcp://127.0.0.1:4000", "::ffff:127.0.0.1"), "tcp://127.0.0.1:4000");
  EXPECT_EQ(checked_announcement("tcp://198.18.0.2:4000", "198.18.0.1"), std::nullopt);
  EXPECT_EQ(checked_announcement("tcp://evil.example:4000", "198.18.0.1"), std::nullopt);
  EXPECT_EQ(checked_announcement("no-scheme", "198.18.0.1"), std::nullopt);
  EXPECT_EQ(checked_announcement("tcp://0.0.0.0:", "198.18.0.1"), std::nullopt);
  EXPECT_EQ(checked_announcement("tcp://0.0.0.0:4000", ""), std::nullopt);
  // The port is a number from 1 to 65535 and ends the URI: the URI is handed out as a contact.
  for (const char* port : {"0", "65536", "99999", "80/x", "+80", "4000 ", "123456"})
    EXPECT_EQ(checked_announcement(std::string("udp://198.18.0.1:") + port, "198.18.0.1"), std::nullopt) << port;
  EXPECT_EQ(checked_announcement("udp://198.18.0.1:65535", "198.18.0.1"), "udp://198.18.0.1:65535");
  EXPECT_EQ(checked_announcement("udp://[::]:1", "::1"), "udp://[::1]:1");
}

}  // namespace
}  // namespace kadnet::core
