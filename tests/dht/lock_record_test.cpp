// The lock record and lock refusal codecs (dht/lock_record.hpp), the acquire / renew / release
// rules, and a replica's lease judgement (dht/lease_guard.hpp, kept here beside the record it
// reads), including the acceptor refusing another node's prepare while a lease runs.
#include "kadnet/dht/lock_record.hpp"

#include <limits>

#include <gtest/gtest.h>

#include <chrono>

#include "kadnet/core/errors.hpp"
#include "kadnet/dht/cas_acceptor.hpp"
#include "kadnet/dht/cas_codec.hpp"
#include "kadnet/dht/lease_guard.hpp"
#include "kadnet/dht/memory_store.hpp"

namespace kadnet::dht {
namespace {

using namespace std::chrono_literals;
using core::errc;
using core::node_id;

const node_id alice = node_id::hash_of(as_bytes("alice"));
const node_id bob = node_id::hash_of(as_bytes("bob"));
const node_id key = node_id::hash_of(as_bytes("the lock"));
const core::time_point t0 = core::time_point{} + 1000h;

lock_record held_by(const node_id& who, std::uint64_t token, std::chrono::milliseconds lease = 2s) {
  return lock_record{true, token, who, lease};
}

boost::system::error_code decode(const byte_vector& b) {
  lock_record r;
  return decode_lock_record(b, r);
}

TEST(LockRecord, RoundTripsHeldAndFreeRecords) {
  for (const lock_record& r : {held_by(alice, 7, 1500ms), lock_record{false, 7, alice, 0ms},
                               held_by(bob, UINT64_MAX, max_lock_lease)}) {
    byte_vector b = lock_record_bytes(r);
    ASSERT_EQ(b.size(), lock_record_size);
    lock_record back;
    ASSERT_FALSE(decode_lock_record(b, back));
    EXPECT_EQ(back, r);
  }
  // The layout, byte by byte: magic, state, token, holder, lease ms.
  byte_vector b = lock_record_bytes(held_by(alice, 0x0102030405060708ull, 0x01020304ms));
  EXPECT_EQ(std::string(b.begin(), b.begin() + 13), "kadnet-lock-1");
  EXPECT_EQ(b[13], 1);
  EXPECT_EQ(b[14], 0x01);
  EXPECT_EQ(b[21], 0x08);
  EXPECT_TRUE(std::equal(alice.bytes().begin(), alice.bytes().end(), b.begin() + 22));
  EXPECT_EQ(b[54], 0x01);
  EXPECT_EQ(b[57], 0x04);
}

TEST(LockRecord, EveryTruncationAndTrailingByteIsRefused) {
  byte_vector b = lock_record_bytes(held_by(alice, 3));
  for (std::size_t n = 0; n < b.size(); ++n)
    EXPECT_EQ(decode(byte_vector(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n))), errc::truncated) << n;
  b.push_back(0);
  EXPECT_EQ(decode(b), errc::trailing_bytes);
}

TEST(LockRecord, FieldsOutOfRangeAreRefused) {
  auto with = [](lock_record r, auto change) {
    byte_vector b = lock_record_bytes(r);
    change(b);
    return decode(b);
  };
  const lock_record ok = held_by(alice, 3);
  EXPECT_EQ(with(ok, [](byte_vector& b) { b[0] = 'K'; }), errc::bad_field);           // magic
  EXPECT_EQ(with(ok, [](byte_vector& b) { b[13] = 2; }), errc::bad_field);            // state
  EXPECT_EQ(decode(lock_record_bytes(held_by(alice, 0))), errc::bad_field);           // held, token 0
  EXPECT_EQ(decode(lock_record_bytes(held_by(alice, 3, 0ms))), errc::bad_field);      // held, no lease
  EXPECT_EQ(decode(lock_record_bytes(held_by(alice, 3, max_lock_lease + 1ms))), errc::bad_field);
  EXPECT_EQ(decode(lock_record_bytes(lock_record{false, 3, alice, 5ms})), errc::bad_field);  // free, lease
  EXPECT_FALSE(decode(lock_record_bytes(lock_record{false, 0, alice, 0ms})));         // never granted: fine
  // Any other value of the key is simply not a lock record.
  EXPECT_TRUE(decode(byte_vector{'h', 'i'}));
}

TEST(LockRefusal, RoundTripsAndIsToldApartFromAnOutbidBallot) {
  lock_refusal r{alice, 42, 1234ms};
  byte_vector b;
  encode_lock_refusal(r, b);
  ASSERT_EQ(b.size(), lock_refusal_size);
  lock_refusal back;
  ASSERT_FALSE(decode_lock_refusal(b, back));
  EXPECT_EQ(back, r);
  for (std::size_t n = 0; n < b.size(); ++n)
    EXPECT_EQ(decode_lock_refusal(byte_span(b.data(), n), back), errc::truncated);
  byte_vector longer = b;
  longer.push_back(1);
  EXPECT_EQ(decode_lock_refusal(longer, back), errc::trailing_bytes);
  // Both ride on NACK `locked`: a ballot (40 bytes) is no refusal and a refusal no ballot.
  byte_vector ballot_bytes;
  encode_ballot(ballot{9, bob}, ballot_bytes);
  EXPECT_TRUE(decode_lock_refusal(ballot_bytes, back));
  ballot bl;
  EXPECT_TRUE(decode_ballot(b, bl));
}

std::optional<byte_vector> bytes_of(const lock_record& r) { return lock_record_bytes(r); }

TEST(LockRules, AcquireTakesTheNextTokenWhateverTheLeaseLooksLike) {
  auto first = acquire_step(std::nullopt, alice, 3s);
  ASSERT_TRUE(std::holds_alternative<lock_record>(first));
  EXPECT_EQ(std::get<lock_record>(first), held_by(alice, 1, 3s));
  // Free, held by another (the replicas judge its lease), held by self: always token + 1.
  EXPECT_EQ(std::get<lock_record>(acquire_step(bytes_of({false, 5, bob, 0ms}), alice, 3s)), held_by(alice, 6, 3s));
  EXPECT_EQ(std::get<lock_record>(acquire_step(bytes_of(held_by(bob, 5)), alice, 3s)), held_by(alice, 6, 3s));
  EXPECT_EQ(std::get<lock_record>(acquire_step(bytes_of(held_by(alice, 5)), alice, 3s)), held_by(alice, 6, 3s));
  EXPECT_EQ(std::get<errc>(acquire_step(byte_vector{1, 2, 3}, alice, 3s)), errc::not_a_lock);
  // The largest token has no successor: refused, never wrapped round to token 0 (found by
  // lock_record_fuzzer).
  EXPECT_EQ(std::get<errc>(acquire_step(bytes_of(held_by(bob, std::numeric_limits<std::uint64_t>::max())), alice, 3s)),
            errc::not_a_lock);
}

TEST(LockRules, OnlyTheHolderOfThatTokenRenewsOrReleases) {
  const auto mine = bytes_of(held_by(alice, 5));
  EXPECT_EQ(std::get<lock_record>(renew_step(mine, alice, 5, 9s)), held_by(alice, 5, 9s));
  EXPECT_EQ(std::get<lock_record>(release_step(mine, alice, 5)), (lock_record{false, 5, alice, 0ms}));
  for (auto step : {renew_step(mine, alice, 4, 9s), renew_step(mine, bob, 5, 9s), release_step(mine, alice, 6),
                    release_step(mine, bob, 5), renew_step(std::nullopt, alice, 5, 9s),
                    release_step(bytes_of({false, 5, alice, 0ms}), alice, 5),
                    renew_step(bytes_of({false, 5, alice, 0ms}), alice, 5, 9s)})
    EXPECT_EQ(std::get<errc>(step), errc::not_lock_holder);
  EXPECT_EQ(std::get<errc>(renew_step(byte_vector{7}, alice, 5, 9s)), errc::not_a_lock);
  EXPECT_EQ(std::get<errc>(release_step(byte_vector{7}, alice, 5)), errc::not_a_lock);
}

stored_value stored(const lock_record& r, std::uint64_t version) {
  stored_value v;
  v.key = key;
  v.version = version;
  v.value = lock_record_bytes(r);
  v.expires = t0 + 24h;
  return v;
}

TEST(LeaseGuard, RefusesOthersUntilTheLeaseRunsOutOnItsOwnClock) {
  lease_guard g;
  auto held = std::optional<stored_value>(stored(held_by(alice, 3, 1s), 4));
  g.observe(held, t0);
  EXPECT_FALSE(g.check(alice, held, t0 + 500ms));  // the holder writes freely
  auto refused = g.check(bob, held, t0 + 999ms);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->code, core::wire::nack_code::locked);
  lock_refusal r;
  ASSERT_FALSE(decode_lock_refusal(refused->data, r));
  EXPECT_EQ(r, (lock_refusal{alice, 3, 1ms}));
  EXPECT_FALSE(g.check(bob, held, t0 + 1s));
  // Observing the same version again does not restart its lease; a new version (a renewal) does.
  g.observe(held, t0 + 900ms);
  EXPECT_FALSE(g.check(bob, held, t0 + 1s));
  auto renewed = std::optional<stored_value>(stored(held_by(alice, 3, 1s), 5));
  g.observe(renewed, t0 + 900ms);
  EXPECT_TRUE(g.check(bob, renewed, t0 + 1800ms));
  EXPECT_FALSE(g.check(bob, renewed, t0 + 1900ms));
}

