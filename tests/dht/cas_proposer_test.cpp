// The proposer of compare-and-swap (dht/cas_proposer.hpp) against real acceptors
// (dht/cas_acceptor.hpp) over memory stores, with a hand-driven delivery queue: completing an
// accepted value, conflicts, outbidding and backoff, lost replies, no quorum, malformed replies,
// update(), and two proposers of one slot.
#include "kadnet/dht/cas_proposer.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kadnet/core/errors.hpp"
#include "kadnet/dht/cas_acceptor.hpp"
#include "kadnet/dht/dht_codec.hpp"
#include "kadnet/dht/memory_store.hpp"
#include "tests/support/fixed_keys.hpp"
#include "tests/support/signed_store.hpp"

namespace kadnet::dht {
namespace {

namespace wire = core::wire;
using core::errc;
using core::node_id;
using namespace std::chrono_literals;

const core::time_point t0 = core::time_point{} + std::chrono::hours(1000);
const node_id key = node_id::hash_of(as_bytes(std::string_view("proposer key")));

byte_vector bytes_of(const std::string& s) { return byte_vector(s.begin(), s.end()); }

node_id id_filled(std::uint8_t b) {
  node_id::bytes_type bytes;
  bytes.fill(b);
  return node_id(bytes);
}

core::reply timeout() {
  core::reply r;
  r.ec = errc::timeout;
  return r;
}

core::reply reply_of(wire::message_body body) {
  core::reply r;
  if (auto* a = std::get_if<wire::ack>(&body)) {
    r.data = a->data;
    return r;
  }
  auto& n = std::get<wire::nack>(body);
  r.ec = errc::nack;
  r.code = n.code;
  r.data = n.data;
  return r;
}

const wire::store* as_store(const wire::message_body& body) { return std::get_if<wire::store>(&body); }
bool is_phase(const wire::message_body& body, wire::consensus_phase phase) {
  auto* s = as_store(body);
  return s && s->consensus && s->consensus->phase == phase;
}

// Replicas (an acceptor over a memory store each) and the proposers talking to them. Requests
// are handled in the order they were sent; a reply goes straight back to its proposer.
struct cluster {
  struct replica {
    memory_store store;
    cas_acceptor acceptor{store};
    bool down = false;  // handles nothing, answers timeout
  };
  struct in_flight {
    cas_proposer* from;
    cas_proposer::send request;
  };

  explicit cluster(std::size_t n, std::uint64_t seed = 1) : rng(seed) {
    for (std::size_t i = 0; i < n; ++i) replicas.push_back(std::make_unique<replica>());
  }

  std::vector<std::unique_ptr<replica>> replicas;
  std::mt19937_64 rng;
  core::time_point now = t0;
  // Called for every request a live replica handled: true loses its reply.
  std::function<bool(std::size_t replica, const wire::message_body&)> lose_reply;
  // Called instead of the replica for a request: a reply to hand back, or nothing to handle it.
  std::function<std::optional<core::reply>(std::size_t replica, const wire::message_body&)> forge;
  std::vector<wire::message_body> sent;  // every request, in order

  cas_proposer::settings settings(std::uint8_t self = 0x10, cas_config config = {}) {
    cas_proposer::settings s;
    s.key = key;
    s.self = id_filled(self);
    s.replicas = replicas.size();
    s.ttl = 3600s;
    s.config = config;
    s.random = [this](mutable_byte_span out) {
      for (auto& b : out) b = static_cast<std::uint8_t>(rng());
    };
    return s;
  }

  core::reply answer(std::size_t i, const wire::message_body& body) {
    if (forge)
      if (auto r = forge(i, body)) return *r;
    replica& r = *replicas.at(i);
    if (r.down) return timeout();
    core::reply out;
    if (std::holds_alternative<wire::find_value>(body)) {
      wire::ack a{static_cast<std::uint8_t>(wire::opcode::find_value), {}};
      if (auto held = r.store.get(key, now)) {
        wire::store s = to_store(*held, now);
        encode_find_value_reply(wire_value{s.version, s.ttl_seconds, held->owner, held->sig, s.value}, a.data);
      } else {
        encode_find_value_reply(std::vector<wire_contact>{}, a.data);
      }
      out = reply_of(a);
    } else {
      out = reply_of(r.acceptor.handle(std::get<wire::store>(body), now));
    }
    if (lose_reply && lose_reply(i, body)) return timeout();
    return out;
  }

