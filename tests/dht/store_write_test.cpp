// dht/store_write.cpp: a replica's write path for plain and patched STOREs — a diff applies only
// at the base version, its result goes through the store's rules (the owner signature over the
// whole result, size), and a hostile diff is refused without touching what is held.
#include "kadnet/dht/store_write.hpp"

#include <gtest/gtest.h>

#include "kadnet/core/wire/message.hpp"
#include "kadnet/dht/memory_store.hpp"
#include "tests/support/fixed_keys.hpp"
#include "tests/support/signed_store.hpp"

namespace kadnet::dht {
namespace {

using namespace std::chrono_literals;
using core::time_point;
namespace wire = core::wire;

const time_point t0 = time_point{} + 1000h;

core::node_id key(std::uint8_t n) {
  core::node_id::bytes_type b{};
  b.fill(n);
  return core::node_id(b);
}

byte_vector bytes_of(std::string_view text) {
  auto s = as_bytes(text);
  return {s.begin(), s.end()};
}

wire::store plain(std::uint64_t version, std::string_view text, std::uint32_t ttl = 60) {
  return wire::store{key(1), version, ttl, std::nullopt, bytes_of(text)};
}

// A patched STORE of `version` carrying `diff` (encoded).
wire::store patched(std::uint64_t version, const value_patch& diff, std::uint32_t ttl = 60) {
  wire::store s{key(1), version, ttl, std::nullopt, {}};
  encode_patch(diff, s.value);
  s.patch = true;
  return s;
}

// "hello world" -> "hello kadnet"
value_patch world_to_kadnet() { return value_patch{{splice{6, 5, bytes_of("kadnet")}}}; }

class StoreWrite : public ::testing::Test {
 protected:
  store_write write(const wire::store& s, time_point now = t0) { return write_store(store_, s, limits_, now); }
  std::string held_text(time_point now = t0) {
    auto v = store_.get(key(1), now);
    return v ? std::string(v->value.begin(), v->value.end()) : std::string("<none>");
  }
  std::uint64_t held_version(time_point now = t0) {
    auto v = store_.get(key(1), now);
    return v ? v->version : 0;
  }

