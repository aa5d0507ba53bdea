// The acceptor of compare-and-swap (dht/cas_acceptor.hpp): promise and accept rules, ballot
// order, the base a lagging replica learns, commits and the writer history, and hostile requests.
#include "kadnet/dht/cas_acceptor.hpp"

#include <gtest/gtest.h>

#include <string>

#include "kadnet/dht/memory_store.hpp"
#include "tests/support/fixed_keys.hpp"
#include "tests/support/signed_store.hpp"

namespace kadnet::dht {
namespace {

namespace wire = core::wire;
using core::node_id;

const core::time_point t0 = core::time_point{} + std::chrono::hours(1000);

byte_vector bytes_of(const std::string& s) { return byte_vector(s.begin(), s.end()); }

node_id id_filled(std::uint8_t b) {
  node_id::bytes_type bytes;
  bytes.fill(b);
  return node_id(bytes);
}

proposal_id proposal_filled(std::uint8_t b) {
  proposal_id p;
  p.fill(b);
  return p;
}

const node_id key = node_id::hash_of(bytes_of("acceptor key"));

wire::store request(wire::consensus_phase phase, std::uint64_t slot, std::uint64_t round, std::uint8_t proposer,
                    std::uint8_t proposal, byte_vector value) {
  wire::store s;
  s.key = key;
  s.version = slot;
  s.ttl_seconds = 3600;
  s.value = std::move(value);
  s.consensus = wire::store_consensus{phase, round, id_filled(proposer), proposal_filled(proposal)};
  return s;
}
wire::store prepare(std::uint64_t slot, std::uint64_t round, std::uint8_t proposer, byte_vector base = {},
                    std::uint8_t proposal = 0xa0) {
  return request(wire::consensus_phase::prepare, slot, round, proposer, proposal, std::move(base));
}
wire::store accept(std::uint64_t slot, std::uint64_t round, std::uint8_t proposer, byte_vector value,
                   std::uint8_t proposal = 0xa0) {
  return request(wire::consensus_phase::accept, slot, round, proposer, proposal, std::move(value));
}
wire::store commit(std::uint64_t slot, byte_vector value, std::uint8_t proposal = 0xa0) {
  return request(wire::consensus_phase::commit, slot, 0, 0, proposal, std::move(value));
}

struct CasAcceptor : ::testing::Test {
  memory_store store;
  cas_acceptor acceptor{store, cas_acceptor_limits{.max_keys = 4, .history = 3, .max_value_size = 64, .idle_lifetime = std::chrono::minutes(1),
                                                    .max_ttl = std::chrono::hours(24)}};

  wire::message_body answer(const wire::store& s) { return acceptor.handle(s, t0); }