  // Runs the proposers until all have finished; returns their outcomes in order.
  std::vector<cas_outcome> run(std::vector<cas_proposer*> proposers) {
    std::deque<in_flight> queue;
    std::vector<std::optional<cas_outcome>> done(proposers.size());
    for (int step = 0; step < 1000000; ++step) {
      std::optional<core::time_point> wake;
      for (std::size_t p = 0; p < proposers.size(); ++p) {
        if (done[p]) continue;
        for (;;) {
          auto a = proposers[p]->next(now);
          if (auto* s = std::get_if<cas_proposer::send>(&a)) {
            sent.push_back(s->body);
            queue.push_back(in_flight{proposers[p], std::move(*s)});
            continue;
          }
          if (auto* w = std::get_if<cas_proposer::waiting>(&a)) {
            if (w->until && (!wake || *w->until < *wake)) wake = w->until;
            break;
          }
          done[p] = std::get<cas_proposer::finished>(a).outcome;
          break;
        }
      }
      if (!queue.empty()) {
        in_flight f = std::move(queue.front());
        queue.pop_front();
        f.from->on_reply(f.request.replica, f.request.tag, answer(f.request.replica, f.request.body), now);
        continue;
      }
      if (std::all_of(done.begin(), done.end(), [](const auto& d) { return d.has_value(); })) break;
      if (!wake) {
        ADD_FAILURE() << "a proposer waits for nothing";
        break;
      }
      now = std::max(now, *wake);
    }
    std::vector<cas_outcome> out;
    cas_outcome unfinished;
    unfinished.ec = errc::timeout;
    for (auto& d : done) out.push_back(d.value_or(unfinished));
    return out;
  }
  cas_outcome run(cas_proposer& p) { return run(std::vector<cas_proposer*>{&p})[0]; }

