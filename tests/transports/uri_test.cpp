#include "kadnet/transports/uri.hpp"

#include <string>

#include <gtest/gtest.h>

namespace kadnet::transports {
namespace {

TEST(Uri, ParsesIpv4) {
  auto u = parse_uri("tcp://127.0.0.1:4000");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->scheme, "tcp");
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 4000);
}

TEST(Uri, ParsesBracketedIpv6WithoutBrackets) {
  auto u = parse_uri("tcp://[::1]:4000");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->scheme, "tcp");
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 4000);
}

TEST(Uri, ParsesEveryTransportsScheme) {
  for (const char* scheme : {"tcp", "udp", "ws"}) {
    auto u = parse_uri(std::string(scheme) + "://[2001:db8::1]:8080");
    ASSERT_TRUE(u.has_value()) << scheme;
    EXPECT_EQ(u->scheme, scheme);
    EXPECT_EQ(u->to_string(), std::string(scheme) + "://[2001:db8::1]:8080");
  }
}

TEST(Uri, ParsesNameWithPortZero) {
  auto u = parse_uri("tcp://localhost:0");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->host, "localhost");
  EXPECT_EQ(u->port, 0);
}

TEST(Uri, ParsesPortBounds) {
  auto top = parse_uri("tcp://h:65535");
  ASSERT_TRUE(top.has_value());
  EXPECT_EQ(top->port, 65535);
  EXPECT_FALSE(parse_uri("tcp://h:65536").has_value());
}

TEST(Uri, ProblemIsLeftAloneOnSuccess) {
  std::string problem = "untouched";
  EXPECT_TRUE(parse_uri("tcp://127.0.0.1:4000", &problem).has_value());
  EXPECT_EQ(problem, "untouched");
}

TEST(Uri, ToStringRoundTrips) {
  for (const char* text : {"tcp://127.0.0.1:4000", "tcp://[::1]:4000", "tcp://localhost:0",
                           "tcp://[fe80::1:2]:65535", "tcp://example.org:80"}) {
    auto u = parse_uri(text);
    ASSERT_TRUE(u.has_value()) << text;
    EXPECT_EQ(u->to_string(), text);
    auto again = parse_uri(u->to_string());
    ASSERT_TRUE(again.has_value()) << text;
    EXPECT_EQ(*again, *u);
  }
}

TEST(Uri, ToStringBracketsIpv6Hosts) {
  uri u{"tcp", "2001:db8::7", 9};
  EXPECT_EQ(u.to_string(), "tcp://[2001:db8::7]:9");
  uri v{"tcp", "10.1.2.3", 9};
  EXPECT_EQ(v.to_string(), "tcp://10.1.2.3:9");
}

// Each malformed URI fails, and the problem names the input and what is wrong.
TEST(Uri, RejectsMalformedNamingTheInput) {
  const struct {
    const char* text;
    const char* reason;
  } cases[] = {
      {"127.0.0.1:4000", "scheme://host:port"},
      {"", "scheme://host:port"},
      {"wss://127.0.0.1:4000", "unsupported scheme 'wss'"},
      {"TCP://127.0.0.1:4000", "unsupported scheme 'TCP'"},
      {"://127.0.0.1:4000", "unsupported scheme ''"},
      {"tcp://127.0.0.1", "missing :port"},
      {"tcp://[::1]", "missing :port"},
      {"tcp://[::1]4000", "missing :port"},
      {"tcp://127.0.0.1:70000", "port must be"},
      {"tcp://127.0.0.1:x", "port must be"},
      {"tcp://127.0.0.1:", "port must be"},
      {"tcp://127.0.0.1:-1", "port must be"},
      {"tcp://127.0.0.1:+1", "port must be"},
      {"tcp://127.0.0.1:40 00", "port must be"},
      {"tcp://127.0.0.1:4000/", "a path ('/') is not supported"},
      {"ws://127.0.0.1:4000/chat", "a path ('/chat') is not supported"},
      {"ws://[::1]:4000/x/y", "a path ('/x/y') is not supported"},
      {"tcp://127.0.0.1:99999999999999999999", "port must be"},
      {"tcp://:1", "empty host"},
      {"tcp://[]:1", "empty host"},
      {"tcp://[::1:4000", "unclosed '['"},
  };
  for (const auto& c : cases) {
    std::string problem;
    EXPECT_FALSE(parse_uri(c.text, &problem).has_value()) << c.text;
    EXPECT_NE(problem.find("'" + std::string(c.text) + "'"), std::string::npos)
        << c.text << " -> " << problem;
    EXPECT_NE(problem.find(c.reason), std::string::npos) << c.text << " -> " << problem;
  }
}

TEST(Uri, FailsWithoutProblemPointer) {
  EXPECT_FALSE(parse_uri("quic://127.0.0.1:4000").has_value());
  EXPECT_FALSE(parse_uri("tcp://127.0.0.1").has_value());
}

}  // namespace
}  // namespace kadnet::transports