TEST(LeaseGuard, FreeRecordsAndOtherValuesLockNothingAndUnseenRecordsAreDatedWhenJudged) {
  lease_guard g(2);
  auto free_rec = std::optional<stored_value>(stored({false, 3, alice, 0ms}, 6));
  g.observe(free_rec, t0);
  EXPECT_FALSE(g.check(bob, free_rec, t0));
  stored_value other = stored(held_by(alice, 3), 1);
  other.value = {1, 2, 3};
  EXPECT_FALSE(g.check(bob, other, t0));
  EXPECT_FALSE(g.check(bob, std::nullopt, t0));
  // Never observed (e.g. held since before a restart): dated at the first judgement, which only
  // makes the lease here longer than the holder counts it.
  auto unseen = std::optional<stored_value>(stored(held_by(alice, 8, 1s), 9));
  unseen->key = node_id::hash_of(as_bytes("other lock"));
  EXPECT_TRUE(g.check(bob, unseen, t0 + 5s));
  EXPECT_TRUE(g.check(bob, unseen, t0 + 5999ms));
  EXPECT_FALSE(g.check(bob, unseen, t0 + 6s));
  // Bounded: a third key evicts one; the bound holds.
  for (int i = 0; i < 10; ++i) {
    auto v = std::optional<stored_value>(stored(held_by(alice, 1), 1));
    v->key = node_id::hash_of(as_bytes("many " + std::to_string(i)));
    g.observe(v, t0);
  }
  EXPECT_LE(g.dated(), 2u);
}