  cas_promise promised(const wire::store& s) {
    auto body = answer(s);
    const auto* a = std::get_if<wire::ack>(&body);
    EXPECT_TRUE(a) << "not a promise: " << (std::holds_alternative<wire::nack>(body) ? std::get<wire::nack>(body).text : "");
    cas_promise p;
    if (a) {
      EXPECT_FALSE(decode_promise(a->data, p, 1024));
    }
    return p;
  }
  wire::nack refused(const wire::store& s) {
    auto body = answer(s);
    EXPECT_TRUE(std::holds_alternative<wire::nack>(body));
    return std::holds_alternative<wire::nack>(body) ? std::get<wire::nack>(body) : wire::nack{};
  }
  cas_conflict conflict(const wire::store& s) {
    wire::nack n = refused(s);
    EXPECT_EQ(n.code, wire::nack_code::version_conflict);
    cas_conflict c;
    EXPECT_FALSE(decode_conflict(n.data, c, 1024));
    return c;
  }
  ballot outbid(const wire::store& s) {
    wire::nack n = refused(s);
    EXPECT_EQ(n.code, wire::nack_code::locked);
    ballot b;
    EXPECT_FALSE(decode_ballot(n.data, b));
    return b;
  }
  bool accepted(const wire::store& s) { return std::holds_alternative<wire::ack>(answer(s)); }
  std::uint64_t held_version() {
    auto v = store.get(key, t0);
    return v ? v->version : 0;
  }
};

TEST_F(CasAcceptor, PromisesOnlyBallotsNotBelowThePromisedOne) {
  EXPECT_FALSE(promised(prepare(1, 2, 0x10)).accepted);
  EXPECT_FALSE(promised(prepare(1, 2, 0x10)).accepted) << "the same ballot again (a retransmission)";
  // Same round, lower proposer id: a lower ballot.
  EXPECT_EQ(outbid(prepare(1, 2, 0x05)), (ballot{2, id_filled(0x10)}));
  EXPECT_EQ(outbid(prepare(1, 1, 0xff)), (ballot{2, id_filled(0x10)})) << "rounds compare first";
  EXPECT_FALSE(promised(prepare(1, 3, 0x01)).accepted);
  // An accept below the promise is refused too; at the promise it is taken.
  EXPECT_EQ(outbid(accept(1, 2, 0x10, bytes_of("late"))), (ballot{3, id_filled(0x01)}));
  EXPECT_TRUE(accepted(accept(1, 3, 0x01, bytes_of("v1"))));
  EXPECT_EQ(held_version(), 0u) << "accepting is not committing";
}

TEST_F(CasAcceptor, APromiseReportsTheAcceptedProposal) {
  promised(prepare(1, 1, 0x10));
  ASSERT_TRUE(accepted(accept(1, 1, 0x10, bytes_of("first"), 0xb1)));
  auto p = promised(prepare(1, 2, 0x20));
  ASSERT_TRUE(p.accepted);
  EXPECT_EQ(p.accepted->by, (ballot{1, id_filled(0x10)}));
  EXPECT_EQ(p.accepted->proposal, proposal_filled(0xb1));
  EXPECT_EQ(p.accepted->value, bytes_of("first"));
  // A higher ballot may accept another value; the next promise reports that one.
  ASSERT_TRUE(accepted(accept(1, 2, 0x20, bytes_of("second"), 0xb2)));
  EXPECT_EQ(promised(prepare(1, 3, 0x30)).accepted->value, bytes_of("second"));
}

TEST_F(CasAcceptor, CommitStoresTheVersionAndOpensTheNextSlot) {
  promised(prepare(1, 5, 0x10));
  ASSERT_TRUE(accepted(accept(1, 5, 0x10, bytes_of("one"), 0xc1)));
  ASSERT_TRUE(accepted(commit(1, bytes_of("one"), 0xc1)));
  EXPECT_EQ(held_version(), 1u);
  EXPECT_EQ(store.get(key, t0)->value, bytes_of("one"));
  // Slot 2 starts afresh: a low ballot is fine again, and nothing is accepted there yet.
  auto p = promised(prepare(2, 1, 0x01, bytes_of("one")));
  EXPECT_FALSE(p.accepted);
  // A commit repeated (another proposer's, late) changes nothing and is ACKed.
  EXPECT_TRUE(accepted(commit(1, bytes_of("one"), 0xc1)));
  EXPECT_EQ(held_version(), 1u);
}

TEST_F(CasAcceptor, ADecidedSlotAnswersConflictAndWhichProposalMadeIt) {
  ASSERT_TRUE(accepted(commit(1, bytes_of("one"), 0xc1)));
  ASSERT_TRUE(accepted(commit(2, bytes_of("two"), 0xc2)));
  auto mine = conflict(prepare(1, 9, 0x10, {}, 0xc1));
  EXPECT_EQ(mine.version, 2u);
  EXPECT_EQ(mine.value, bytes_of("two"));
  EXPECT_EQ(mine.writer, proposal_filled(0xc1)) << "slot 1 was made by proposal c1";
  EXPECT_EQ(conflict(accept(2, 9, 0x10, bytes_of("x"), 0xee)).writer, proposal_filled(0xc2));
  // The history is bounded (3 here): old versions are forgotten, and then the writer is unknown.
  ASSERT_TRUE(accepted(commit(3, bytes_of("3"), 0xc3)));
  ASSERT_TRUE(accepted(commit(4, bytes_of("4"), 0xc4)));
  EXPECT_EQ(conflict(prepare(1, 9, 0x10, {}, 0xc1)).writer, std::nullopt);
  EXPECT_EQ(conflict(prepare(2, 9, 0x10, {}, 0xc2)).writer, proposal_filled(0xc2));
}

TEST_F(CasAcceptor, ALaggingReplicaLearnsTheBaseFromThePrepare) {
  ASSERT_TRUE(accepted(commit(1, bytes_of("one"))));
  // Versions 2..4 were decided without this replica; a prepare of slot 5 brings version 4.
  EXPECT_FALSE(promised(prepare(5, 1, 0x10, bytes_of("four"))).accepted);
  EXPECT_EQ(held_version(), 4u);
  EXPECT_EQ(store.get(key, t0)->value, bytes_of("four"));
  // An accept for a slot it cannot build on is refused with the version it holds.
  auto n = refused(accept(7, 1, 0x10, bytes_of("seven")));
  EXPECT_EQ(n.code, wire::nack_code::not_found);
  std::uint64_t held = 0;
  EXPECT_FALSE(decode_version(n.data, held));
  EXPECT_EQ(held, 4u);
}

TEST_F(CasAcceptor, ABaseWithOtherBytesThanTheHeldVersionIsAConflict) {
  ASSERT_TRUE(accepted(commit(1, bytes_of("ours"))));
  auto c = conflict(prepare(2, 1, 0x10, bytes_of("theirs")));
  EXPECT_EQ(c.version, 1u);
  EXPECT_EQ(c.value, bytes_of("ours"));
  EXPECT_EQ(promised(prepare(2, 1, 0x10, bytes_of("ours"))).accepted, std::nullopt);
}

TEST_F(CasAcceptor, APlainStoreOfTheSlotClosesIt) {
  promised(prepare(1, 5, 0x10));
  ASSERT_TRUE(accepted(accept(1, 5, 0x10, bytes_of("pending"))));
  stored_value v;
  v.key = key;
  v.version = 1;
  v.value = bytes_of("replicated");
  v.expires = t0 + std::chrono::hours(1);
  ASSERT_EQ(store.put(v, t0), put_result::stored);
  EXPECT_EQ(conflict(prepare(1, 6, 0x10)).value, bytes_of("replicated"));
  EXPECT_FALSE(promised(prepare(2, 1, 0x10, bytes_of("replicated"))).accepted);
}

TEST_F(CasAcceptor, HostileRequestsAreRefusedWithoutStateChange) {
  EXPECT_EQ(refused(prepare(0, 1, 0x10)).code, wire::nack_code::bad_request) << "slot 0";
  auto no_ttl = accept(1, 1, 0x10, bytes_of("v"));
  no_ttl.ttl_seconds = 0;
  EXPECT_EQ(refused(no_ttl).code, wire::nack_code::bad_request);
  EXPECT_EQ(refused(accept(1, 1, 0x10, byte_vector(65, 1))).code, wire::nack_code::too_large);
  EXPECT_EQ(refused(commit(1, byte_vector(65, 1))).code, wire::nack_code::too_large);
  EXPECT_EQ(acceptor.keys(), 0u);
  EXPECT_EQ(held_version(), 0u);
}

TEST_F(CasAcceptor, AnOwnerSignedKeyRefusesEveryPhase) {
  wire::store s{key, 1, 60, std::nullopt, bytes_of("owned")};
  ASSERT_EQ(store.put(from_store(testing::signed_by(testing::fixed_identity(7), s), t0), t0), put_result::stored);
  for (const auto& r : {prepare(2, 1, 0x10, bytes_of("owned")), accept(2, 1, 0x10, bytes_of("x")), commit(2, bytes_of("x"))}) {
    auto n = refused(r);
    EXPECT_EQ(n.code, wire::nack_code::bad_request);
    EXPECT_NE(n.text.find("owner-signed"), std::string::npos) << n.text;
  }
  EXPECT_EQ(store.get(key, t0)->value, bytes_of("owned"));
}

TEST_F(CasAcceptor, StateIsBoundedAndLivePromisesAreNeverDropped) {
  auto on_key = [](wire::store s, std::uint8_t k) {
    s.key = id_filled(k);
    return s;
  };
  for (std::uint8_t k = 1; k <= 4; ++k) ASSERT_TRUE(accepted(on_key(prepare(1, 1, 0x10), k)));
  EXPECT_EQ(acceptor.keys(), 4u);
  // Full of live promises: a fifth key is refused rather than forgetting one of them.
  EXPECT_EQ(refused(on_key(prepare(1, 1, 0x10), 5)).code, wire::nack_code::quota_full);
  // Once key 1's slot is decided, its state may go.
  ASSERT_TRUE(accepted(on_key(commit(1, bytes_of("done")), 1)));
  EXPECT_TRUE(accepted(on_key(prepare(1, 1, 0x10), 5)));
  EXPECT_EQ(acceptor.keys(), 4u);
}

// Prepares for keys nobody goes on to write (4,096 of them would do it at the default) do not
// shut other keys out for good: a promise nobody went on with for idle_lifetime makes room,
// the one idle longest first, and one still in use keeps its place.
using namespace std::chrono_literals;

TEST_F(CasAcceptor, APromiseNobodyWentOnWithMakesRoomAfterItsIdleLifetime) {
  auto on_key = [](wire::store s, std::uint8_t k) {
    s.key = id_filled(k);
    return s;
  };
  for (std::uint8_t k = 1; k <= 4; ++k)
    ASSERT_TRUE(std::holds_alternative<wire::ack>(acceptor.handle(on_key(prepare(1, 1, 0x10), k), t0 + std::chrono::seconds(k))));
  // Key 1's proposer goes on (an accept at t0 + 50 s): key 2's promise is now the one idle longest.
  ASSERT_TRUE(std::holds_alternative<wire::ack>(acceptor.handle(on_key(accept(1, 1, 0x10, bytes_of("v")), 1), t0 + 50s)));
  auto fifth = [&](core::time_point at) { return acceptor.handle(on_key(prepare(1, 1, 0x10), 5), at); };
  const auto refused_early = fifth(t0 + 61s);
  const auto* early = std::get_if<wire::nack>(&refused_early);
  ASSERT_TRUE(early) << "key 2 was promised at t0 + 2 s: not idle for a minute yet";
  EXPECT_EQ(early->code, wire::nack_code::quota_full);
  EXPECT_TRUE(std::holds_alternative<wire::ack>(fifth(t0 + 62s)));
  EXPECT_EQ(acceptor.keys(), 4u);
  // Key 2 went, not key 1, which kept its accepted value.
  auto key1 = std::get<wire::ack>(acceptor.handle(on_key(prepare(1, 2, 0x10), 1), t0 + 63s));
  cas_promise p;
  ASSERT_FALSE(decode_promise(key1.data, p, 1024));
  ASSERT_TRUE(p.accepted);
  EXPECT_EQ(p.accepted->value, bytes_of("v"));
}

// An accepted value may be the chosen one whose commits were lost: it is not forgotten to make
// room while it could still be live (its TTL, here an hour), however long past idle_lifetime.
// After that it would have expired even had it been committed, so it may go (accepts for keys
// nobody writes cannot hold a table for good).
TEST_F(CasAcceptor, AnAcceptedValueIsKeptForItsTtlWhenRoomIsNeeded) {
  auto on_key = [](wire::store s, std::uint8_t k) {
    s.key = id_filled(k);
    return s;
  };
  for (std::uint8_t k = 1; k <= 4; ++k) {
    ASSERT_TRUE(std::holds_alternative<wire::ack>(acceptor.handle(on_key(prepare(1, 1, 0x10), k), t0)));
    ASSERT_TRUE(std::holds_alternative<wire::ack>(acceptor.handle(on_key(accept(1, 1, 0x10, bytes_of("v")), k), t0)));
  }
  const auto later = acceptor.handle(on_key(prepare(1, 1, 0x10), 5), t0 + 1h - 1s);
  const auto* refused = std::get_if<wire::nack>(&later);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->code, wire::nack_code::quota_full);
  for (std::uint8_t k = 2; k <= 4; ++k) {
    auto again = std::get<wire::ack>(acceptor.handle(on_key(prepare(1, 2, 0x10), k), t0 + 1h - 1s));
    cas_promise p;
    ASSERT_FALSE(decode_promise(again.data, p, 1024));
    EXPECT_TRUE(p.accepted) << "key " << int{k};
  }
  // Key 1, idle for its hour, makes room; the others were touched just now.
  EXPECT_TRUE(std::holds_alternative<wire::ack>(acceptor.handle(on_key(prepare(1, 1, 0x10), 5), t0 + 1h)));
  auto key1 = std::get<wire::ack>(acceptor.handle(on_key(prepare(1, 3, 0x10), 2), t0 + 1h));
  cas_promise p;
  ASSERT_FALSE(decode_promise(key1.data, p, 1024));
  EXPECT_TRUE(p.accepted) << "key 2 kept its accepted value";
}

}  // namespace
}  // namespace kadnet::dht
