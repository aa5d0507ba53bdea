#include "kadnet/core/crypto/cookie_jar.hpp"

#include <memory>

#include <gtest/gtest.h>
#include <sodium.h>

namespace kadnet::core::crypto {
namespace {

constexpr std::uint64_t minute = 60'000;

// 16-byte IPv4-mapped address ‖ port.
std::array<std::uint8_t, 18> address(std::uint8_t last_octet, std::uint16_t port) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, last_octet,
          static_cast<std::uint8_t>(port >> 8), static_cast<std::uint8_t>(port)};
}

// Hands out secrets 1, 2, 3, ... (each byte of the n-th secret is n) and counts the draws.
struct counting_random {
  std::shared_ptr<int> draws = std::make_shared<int>(0);
  random_source source() {
    return [d = draws](mutable_byte_span out) {
      ++*d;
      std::fill(out.begin(), out.end(), static_cast<std::uint8_t>(*d));
    };
  }
};

TEST(CookieJar, AcceptsItsOwnCookieForTheSameAddress) {
  cookie_jar jar;
  const auto a = address(1, 4000);
  const auto c = jar.make(a, 5 * minute + 10);
  EXPECT_TRUE(jar.check(c, a, 5 * minute + 10));
  EXPECT_TRUE(jar.check(c, a, 6 * minute - 1));
}

TEST(CookieJar, CookieIsBoundToAddressAndPort) {
  cookie_jar jar;
  const auto c = jar.make(address(1, 4000), 0);
  EXPECT_FALSE(jar.check(c, address(2, 4000), 0));
  EXPECT_FALSE(jar.check(c, address(1, 4001), 0));
}

TEST(CookieJar, PreviousSlotIsAcceptedOlderIsNot) {
  cookie_jar jar;
  const auto a = address(1, 4000);
  const auto c = jar.make(a, 10 * minute + 59'999);
  EXPECT_TRUE(jar.check(c, a, 11 * minute));
  EXPECT_TRUE(jar.check(c, a, 11 * minute + 59'999));
  EXPECT_FALSE(jar.check(c, a, 12 * minute));
}

TEST(CookieJar, AJumpOfTwoSlotsForgetsBothSecrets) {
  cookie_jar jar;
  const auto a = address(1, 4000);
  const auto c = jar.make(a, 0);
  EXPECT_FALSE(jar.check(c, a, 2 * minute));
  EXPECT_FALSE(jar.check(c, a, 2 * minute));  // and stays forgotten
}

TEST(CookieJar, ZeroCookieIsNeverValid) {
  cookie_jar jar([](mutable_byte_span out) { std::fill(out.begin(), out.end(), 0); });
  const auto a = address(1, 4000);
  jar.make(a, 0);
  EXPECT_FALSE(jar.check(cookie_jar::cookie{}, a, 0));
}

TEST(CookieJar, ForgedCookieIsRefused) {
  cookie_jar jar;
  const auto a = address(1, 4000);
  auto c = jar.make(a, 0);
  for (std::size_t i = 0; i < c.size(); ++i) {
    auto bad = c;
    bad[i] ^= 1;
    EXPECT_FALSE(jar.check(bad, a, 0)) << i;
  }
}

TEST(CookieJar, SecretsRotateOncePerSlot) {
  counting_random random;
  cookie_jar jar(random.source());
  const auto a = address(1, 4000);
  const auto c0 = jar.make(a, 0);
  EXPECT_EQ(*random.draws, 1);
  EXPECT_EQ(jar.make(a, minute - 1), c0);
  EXPECT_EQ(*random.draws, 1);
  const auto c1 = jar.make(a, minute);
  EXPECT_EQ(*random.draws, 2);
  EXPECT_NE(c1, c0);
  EXPECT_EQ(jar.current_slot(), 1u);
  jar.make(a, 5 * minute);
  EXPECT_EQ(*random.draws, 3);
}

TEST(CookieJar, TimeGoingBackwardsDoesNotRewindTheJar) {
  cookie_jar jar;
  const auto a = address(1, 4000);
  const auto c = jar.make(a, 5 * minute);
  EXPECT_TRUE(jar.check(c, a, 4 * minute));
  EXPECT_EQ(jar.make(a, 3 * minute), c);
  EXPECT_EQ(jar.current_slot(), 5u);
}

// PROTOCOL.md 3.3: cookie = BLAKE2b-256 keyed with secret[slot] (address ‖ slot as u64).
TEST(CookieJar, MatchesTheSpecifiedFormula) {
  counting_random random;
  cookie_jar jar(random.source());
  const auto a = address(7, 443);
  const std::uint64_t slot = 28'000'000;  // 2023 in minutes since 1970
  const auto c = jar.make(a, slot * minute + 1234);

  std::array<std::uint8_t, 32> secret;
  secret.fill(1);  // the first draw
  byte_vector input(a.begin(), a.end());
  for (int i = 7; i >= 0; --i) input.push_back(static_cast<std::uint8_t>(slot >> (8 * i)));
  std::array<std::uint8_t, 32> expected;
  crypto_generichash(expected.data(), expected.size(), input.data(), input.size(), secret.data(),
                     secret.size());
  EXPECT_EQ(c, expected);
}

TEST(CookieJar, DefaultRandomnessGivesEachJarItsOwnSecrets) {
  cookie_jar one, two;
  const auto a = address(1, 4000);
  EXPECT_NE(one.make(a, 0), two.make(a, 0));
  EXPECT_FALSE(two.check(one.make(a, 0), a, 0));
}

}  // namespace
}  // namespace kadnet::core::crypto
