// One suite for every value_store backend (memory, SQLite): the acceptance rules of
// dht/store_rules.hpp, expiry and quotas must not depend on where values are kept.
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "kadnet/core/identity.hpp"
#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/memory_store.hpp"
#include "kadnet/dht/sqlite_store.hpp"
#include "kadnet/dht/store_rules.hpp"
#include "kadnet/dht/value_store.hpp"
#include "tests/support/fixed_keys.hpp"

namespace kadnet::dht {
namespace {

using namespace std::chrono_literals;
using core::time_point;

const time_point t0 = time_point{} + 1000h;  // whole milliseconds, as the SQLite store keeps them

core::node_id key(std::uint8_t n) {
  core::node_id::bytes_type b{};
  b.fill(n);
  return core::node_id(b);
}

byte_vector bytes_of(std::string_view text) {
  auto s = as_bytes(text);
  return {s.begin(), s.end()};
}

stored_value unowned(std::uint8_t k, std::uint64_t version, std::string_view text,
                     std::chrono::seconds ttl = 60s, time_point now = t0) {
  core::wire::store s;
  s.key = key(k);
  s.version = version;
  s.ttl_seconds = static_cast<std::uint32_t>(ttl.count());
  s.value = bytes_of(text);
  return from_store(s, now);
}

stored_value owned(const core::identity& owner, std::uint8_t k, std::uint64_t version,
                   std::string_view text, std::chrono::seconds ttl = 60s, time_point now = t0) {
  core::wire::store s;
  s.key = key(k);
  s.version = version;
  s.ttl_seconds = static_cast<std::uint32_t>(ttl.count());
  s.value = bytes_of(text);
  s.owner = core::wire::store_owner{owner.id(), owner.sign(core::wire::store_signed_bytes(s))};
  return from_store(s, now);
}

std::filesystem::path make_temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "kadnet-store-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

struct backend {
  std::string name;
  std::function<std::unique_ptr<value_store>(const store_limits&, const std::filesystem::path&)> make;
};

class ValueStoreTest : public ::testing::TestWithParam<backend> {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    store_ = GetParam().make({}, dir_);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  // A store with other limits, in place of the default one (nothing put yet).
  value_store& with_limits(const store_limits& limits) {
    store_.reset();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directory(dir_);
    store_ = GetParam().make(limits, dir_);
    return *store_;
  }
  // Puts `v` and expects `expected`; on a refusal, expects the held value unchanged.
  void expect_put(const stored_value& v, put_result expected, time_point now = t0) {
    auto before = store_->get(v.key, now);
    std::size_t size = store_->size(), bytes = store_->bytes();
    EXPECT_EQ(store_->put(v, now), expected);
    if (!accepted(expected)) {
      EXPECT_EQ(store_->get(v.key, now), before);
      EXPECT_EQ(store_->size(), size);
      EXPECT_EQ(store_->bytes(), bytes);
    }
  }

  std::filesystem::path dir_;
  std::unique_ptr<value_store> store_;
  const core::identity alice_ = testing::fixed_identity(1);
  const core::identity bob_ = testing::fixed_identity(2);
};

TEST_P(ValueStoreTest, PutThenGet) {
  auto v = unowned(1, 1, "hello");
  EXPECT_EQ(store_->put(v, t0), put_result::stored);
  auto got = store_->get(key(1), t0);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, v);
  EXPECT_EQ(got->expires, t0 + 60s);
  EXPECT_FALSE(store_->get(key(2), t0));
  EXPECT_EQ(store_->size(), 1u);
  EXPECT_EQ(store_->bytes(), 5u);
}

TEST_P(ValueStoreTest, EmptyValueIsAValue) {
  EXPECT_EQ(store_->put(unowned(1, 1, ""), t0), put_result::stored);
  auto got = store_->get(key(1), t0);
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->value.empty());
  EXPECT_EQ(store_->put(unowned(1, 1, ""), t0), put_result::refreshed);
}

TEST_P(ValueStoreTest, ExpiresAtExactlyExpires) {
  ASSERT_EQ(store_->put(unowned(1, 1, "short", 10s), t0), put_result::stored);
  ASSERT_EQ(store_->put(unowned(2, 1, "long", 20s), t0), put_result::stored);
  EXPECT_EQ(store_->next_expiry(), t0 + 10s);

  EXPECT_TRUE(store_->get(key(1), t0 + 10s - 1ms));
  EXPECT_EQ(store_->all(t0 + 10s - 1ms).size(), 2u);
  EXPECT_FALSE(store_->get(key(1), t0 + 10s));
  EXPECT_FALSE(store_->get(key(1), t0 + 11s));
  EXPECT_EQ(store_->all(t0 + 10s).size(), 1u);
  EXPECT_EQ(store_->size(), 2u);  // held until expire()

  EXPECT_EQ(store_->expire(t0 + 10s - 1ms), 0u);
  EXPECT_EQ(store_->expire(t0 + 10s), 1u);
  EXPECT_EQ(store_->size(), 1u);
  EXPECT_EQ(store_->bytes(), 4u);
  EXPECT_EQ(store_->next_expiry(), t0 + 20s);
  EXPECT_EQ(store_->expire(t0 + 10s), 0u);

  EXPECT_EQ(store_->expire(t0 + 1h), 1u);
  EXPECT_EQ(store_->size(), 0u);
  EXPECT_EQ(store_->bytes(), 0u);
  EXPECT_FALSE(store_->next_expiry());
}

