// How dht/lock_ops.hpp reads a compare-and-swap outcome as a lock outcome: the lease counted from
// when the record was made (not from when the grant was learned), refusals naming the holder, and
// the reason a rule declined.
#include "kadnet/dht/lock_ops.hpp"

#include <gtest/gtest.h>

#include "kadnet/core/errors.hpp"

namespace kadnet::dht {
namespace {

using namespace std::chrono_literals;
using core::errc;
using core::node_id;

const node_id self = node_id::hash_of(as_bytes("self"));
const node_id other = node_id::hash_of(as_bytes("other"));
const core::time_point t0 = core::time_point{} + 1000h;

cas_outcome written(const lock_record& r, std::uint64_t version, core::time_point made) {
  cas_outcome c;
  c.version = version;
  c.value = lock_record_bytes(r);
  c.written = true;
  c.value_since = made;
  return c;
}

TEST(LockOps, AGrantCountsItsLeaseFromWhenTheRecordWasMade) {
  // The grant was learned late (replies lost, another proposer completed it): replicas may have
  // dated it as early as t0, so the holder must not count from t0 + 5 s.
  lock_request req{lock_action::acquire, 0, 2s};
  auto o = to_lock_outcome(req, self, written({true, 4, self, 2s}, 9, t0), t0 + 5s);
  EXPECT_FALSE(o.ec);
  EXPECT_EQ(o.token, 4u);
  EXPECT_EQ(o.holder, self);
  EXPECT_EQ(o.version, 9u);
  EXPECT_EQ(o.granted_at, t0 + 5s);
  EXPECT_EQ(o.expires_at, t0 + 2s);  // over already: the caller sees granted_at >= expires_at
}

TEST(LockOps, ARefusalNamesTheHolderAndTheLongestRemainingLease) {
  cas_outcome c;
  c.ec = errc::locked;
  c.version = 3;
  c.value = lock_record_bytes({true, 2, other, 9s});
  c.locked_by = lock_refusal{other, 2, 4200ms};
  auto o = to_lock_outcome(lock_request{lock_action::acquire, 0, 1s}, self, c, t0);
  EXPECT_EQ(o.ec, errc::locked);
  EXPECT_EQ(o.holder, other);
  EXPECT_EQ(o.token, 2u);
  EXPECT_EQ(o.remaining, 4200ms);
}

TEST(LockOps, ADeclinedRuleSaysWhy) {
  cas_outcome taken;  // fn declined: the current record is another node's grant
  taken.version = 5;
  taken.value = lock_record_bytes({true, 3, other, 1s});
  EXPECT_EQ(to_lock_outcome(lock_request{lock_action::renew, 2, 1s}, self, taken, t0).ec, errc::not_lock_holder);
  cas_outcome junk;
  junk.version = 1;
  junk.value = byte_vector{1, 2};
  EXPECT_EQ(to_lock_outcome(lock_request{lock_action::acquire, 0, 1s}, self, junk, t0).ec, errc::not_a_lock);
  cas_outcome released;  // unlocking a grant released already is done
  released.version = 6;
  released.value = lock_record_bytes({false, 3, self, 0ms});
  EXPECT_FALSE(to_lock_outcome(lock_request{lock_action::release, 3, {}}, self, released, t0).ec);
  EXPECT_EQ(to_lock_outcome(lock_request{lock_action::release, 2, {}}, self, released, t0).ec, errc::not_lock_holder);
  // The update function writes what the rule says, and declines where it does not.
  auto fn = lock_update(lock_request{lock_action::acquire, 0, 1s}, self);
  EXPECT_EQ(fn(std::nullopt), lock_record_bytes({true, 1, self, 1s}));
  EXPECT_EQ(fn(versioned_value{1, byte_vector{7}}), std::nullopt);
  EXPECT_THROW(check_lease(0ms), std::invalid_argument);
  EXPECT_NO_THROW(check_lease(max_lock_lease));
}

}  // namespace
}  // namespace kadnet::dht