core::wire::store consensus(core::wire::consensus_phase phase, std::uint64_t version, byte_vector value,
                            const node_id& proposer, std::uint64_t round) {
  core::wire::store s;
  s.key = key;
  s.version = version;
  s.ttl_seconds = 3600;
  s.value = std::move(value);
  s.consensus = core::wire::store_consensus{phase, round, proposer, {}};
  return s;
}

// A replica's compare-and-swap acceptor judging leases with its guard.
struct guarded_replica {
  guarded_replica() { acceptor.set_guard(&g); }
  memory_store store;
  lease_guard g;
  cas_acceptor acceptor{store};
};

TEST(LeaseGuard, AcceptorRefusesAnotherNodesPrepareAfterCatchingUpToTheLease) {
  guarded_replica replica;
  auto& [store, g, acceptor] = replica;
  using core::wire::consensus_phase;
  // This replica lags: it never saw version 1 (alice's grant); bob's prepare carries it as base.
  auto grant = lock_record_bytes(held_by(alice, 1, 2s));
  auto reply = acceptor.handle(consensus(consensus_phase::prepare, 2, grant, bob, 1), bob, t0);
  auto* nack = std::get_if<core::wire::nack>(&reply);
  ASSERT_TRUE(nack);
  EXPECT_EQ(nack->code, core::wire::nack_code::locked);
  EXPECT_EQ(store.get(key, t0)->version, 1u);  // caught up, and dated from now
  // Alice herself may renew; bob may take over once the lease ran out here.
  EXPECT_TRUE(std::holds_alternative<core::wire::ack>(
      acceptor.handle(consensus(consensus_phase::prepare, 2, grant, alice, 2), alice, t0 + 1s)));
  EXPECT_TRUE(std::holds_alternative<core::wire::nack>(
      acceptor.handle(consensus(consensus_phase::accept, 2, lock_record_bytes(held_by(bob, 2)), bob, 3), bob, t0 + 1999ms)));
  EXPECT_TRUE(std::holds_alternative<core::wire::ack>(
      acceptor.handle(consensus(consensus_phase::prepare, 2, grant, bob, 4), bob, t0 + 2s)));
  // Without a sender (the old entry point) no lease is judged.
  EXPECT_TRUE(std::holds_alternative<core::wire::ack>(
      acceptor.handle(consensus(consensus_phase::prepare, 2, grant, bob, 5), t0)));
}