  std::size_t holding(std::uint64_t version, const byte_vector& value) {
    std::size_t n = 0;
    for (auto& r : replicas) {
      auto v = r->store.get(key, now);
      if (v && v->version == version && v->value == value) ++n;
    }
    return n;
  }
};

// Makes replica i accept `value` for slot 1 under ballot (round, proposer), as a proposer that
// then vanished would have left it.
void leave_accepted(cluster& c, std::size_t i, std::uint64_t round, std::uint8_t proposer, const byte_vector& value) {
  wire::store s;
  s.key = key;
  s.version = 1;
  s.ttl_seconds = 60;
  s.value = value;
  s.consensus = wire::store_consensus{wire::consensus_phase::prepare, round, id_filled(proposer), {}};
  s.value.clear();
  ASSERT_TRUE(std::holds_alternative<wire::ack>(c.replicas[i]->acceptor.handle(s, c.now)));
  s.consensus->phase = wire::consensus_phase::accept;
  s.consensus->proposal.fill(proposer);
  s.value = value;
  ASSERT_TRUE(std::holds_alternative<wire::ack>(c.replicas[i]->acceptor.handle(s, c.now)));
}

// Every replica of the cluster promises slot 1 to the ballot (round, proposer id_filled(proposer)).
void promise_everywhere(cluster& c, std::uint64_t round, std::uint8_t proposer) {
  for (auto& replica : c.replicas) {
    wire::store s;
    s.key = key;
    s.version = 1;
    s.ttl_seconds = 60;
    s.consensus = wire::store_consensus{wire::consensus_phase::prepare, round, id_filled(proposer), {}};
    ASSERT_TRUE(std::holds_alternative<wire::ack>(replica->acceptor.handle(s, c.now)));
  }
}

TEST(CasProposer, WritesAndCommitsEverywhere) {
  cluster c(5);
  cas_proposer p(c.settings(), 0, bytes_of("first"));
  auto r = c.run(p);
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_TRUE(r.written);
  EXPECT_EQ(r.version, 1u);
  EXPECT_EQ(r.value, bytes_of("first"));
  EXPECT_EQ(c.holding(1, bytes_of("first")), 5u);
  EXPECT_EQ(r.attempts, 2u) << "one read, one prepare round";

  cas_proposer second(c.settings(), 1, bytes_of("second"));
  EXPECT_EQ(c.run(second).version, 2u);
  EXPECT_EQ(c.holding(2, bytes_of("second")), 5u);
}

TEST(CasProposer, AWrongExpectedVersionIsAConflictWithTheCurrentValue) {
  cluster c(5);
  cas_proposer create(c.settings(), 0, bytes_of("v1"));
  ASSERT_TRUE(c.run(create).written);
  cas_proposer stale(c.settings(), 0, bytes_of("again"));
  auto r = c.run(stale);
  EXPECT_EQ(r.ec, errc::cas_conflict);
  EXPECT_EQ(r.version, 1u);
  EXPECT_EQ(r.value, bytes_of("v1"));
  EXPECT_FALSE(r.maybe_written);
  EXPECT_EQ(c.holding(1, bytes_of("v1")), 5u);
}

TEST(CasProposer, CompletesAnAcceptedValueAndReportsItAsTheConflict) {
  cluster c(5);
  // A writer got "theirs" accepted by two replicas under a ballot below ours and vanished. Our
  // majority of promises includes them, so Paxos makes us finish "theirs" first (it may have
  // been chosen, for all we know).
  leave_accepted(c, 0, 1, 0x01, bytes_of("theirs"));
  leave_accepted(c, 1, 1, 0x01, bytes_of("theirs"));
  cas_proposer p(c.settings(), 0, bytes_of("mine"));
  auto r = c.run(p);
  EXPECT_EQ(r.ec, errc::cas_conflict);
  EXPECT_FALSE(r.written);
  EXPECT_EQ(r.version, 1u);
  EXPECT_EQ(r.value, bytes_of("theirs"));
  EXPECT_EQ(c.holding(1, bytes_of("theirs")), 5u);
  EXPECT_EQ(c.holding(1, bytes_of("mine")), 0u);
}

TEST(CasProposer, TheHighestBallotsAcceptedValueWins) {
  cluster c(5);
  leave_accepted(c, 0, 1, 0x70, bytes_of("older"));
  leave_accepted(c, 1, 4, 0x71, bytes_of("newer"));
  leave_accepted(c, 2, 2, 0x72, bytes_of("middle"));
  cas_proposer p(c.settings(), 0, bytes_of("mine"));
  auto r = c.run(p);
  EXPECT_EQ(r.value, bytes_of("newer"));
  EXPECT_EQ(c.holding(1, bytes_of("newer")), 5u);
}

TEST(CasProposer, OutbidRetriesAboveTheBallotSeenAfterABackoff) {
  cluster c(5);
  promise_everywhere(c, 7, 0x70);
  cas_proposer p(c.settings(0x10, cas_config{.backoff_min = 100ms}), 0, bytes_of("mine"));
  auto r = c.run(p);
  ASSERT_TRUE(r.written) << r.ec.message();
  EXPECT_EQ(r.attempts, 3u) << "read, outbid prepare, prepare";
  std::vector<std::uint64_t> prepare_rounds;
  for (const auto& m : c.sent)
    if (is_phase(m, wire::consensus_phase::prepare)) prepare_rounds.push_back(as_store(m)->consensus->round);
  ASSERT_EQ(prepare_rounds.size(), 10u);
  EXPECT_EQ(prepare_rounds.front(), 1u);
  EXPECT_EQ(prepare_rounds.back(), 8u) << "one above the promised round 7";
  EXPECT_LE(c.now - t0, 100ms) << "the first backoff is below backoff_min";
}

// A replica can promise the highest round there is (any peer may prepare with it). The round
// after it does not wrap to 0, where ballots already used would come round again: with no round
// left to outbid it, the proposer gives up.
TEST(CasProposer, OutbidAtTheHighestRoundDoesNotWrapTheRound) {
  cluster c(5);
  promise_everywhere(c, UINT64_MAX, 0x01);
  cas_proposer p(c.settings(0x10, cas_config{.backoff_min = 100ms}), 0, bytes_of("mine"));
  auto r = c.run(p);
  EXPECT_FALSE(r.written);
  EXPECT_EQ(r.ec, errc::no_quorum);
  std::vector<std::uint64_t> prepare_rounds;
  for (const auto& m : c.sent)
    if (is_phase(m, wire::consensus_phase::prepare)) prepare_rounds.push_back(as_store(m)->consensus->round);
  ASSERT_FALSE(prepare_rounds.empty());
  for (std::uint64_t round : prepare_rounds) EXPECT_EQ(round, 1u) << "only the first round, then nothing above the highest";
}

TEST(CasProposer, LostAcceptRepliesStillEndInSuccess) {
  cluster c(5);
  // Every reply to the first accept round is lost: the value is chosen, but the proposer cannot
  // tell. Its next prepare finds its own value accepted, completes it, and reports success.
  int accepts = 0;
  c.lose_reply = [&](std::size_t, const wire::message_body& m) {
    return is_phase(m, wire::consensus_phase::accept) && ++accepts <= 5;
  };
  cas_proposer p(c.settings(), 0, bytes_of("once"));
  auto r = c.run(p);
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_TRUE(r.written);
  EXPECT_EQ(r.version, 1u);
  EXPECT_EQ(c.holding(1, bytes_of("once")), 5u);
}

TEST(CasProposer, ALostSuccessLearnedFromTheWriterHistory) {
  cluster c(5);
  // The accepts' replies are lost and meanwhile another proposer completed our value and
  // committed it: our retry hears "decided, by your proposal".
  std::optional<proposal_id> ours;
  c.lose_reply = [&](std::size_t i, const wire::message_body& m) {
    if (!is_phase(m, wire::consensus_phase::accept)) return false;
    if (!ours) {
      ours = as_store(m)->consensus->proposal;
      for (std::size_t j = 0; j < 5; ++j) {
        wire::store commit = *as_store(m);
        commit.consensus->phase = wire::consensus_phase::commit;
        c.replicas[j]->acceptor.handle(commit, c.now);
      }
    }
    return i < 5;
  };
  cas_proposer p(c.settings(), 0, bytes_of("mine"));
  auto r = c.run(p);
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_TRUE(r.written);
  EXPECT_EQ(r.version, 1u);
}

TEST(CasProposer, NoMajorityIsNoQuorumAfterTheAttempts) {
  cluster c(5);
  for (std::size_t i = 0; i < 3; ++i) c.replicas[i]->down = true;
  cas_proposer p(c.settings(0x10, cas_config{.max_attempts = 4}), 0, bytes_of("v"));
  auto r = c.run(p);
  EXPECT_EQ(r.ec, errc::no_quorum);
  EXPECT_FALSE(r.maybe_written) << "nothing was sent to be accepted";
  EXPECT_EQ(r.attempts, 4u);
}

TEST(CasProposer, NoQuorumAfterAnAcceptSaysTheValueMayBeWritten) {
  cluster c(5);
  // The accept reaches every replica, then they all fall silent.
  c.lose_reply = [&](std::size_t, const wire::message_body& m) {
    if (is_phase(m, wire::consensus_phase::accept))
      for (auto& r : c.replicas) r->down = true;
    return is_phase(m, wire::consensus_phase::accept);
  };
  cas_proposer p(c.settings(0x10, cas_config{.max_attempts = 4}), 0, bytes_of("v"));
  auto r = c.run(p);
  EXPECT_EQ(r.ec, errc::no_quorum);
  EXPECT_TRUE(r.maybe_written);
}

TEST(CasProposer, MalformedRepliesCountAsNo) {
  cluster c(5);
  std::mt19937_64 junk(3);
  c.forge = [&](std::size_t, const wire::message_body&) -> std::optional<core::reply> {
    core::reply r;
    r.data.resize(junk() % 12);
    for (auto& b : r.data) b = static_cast<std::uint8_t>(junk());
    if (junk() % 2) {
      r.ec = errc::nack;
      r.code = junk() % 2 ? wire::nack_code::version_conflict : wire::nack_code::locked;
    }
    return r;
  };
  cas_proposer p(c.settings(0x10, cas_config{.max_attempts = 3}), 0, bytes_of("v"));
  auto r = c.run(p);
  EXPECT_EQ(r.ec, errc::no_quorum);
  EXPECT_EQ(c.holding(1, bytes_of("v")), 0u);
}

TEST(CasProposer, AnOwnerSignedValueIsRefused) {
  cluster c(3);
  wire::store s{key, 1, 60, std::nullopt, bytes_of("owned")};
  ASSERT_EQ(c.replicas[1]->store.put(from_store(testing::signed_by(testing::fixed_identity(9), s), c.now), c.now),
            put_result::stored);
  cas_proposer p(c.settings(), 1, bytes_of("take over"));
  EXPECT_EQ(c.run(p).ec, errc::owned_key);
}

TEST(CasProposer, UpdateAppliesItsFunctionToTheWinnersValue) {
  cluster c(5);
  cas_proposer create(c.settings(), 0, bytes_of("a"));
  ASSERT_TRUE(c.run(create).written);
  // Both append a letter to what they read; the one that loses the slot appends to the winner's.
  auto append = [](char letter) {
    return [letter](const std::optional<versioned_value>& current) -> std::optional<byte_vector> {
      byte_vector v = current ? current->value : byte_vector{};
      v.push_back(static_cast<std::uint8_t>(letter));
      return v;
    };
  };
  cas_proposer b(c.settings(0x20), append('b'));
  cas_proposer x(c.settings(0x30), append('x'));
  auto r = c.run({&b, &x});
  ASSERT_TRUE(r[0].written && r[1].written) << r[0].ec.message() << " / " << r[1].ec.message();
  EXPECT_NE(r[0].version, r[1].version);
  const byte_vector& last = r[0].version > r[1].version ? *r[0].value : *r[1].value;
  EXPECT_TRUE(last == bytes_of("abx") || last == bytes_of("axb")) << std::string(last.begin(), last.end());
  EXPECT_EQ(c.holding(3, last), 5u);

  cas_proposer declines(c.settings(), [](const std::optional<versioned_value>&) { return std::nullopt; });
  auto d = c.run(declines);
  EXPECT_FALSE(d.ec);
  EXPECT_FALSE(d.written);
  EXPECT_EQ(d.version, 3u);
  EXPECT_EQ(d.value, last);
}

TEST(CasProposer, OfTwoProposersOfOneSlotExactlyOneWins) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    cluster c(7, seed);
    // Replies of a random fifth of the requests are lost, shuffling who hears what when.
    std::mt19937_64 loss(seed);
    c.lose_reply = [&](std::size_t, const wire::message_body&) { return loss() % 5 == 0; };
    cas_proposer a(c.settings(0x20), 0, bytes_of("a"));
    cas_proposer b(c.settings(0x30), 0, bytes_of("b"));
    auto r = c.run({&a, &b});
    EXPECT_NE(r[0].written, r[1].written) << r[0].ec.message() << " / " << r[1].ec.message();
    const cas_outcome& loser = r[0].written ? r[1] : r[0];
    const cas_outcome& winner = r[0].written ? r[0] : r[1];
    if (loser.ec == errc::cas_conflict) {
      EXPECT_EQ(loser.value, winner.value);
    }
    c.lose_reply = nullptr;
    cas_proposer read(c.settings(0x40), [](const std::optional<versioned_value>&) { return std::nullopt; });
    EXPECT_EQ(c.run(read).value, winner.value);
  }
}

}  // namespace
}  // namespace kadnet::dht
