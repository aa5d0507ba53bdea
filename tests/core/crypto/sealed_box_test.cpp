#include "kadnet/core/crypto/sealed_box.hpp"

#include <algorithm>
#include <string_view>

#include <gtest/gtest.h>

#include "tests/support/fixed_keys.hpp"

namespace kadnet::core::crypto {
namespace {

constexpr std::string_view secret = "meet me at the usual place";

bool contains(byte_span haystack, byte_span needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

TEST(SealedBox, OnlyTheRecipientOpensIt) {
  auto bob = testing::fixed_identity(2), eve = testing::fixed_identity(3);
  auto sealed = seal_to(bob.id(), as_bytes(secret));
  ASSERT_TRUE(sealed);
  EXPECT_EQ(sealed->size(), secret.size() + sealed_box_overhead);
  EXPECT_FALSE(contains(*sealed, as_bytes(secret)));
  auto opened = open_sealed(bob, *sealed);
  ASSERT_TRUE(opened);
  EXPECT_EQ(std::string(opened->begin(), opened->end()), secret);
  EXPECT_FALSE(open_sealed(eve, *sealed));
}

TEST(SealedBox, EveryBoxIsFreshEvenForTheSamePlaintext) {
  auto bob = testing::fixed_identity(2);
  EXPECT_NE(*seal_to(bob.id(), as_bytes(secret)), *seal_to(bob.id(), as_bytes(secret)));
}

TEST(SealedBox, AlteredOrTruncatedBoxesDoNotOpen) {
  auto bob = testing::fixed_identity(2);
  auto sealed = *seal_to(bob.id(), as_bytes(secret));
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    auto altered = sealed;
    altered[i] ^= 0x01;
    EXPECT_FALSE(open_sealed(bob, altered)) << "flipped byte " << i;
  }
  for (std::size_t n = 0; n < sealed.size(); ++n)
    EXPECT_FALSE(open_sealed(bob, byte_span(sealed.data(), n))) << "first " << n << " bytes";
}

TEST(SealedBox, AnEmptyPlaintextRoundTrips) {
  auto bob = testing::fixed_identity(2);
  auto sealed = *seal_to(bob.id(), {});
  EXPECT_EQ(sealed.size(), sealed_box_overhead);
  auto opened = open_sealed(bob, sealed);
  ASSERT_TRUE(opened);
  EXPECT_TRUE(opened->empty());
}

TEST(SealedBox, AnIdThatIsNotACurvePointCannotBeSealedTo) {
  // All zero bytes encode a point of small order, which libsodium refuses to convert.
  EXPECT_FALSE(seal_to(node_id{}, as_bytes(secret)));
}

}  // namespace
}  // namespace kadnet::core::crypto