// A prepare's catch-up and a commit store bytes their sender chose, which a replica cannot tell
// from a chosen value: from another node they must not replace a record whose lease is live here.
TEST(LeaseGuard, NeitherACatchUpNorACommitFromAnotherNodeEndsALiveLease) {
  guarded_replica replica;
  auto& [store, g, acceptor] = replica;
  using core::wire::consensus_phase;
  auto grant = lock_record_bytes(held_by(alice, 1, 2s));
  ASSERT_TRUE(std::holds_alternative<core::wire::ack>(acceptor.handle(consensus(consensus_phase::commit, 1, grant, alice, 1), alice, t0)));
  g.observe(store.get(key, t0), t0);
  auto is_locked = [](const core::wire::message_body& reply) {
    const auto* nack = std::get_if<core::wire::nack>(&reply);
    return nack && nack->code == core::wire::nack_code::locked;
  };
  // Bob says version 2 (his own grant) was chosen, and prepares slot 3 on it as its base.
  auto forged = lock_record_bytes(held_by(bob, 2, 24h));
  EXPECT_TRUE(is_locked(acceptor.handle(consensus(consensus_phase::prepare, 3, forged, bob, 2), bob, t0 + 100ms)));
  EXPECT_EQ(store.get(key, t0 + 100ms)->version, 1u);
  EXPECT_EQ(store.get(key, t0 + 100ms)->value, grant);
  // Or commits it outright.
  EXPECT_TRUE(is_locked(acceptor.handle(consensus(consensus_phase::commit, 2, forged, bob, 3), bob, t0 + 100ms)));
  EXPECT_EQ(store.get(key, t0 + 100ms)->value, grant);
  // Alice's own commit goes through; so does bob's catch-up once her lease ran out here.
  auto renewal = lock_record_bytes(held_by(alice, 1, 2s));
  EXPECT_TRUE(std::holds_alternative<core::wire::ack>(acceptor.handle(consensus(consensus_phase::commit, 2, renewal, alice, 4), alice, t0 + 1s)));
  g.observe(store.get(key, t0 + 1s), t0 + 1s);
  EXPECT_TRUE(is_locked(acceptor.handle(consensus(consensus_phase::prepare, 4, forged, bob, 5), bob, t0 + 2500ms)));
  EXPECT_TRUE(std::holds_alternative<core::wire::ack>(
      acceptor.handle(consensus(consensus_phase::prepare, 4, forged, bob, 6), bob, t0 + 3s)));
  EXPECT_EQ(store.get(key, t0 + 3s)->version, 3u);
}

// Versions start again at 1 once a key's value has expired: a lock taken afresh is a new record
// even at a version dated before, and its lease counts from when it arrived. A refresh of the
// same live record (replication, a republish) keeps its date.
TEST(LeaseGuard, ARecordAfterTheOldOneExpiredIsDatedAnewAtTheSameVersion) {
  lease_guard g;
  auto first = std::optional<stored_value>(stored(held_by(alice, 1, 1s), 1));
  first->expires = t0 + 2s;
  g.observe(first, t0);
  auto refreshed = first;
  refreshed->expires = t0 + 1h;
  g.observe(refreshed, t0 + 500ms);
  EXPECT_FALSE(g.check(bob, refreshed, t0 + 1s)) << "a refresh restarted the lease";
  auto afresh = std::optional<stored_value>(stored(held_by(bob, 1, 10s), 1));
  g.observe(afresh, t0 + 2h);
  auto refused = g.check(alice, afresh, t0 + 2h + 1s);
  ASSERT_TRUE(refused) << "bob's new lease was taken for alice's old one";
  EXPECT_EQ(refused->code, core::wire::nack_code::locked);
}

}  // namespace
}  // namespace kadnet::dht