TEST_P(ValueStoreTest, TtlIsClampedToMaxTtl) {
  ASSERT_EQ(store_->put(unowned(1, 1, "x", 48h), t0), put_result::stored);
  EXPECT_EQ(store_->get(key(1), t0)->expires, t0 + default_value_ttl);
}

TEST_P(ValueStoreTest, UnownedVersionRules) {
  ASSERT_EQ(store_->put(unowned(1, 5, "five"), t0), put_result::stored);
  expect_put(unowned(1, 4, "four"), put_result::version_conflict);
  expect_put(unowned(1, 5, "FIVE"), put_result::version_conflict);

  // Same version and bytes: the TTL is extended, never shortened.
  EXPECT_EQ(store_->put(unowned(1, 5, "five", 120s), t0), put_result::refreshed);
  EXPECT_EQ(store_->get(key(1), t0)->expires, t0 + 120s);
  EXPECT_EQ(store_->put(unowned(1, 5, "five", 10s), t0), put_result::refreshed);
  EXPECT_EQ(store_->get(key(1), t0)->expires, t0 + 120s);
  EXPECT_EQ(store_->expire(t0 + 60s), 0u);  // the expiry index followed the refresh

  EXPECT_EQ(store_->put(unowned(1, 6, "six"), t0), put_result::stored);
  EXPECT_EQ(store_->get(key(1), t0)->value, bytes_of("six"));
  EXPECT_EQ(store_->get(key(1), t0)->expires, t0 + 60s);
  EXPECT_EQ(store_->size(), 1u);
  EXPECT_EQ(store_->bytes(), 3u);
}

TEST_P(ValueStoreTest, ExpiredValueNoLongerBindsItsKey) {
  ASSERT_EQ(store_->put(unowned(1, 5, "five", 10s), t0), put_result::stored);
  ASSERT_EQ(store_->put(owned(alice_, 2, 5, "alice", 10s), t0), put_result::stored);
  // Not yet removed by expire(), but dead: lower versions and other owners may take the keys.
  EXPECT_EQ(store_->put(unowned(1, 1, "one", 10s, t0 + 10s), t0 + 10s), put_result::stored);
  EXPECT_EQ(store_->put(owned(bob_, 2, 1, "bob", 10s, t0 + 10s), t0 + 10s), put_result::stored);
  EXPECT_EQ(store_->get(key(2), t0 + 10s)->owner, bob_.id());
  EXPECT_EQ(store_->size(), 2u);
  EXPECT_EQ(store_->bytes(), 6u);
}

TEST_P(ValueStoreTest, OwnerMayPublishNewerVersions) {
  ASSERT_EQ(store_->put(owned(alice_, 1, 1, "v1"), t0), put_result::stored);
  EXPECT_EQ(store_->put(owned(alice_, 1, 2, "v2"), t0), put_result::stored);
  auto got = store_->get(key(1), t0);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->version, 2u);
  EXPECT_EQ(got->value, bytes_of("v2"));
  EXPECT_EQ(got->owner, alice_.id());
  EXPECT_TRUE(verify_owner_signature(*got));
  EXPECT_EQ(store_->put(owned(alice_, 1, 100, "v100"), t0), put_result::stored);
}

TEST_P(ValueStoreTest, OwnerVersionsMustIncrease) {
  ASSERT_EQ(store_->put(owned(alice_, 1, 3, "v3"), t0), put_result::stored);
  expect_put(owned(alice_, 1, 2, "v2"), put_result::version_conflict);
  expect_put(owned(alice_, 1, 3, "other v3"), put_result::version_conflict);
  EXPECT_EQ(store_->put(owned(alice_, 1, 3, "v3", 90s), t0), put_result::refreshed);
  auto got = store_->get(key(1), t0);
  EXPECT_EQ(got->value, bytes_of("v3"));
  EXPECT_EQ(got->expires, t0 + 90s);
}

TEST_P(ValueStoreTest, OtherOwnerIsRefused) {
  ASSERT_EQ(store_->put(owned(alice_, 1, 3, "alice"), t0), put_result::stored);
  expect_put(owned(bob_, 1, 9, "bob"), put_result::owner_mismatch);
  expect_put(owned(bob_, 1, 3, "alice"), put_result::owner_mismatch);
  expect_put(unowned(1, 9, "anyone"), put_result::owner_mismatch);
}