  patch_limits limits_{};
  memory_store store_;
};

TEST_F(StoreWrite, PlainStoreGoesToTheStore) {
  auto w = write(plain(1, "hello world"));
  EXPECT_EQ(w.result, put_result::stored);
  EXPECT_EQ(w.held_version, 0u);
  EXPECT_FALSE(w.diff);
  w = write(plain(1, "other"));
  EXPECT_EQ(w.result, put_result::version_conflict);
  EXPECT_EQ(w.held_version, 1u);
}

TEST_F(StoreWrite, PatchAppliesAtTheBaseVersionAndReportsTheDiff) {
  ASSERT_EQ(write(plain(1, "hello world")).result, put_result::stored);
  auto w = write(patched(2, world_to_kadnet(), 30), t0 + 1s);
  EXPECT_EQ(w.result, put_result::stored);
  EXPECT_EQ(w.held_version, 1u);
  ASSERT_TRUE(w.diff);
  EXPECT_EQ(*w.diff, world_to_kadnet());
  EXPECT_EQ(held_text(), "hello kadnet");
  EXPECT_EQ(held_version(), 2u);
  // The patched STORE's TTL is the new value's.
  EXPECT_EQ(store_.get(key(1), t0)->expires, t0 + 1s + 30s);
  // An empty diff is a new version with the same bytes.
  EXPECT_EQ(write(patched(3, value_patch{})).result, put_result::stored);
  EXPECT_EQ(held_text(), "hello kadnet");
  EXPECT_EQ(held_version(), 3u);
}

TEST_F(StoreWrite, PatchAtAnotherVersionIsAConflictNamingTheHeldVersion) {
  // Nothing held: the base is missing.
  auto w = write(patched(2, world_to_kadnet()));
  EXPECT_EQ(w.result, put_result::version_conflict);
  EXPECT_EQ(w.held_version, 0u);
  EXPECT_EQ(held_version(), 0u);

  ASSERT_EQ(write(plain(1, "hello world")).result, put_result::stored);
  for (std::uint64_t version : {1u, 3u, 7u}) {  // same version, a skipped one, far ahead
    w = write(patched(version, world_to_kadnet()));
    EXPECT_EQ(w.result, put_result::version_conflict) << version;
    EXPECT_EQ(w.held_version, 1u) << version;
    EXPECT_FALSE(w.diff);
  }
  EXPECT_EQ(held_text(), "hello world");

  // An expired base is no base.
  w = write(patched(2, world_to_kadnet()), t0 + 61s);
  EXPECT_EQ(w.result, put_result::version_conflict);
  EXPECT_EQ(w.held_version, 0u);
}

TEST_F(StoreWrite, OwnerSignatureCoversTheWholeResult) {
  const core::identity alice = testing::fixed_identity(1);
  const core::identity bob = testing::fixed_identity(2);
  ASSERT_EQ(write(testing::signed_by(alice, plain(1, "hello world"))).result, put_result::stored);

  // Alice signs version 2 = "hello kadnet"; the STORE carries only the diff.
  wire::store good = patched(2, world_to_kadnet());
  good.owner = testing::signed_by(alice, plain(2, "hello kadnet")).owner;

  // A signature over the diff's bytes, or over another result, does not verify.
  wire::store over_diff = testing::signed_by(alice, patched(2, world_to_kadnet()));
  over_diff.patch = true;
  EXPECT_EQ(write(over_diff).result, put_result::bad_signature);
  wire::store other_result = patched(2, world_to_kadnet());
  other_result.owner = testing::signed_by(alice, plain(2, "hello there")).owner;
  EXPECT_EQ(write(other_result).result, put_result::bad_signature);
  // Bob's correct signature of the result: the key is Alice's.
  wire::store bobs = patched(2, world_to_kadnet());
  bobs.owner = testing::signed_by(bob, plain(2, "hello kadnet")).owner;
  EXPECT_EQ(write(bobs).result, put_result::owner_mismatch);
  EXPECT_EQ(held_text(), "hello world");

  EXPECT_EQ(write(good).result, put_result::stored);
  auto held = store_.get(key(1), t0);
  ASSERT_TRUE(held);
  EXPECT_EQ(held->owner, alice.id());
  EXPECT_TRUE(verify_owner_signature(*held));  // what is held is a signed whole value
}

TEST_F(StoreWrite, OversizeResultIsRefused) {
  ASSERT_EQ(write(plain(1, std::string(100, 'a'))).result, put_result::stored);
  // Past the patch limit: refused while applying, before the store sees it.
  limits_.max_value = 120;
  auto w = write(patched(2, value_patch{{splice{100, 0, byte_vector(21, 'b')}}}));
  EXPECT_EQ(w.result, put_result::too_large);
  // Within it but past the store's own limit: the store refuses.
  memory_store small(store_limits{.max_value_size = 110});
  ASSERT_EQ(write_store(small, plain(1, std::string(100, 'a')), limits_, t0).result, put_result::stored);
  EXPECT_EQ(write_store(small, patched(2, value_patch{{splice{100, 0, byte_vector(11, 'b')}}}), limits_, t0).result,
            put_result::too_large);
  EXPECT_EQ(write_store(small, patched(2, value_patch{{splice{100, 0, byte_vector(10, 'b')}}}), limits_, t0).result,
            put_result::stored);
  EXPECT_EQ(held_version(), 1u);
}

TEST_F(StoreWrite, HostileDiffsAreRefusedAndChangeNothing) {
  ASSERT_EQ(write(plain(1, "hello world")).result, put_result::stored);
  auto raw = [](byte_vector body) {
    wire::store s{key(1), 2, 60, std::nullopt, std::move(body)};
    s.patch = true;
    return s;
  };
  const std::vector<std::pair<const char*, wire::store>> cases = {
      {"65,535 splices announced, none present", raw({0xff, 0xff})},
      {"empty body", raw({})},
      {"inserted length 4 GiB", raw({0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})},
      {"offset past the base", patched(2, value_patch{{splice{0xffffffff, 1, {}}}})},
      {"removal past the base", patched(2, value_patch{{splice{6, 0xffffffff, {}}}})},
      {"overlapping splices", patched(2, value_patch{{splice{4, 4, {}}, splice{6, 1, {}}}})},
      {"trailing bytes", [&] {
         auto s = patched(2, world_to_kadnet());
         s.value.push_back(0);
         return s;
       }()},
  };
  for (const auto& [what, s] : cases) {
    auto w = write(s);
    EXPECT_EQ(w.result, put_result::bad_patch) << what;
    EXPECT_FALSE(w.diff) << what;
    EXPECT_EQ(held_text(), "hello world") << what;
    EXPECT_EQ(held_version(), 1u) << what;
    EXPECT_EQ(store_.size(), 1u);
  }
  EXPECT_EQ(to_nack(put_result::bad_patch), wire::nack_code::bad_request);
}

}  // namespace
}  // namespace kadnet::dht