// A live unowned key stays unowned: else anyone could sign a higher version of a free lock or a
// compare-and-swap key and shut every other writer out. Once it expired, it is anyone's again.
TEST_P(ValueStoreTest, ALiveUnownedKeyIsNotClaimedByASignedVersion) {
  ASSERT_EQ(store_->put(unowned(1, 1, "open"), t0), put_result::stored);
  expect_put(owned(alice_, 1, 2, "mine"), put_result::owner_mismatch);
  EXPECT_EQ(store_->get(key(1), t0)->value, bytes_of("open"));
  EXPECT_EQ(store_->put(unowned(1, 2, "still open"), t0), put_result::stored);
  const auto expired = store_->get(key(1), t0)->expires;
  EXPECT_EQ(store_->put(owned(alice_, 1, 1, "mine", 60s, expired), expired), put_result::stored);
  expect_put(unowned(1, 3, "open again", 60s, expired), put_result::owner_mismatch, expired);
}

TEST_P(ValueStoreTest, ForgedSignatureIsRefused) {
  ASSERT_EQ(store_->put(owned(alice_, 1, 1, "v1"), t0), put_result::stored);

  auto flipped = owned(alice_, 1, 2, "v2");
  (*flipped.sig)[10] ^= 0x01;
  expect_put(flipped, put_result::bad_signature);

  auto altered = owned(alice_, 1, 2, "v2");
  altered.value = bytes_of("v2!");
  expect_put(altered, put_result::bad_signature);

  auto bumped = owned(alice_, 1, 2, "v2");
  bumped.version = 3;
  expect_put(bumped, put_result::bad_signature);

  auto impostor = owned(bob_, 1, 2, "v2");  // bob's signature, alice's name
  impostor.owner = alice_.id();
  expect_put(impostor, put_result::bad_signature);

  auto unsigned_owner = owned(alice_, 1, 2, "v2");
  unsigned_owner.sig.reset();
  expect_put(unsigned_owner, put_result::bad_signature);

  // On a free key too: nothing is stored.
  auto forged_new = owned(alice_, 7, 1, "new");
  (*forged_new.sig)[0] ^= 0x80;
  expect_put(forged_new, put_result::bad_signature);
  EXPECT_FALSE(store_->get(key(7), t0));
}

TEST_P(ValueStoreTest, TooLargeIsRefused) {
  stored_value big = unowned(1, 1, "");
  big.value.assign(default_max_value_size + 1, 0xab);
  expect_put(big, put_result::too_large);
  EXPECT_FALSE(store_->get(key(1), t0));
  big.value.resize(default_max_value_size);
  EXPECT_EQ(store_->put(big, t0), put_result::stored);
  EXPECT_EQ(store_->bytes(), default_max_value_size);
}

TEST_P(ValueStoreTest, QuotaByCount) {
  store_limits limits;
  limits.max_values = 2;
  with_limits(limits);
  ASSERT_EQ(store_->put(unowned(1, 1, "a", 10s), t0), put_result::stored);
  ASSERT_EQ(store_->put(unowned(2, 1, "b"), t0), put_result::stored);
  expect_put(unowned(3, 1, "c"), put_result::quota_full);
  EXPECT_FALSE(store_->get(key(3), t0));
  // Replacing a held key adds nothing.
  EXPECT_EQ(store_->put(unowned(2, 2, "b2"), t0), put_result::stored);
  EXPECT_EQ(store_->size(), 2u);
  // An expired value makes room without an explicit expire().
  EXPECT_EQ(store_->put(unowned(3, 1, "c", 60s, t0 + 10s), t0 + 10s), put_result::stored);
  EXPECT_EQ(store_->size(), 2u);
  EXPECT_FALSE(store_->get(key(1), t0 + 10s));
}

TEST_P(ValueStoreTest, QuotaByBytes) {
  store_limits limits;
  limits.max_bytes = 10;
  with_limits(limits);
  ASSERT_EQ(store_->put(unowned(1, 1, "123456"), t0), put_result::stored);
  ASSERT_EQ(store_->put(unowned(2, 1, "abcd"), t0), put_result::stored);  // exactly full
  expect_put(unowned(3, 1, "x"), put_result::quota_full);
  expect_put(unowned(1, 2, "1234567"), put_result::quota_full);  // 11 bytes after the swap
  EXPECT_EQ(store_->put(unowned(1, 2, "12"), t0), put_result::stored);
  EXPECT_EQ(store_->bytes(), 6u);
  EXPECT_EQ(store_->put(unowned(1, 3, "123456"), t0), put_result::stored);
  EXPECT_EQ(store_->bytes(), 10u);
}

TEST_P(ValueStoreTest, QuotaFullAnswersAClearNack) {
  store_limits limits;
  limits.max_values = 1;
  with_limits(limits);
  ASSERT_EQ(store_->put(unowned(1, 1, "a"), t0), put_result::stored);
  put_result r = store_->put(unowned(2, 1, "b"), t0);
  ASSERT_EQ(r, put_result::quota_full);
  auto n = make_nack(r);
  EXPECT_EQ(n.code, core::wire::nack_code::quota_full);
  EXPECT_EQ(n.request_opcode, static_cast<std::uint8_t>(core::wire::opcode::store));
  EXPECT_FALSE(n.text.empty());
}

TEST_P(ValueStoreTest, AllListsLiveValuesForRepublish) {
  auto mine = owned(alice_, 3, 1, "mine");
  mine.original = true;
  ASSERT_EQ(store_->put(mine, t0), put_result::stored);
  ASSERT_EQ(store_->put(unowned(1, 1, "held"), t0), put_result::stored);
  ASSERT_EQ(store_->put(unowned(2, 1, "brief", 5s), t0), put_result::stored);

  auto live = store_->all(t0 + 5s);
  ASSERT_EQ(live.size(), 2u);
  EXPECT_EQ(live[0].key, key(1));  // key order
  EXPECT_FALSE(live[0].original);
  EXPECT_EQ(live[1], mine);
  EXPECT_TRUE(live[1].original);

  // What republishing sends: the remaining TTL, the owner's signature unchanged.
  auto wire = to_store(live[1], t0 + 5s);
  EXPECT_EQ(wire.ttl_seconds, 55u);
  ASSERT_TRUE(wire.owner);
  EXPECT_EQ(wire.owner->owner, alice_.id());
  EXPECT_TRUE(verify_owner_signature(from_store(wire, t0)));
}

TEST_P(ValueStoreTest, RefreshFromTheNetworkKeepsOriginal) {
  auto mine = unowned(1, 1, "mine");
  mine.original = true;
  ASSERT_EQ(store_->put(mine, t0), put_result::stored);
  EXPECT_EQ(store_->put(unowned(1, 1, "mine", 120s), t0), put_result::refreshed);
  auto got = store_->get(key(1), t0);
  EXPECT_TRUE(got->original);
  EXPECT_EQ(got->expires, t0 + 120s);
}

INSTANTIATE_TEST_SUITE_P(
    Backends, ValueStoreTest,
    ::testing::Values(
        backend{"Memory",
                [](const store_limits& l, const std::filesystem::path&) -> std::unique_ptr<value_store> {
                  return std::make_unique<memory_store>(l);
                }},
        backend{"Sqlite",
                [](const store_limits& l, const std::filesystem::path& dir) -> std::unique_ptr<value_store> {
                  return std::make_unique<sqlite_store>(dir, l);
                }}),
    [](const ::testing::TestParamInfo<backend>& info) { return info.param.name; });

TEST(ValueStoreNack, CodesAndTexts) {
  using core::wire::nack_code;
  EXPECT_EQ(to_nack(put_result::version_conflict), nack_code::version_conflict);
  EXPECT_EQ(to_nack(put_result::quota_full), nack_code::quota_full);
  EXPECT_EQ(to_nack(put_result::too_large), nack_code::too_large);
  EXPECT_EQ(to_nack(put_result::bad_signature), nack_code::bad_request);
  EXPECT_EQ(to_nack(put_result::owner_mismatch), nack_code::bad_request);
  EXPECT_EQ(to_nack(put_result::storage_failed), nack_code::handler_failed);
  // The same code, told apart by the text.
  EXPECT_NE(nack_text(put_result::bad_signature), nack_text(put_result::owner_mismatch));
  EXPECT_TRUE(accepted(put_result::refreshed));
  EXPECT_FALSE(accepted(put_result::quota_full));
}

TEST(StoredValue, FromStoreAndSignature) {
  auto alice = testing::fixed_identity(1);
  auto v = owned(alice, 4, 7, "payload", 30s);
  EXPECT_EQ(v.key, key(4));
  EXPECT_EQ(v.version, 7u);
  EXPECT_EQ(v.expires, t0 + 30s);
  EXPECT_EQ(v.owner, alice.id());
  EXPECT_FALSE(v.original);
  EXPECT_TRUE(verify_owner_signature(v));
  EXPECT_TRUE(verify_owner_signature(unowned(4, 7, "payload")));
  auto no_owner = v;
  no_owner.owner.reset();
  EXPECT_FALSE(verify_owner_signature(no_owner));
  EXPECT_EQ(to_store(v, t0 + 31s).ttl_seconds, 0u);
}

}  // namespace
}  // namespace kadnet::dht
