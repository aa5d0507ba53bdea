// dht::lookup against a fake network on virtual time. Each fake node holds a routing-table-like
// view (up to k contacts per k-bucket, which includes its true closest neighbours) and answers
// FIND_NODE with the k closest to the target in that view; replies arrive after a simulated
// delay, dead nodes never answer. Property tests use fixed seeds and print them.
#include "kadnet/dht/lookup.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace kadnet::core {
// Short ids in failure messages instead of 32-byte dumps.
void PrintTo(const node_id& id, std::ostream* os) { *os << id.short_hex(); }
}  // namespace kadnet::core

namespace kadnet::dht {
namespace {

using namespace std::chrono_literals;
using core::node_id;
using core::time_point;

constexpr std::uint64_t default_seed = 0x6b61646e6574ull;  // "kadnet"

node_id random_id(std::mt19937_64& rng) {
  node_id::bytes_type b;
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return node_id(b);
}

contact make_contact(const node_id& id) { return contact{id, {"sim://" + id.short_hex()}}; }

contact make_contact(const node_id& id, std::chrono::microseconds rtt) {
  contact c = make_contact(id);
  c.rtt = rtt;
  return c;
}

// An id whose first bytes are given and the rest zero; the target in hand-made tests is zero,
// so the first byte orders the distance.
node_id id_with(std::uint8_t b0, std::uint8_t b1 = 0) {
  node_id::bytes_type b{};
  b[0] = b0;
  b[1] = b1;
  return node_id(b);
}

class fake_network {
 public:
  // Dead nodes stay listed (stale) in buckets whose shared prefix with the owner is below
  // stale_prefix; -1 picks the default explained below, id_bits lists them everywhere.
  fake_network(std::size_t n, std::size_t k, std::uint64_t seed, double dead_fraction = 0.0,
               int stale_prefix = -1)
      : k_(k), rng_(seed) {
    for (std::size_t i = 0; i < n; ++i) {
      ids_.push_back(random_id(rng_));
      index_.emplace(ids_.back(), i);
    }
    std::bernoulli_distribution is_dead(dead_fraction);
    for (std::size_t i = 0; i < n; ++i) dead_.push_back(is_dead(rng_));
    // Bucket p covers about n / 2^(p+1) nodes: stale below the first one of at most 2k.
    if (stale_prefix < 0)
      for (stale_prefix = 0; (n >> (stale_prefix + 1)) > 2 * k;) ++stale_prefix;
    // Views: up to k per bucket, filled from a random starting point so that no node is
    // everyone's favourite in the far buckets.
    views_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<std::size_t> per_bucket(core::id_bits, 0);
      std::size_t start = rng_() % n;
      for (std::size_t s = 0; s < n; ++s) {
        std::size_t j = (start + s) % n;
        if (j == i) continue;
        // Stale entries: a node hears from its neighbourhood all the time, so its near buckets
        // know who is dead; the far buckets (shared prefix < stale_prefix), picked from many
        // more nodes than they hold and rarely refreshed, still list the dead.
        if (dead_[j] && ids_[i].common_prefix_length(ids_[j]) >= stale_prefix) continue;
        int b = ids_[i].bucket_index(ids_[j]);
        if (per_bucket[b] < k_) {
          ++per_bucket[b];
          views_[i].push_back(j);
        }
      }
    }
  }

  std::size_t size() const { return ids_.size(); }
  const node_id& id(std::size_t i) const { return ids_[i]; }
  std::size_t index_of(const node_id& id) const { return index_.at(id); }
  bool dead(std::size_t i) const { return dead_[i]; }
  std::size_t random_live_node() {
    for (;;) {
      std::size_t i = rng_() % ids_.size();
      if (!dead_[i]) return i;
    }
  }
  std::mt19937_64& rng() { return rng_; }

  // What node i answers to FIND_NODE(target) from `requester`: the k closest to target in its
  // view, the requester left out (as libp2p does).
  std::vector<contact> answer(std::size_t i, const node_id& target, std::size_t requester) const {
    std::vector<std::size_t> v = views_[i];
    std::erase(v, requester);
    core::closer_to closer(target);
    auto by = [&](std::size_t a, std::size_t b) { return closer(ids_[a], ids_[b]); };
    std::size_t n = std::min(k_, v.size());
    std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n), v.end(), by);
    std::vector<contact> out;
    for (std::size_t j = 0; j < n; ++j) out.push_back(make_contact(ids_[v[j]]));
    return out;
  }

  // Brute force: the k closest live nodes to target other than `self`.
  std::vector<node_id> true_closest(const node_id& target, std::size_t self) const {
    std::vector<node_id> all;
    for (std::size_t i = 0; i < ids_.size(); ++i)
      if (i != self && !dead_[i]) all.push_back(ids_[i]);
    std::size_t n = std::min(k_, all.size());
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
                      core::closer_to(target));
    all.resize(n);
    return all;
  }

 private:
  std::size_t k_;
  std::mt19937_64 rng_;
  std::vector<node_id> ids_;
  std::unordered_map<node_id, std::size_t> index_;
  std::vector<bool> dead_;
  std::vector<std::vector<std::size_t>> views_;
};

struct drive_options {
  std::chrono::milliseconds min_delay{0};
  std::chrono::milliseconds max_delay{0};
  std::size_t requester = 0;       // the node running the lookup
  std::set<std::size_t> holders;  // nodes that answer FIND_VALUE with the value
  byte_vector value{1, 2, 3};
};

drive_options delays(std::size_t requester, std::chrono::milliseconds min,
                     std::chrono::milliseconds max) {
  drive_options o;
  o.requester = requester;
  o.min_delay = min;
  o.max_delay = max;
  return o;
}

struct drive_result {
  std::vector<node_id> sent;
  std::vector<node_id> reported;  // every contact in a reply the lookup got
  std::size_t dead_sent = 0;
  std::vector<node_id> answered_without_value;
  std::size_t values_delivered = 0;
  std::chrono::nanoseconds elapsed{0};
};

// The driver: sends are answered after a random delay on virtual time; time jumps to the next
// reply or to the deadline the lookup asks for, as quinn's test harness does.
drive_result drive(fake_network& net, lookup& lk, const drive_options& opt) {
  drive_result r;
  const time_point start{};
  time_point now = start;
  std::multimap<time_point, std::size_t> replies;
  std::uniform_int_distribution<std::int64_t> delay(opt.min_delay.count(), opt.max_delay.count());
  auto deliver_due = [&] {
    while (!replies.empty() && replies.begin()->first <= now && !lk.is_finished()) {
      std::size_t from = replies.begin()->second;
      replies.erase(replies.begin());
      if (opt.holders.contains(from)) {
        ++r.values_delivered;
        lk.on_value(net.id(from), opt.value, now);
      } else {
        r.answered_without_value.push_back(net.id(from));
        auto closer = net.answer(from, lk.target(), opt.requester);
        for (const contact& c : closer) r.reported.push_back(c.id);
        lk.on_reply(net.id(from), std::move(closer), now);
      }
    }
  };
  for (int guard = 0; guard < 1'000'000; ++guard) {
    lookup::action a = lk.next(now);
    if (auto* s = std::get_if<lookup::send>(&a)) {
      r.sent.push_back(s->to.id);
      std::size_t to = net.index_of(s->to.id);
      if (net.dead(to))
        ++r.dead_sent;
      else
        replies.emplace(now + std::chrono::milliseconds(delay(net.rng())), to);
      continue;
    }
    if (std::holds_alternative<lookup::finished>(a)) break;
    auto until = std::get<lookup::waiting>(a).until;
    if (!replies.empty() && replies.begin()->first <= now) {
      deliver_due();
      continue;
    }
    std::optional<time_point> next_time = until;
    if (!replies.empty() && (!next_time || replies.begin()->first < *next_time))
      next_time = replies.begin()->first;
    if (!next_time) {
      ADD_FAILURE() << "lookup waits with nothing in flight";
      break;
    }
    EXPECT_GT(*next_time, now) << "the lookup asked to be woken in the past";
    now = std::max(now, *next_time);
    deliver_due();
  }
  EXPECT_TRUE(lk.is_finished());
  r.elapsed = now - start;
  return r;
}

std::vector<node_id> ids_of(const std::vector<contact>& cs) {
  std::vector<node_id> out;
  for (const contact& c : cs) out.push_back(c.id);
  return out;
}

bool no_duplicates(std::vector<node_id> v) {
  std::sort(v.begin(), v.end());
  return std::adjacent_find(v.begin(), v.end()) == v.end();
}

int percentile(std::vector<int> v, double p) {
  std::sort(v.begin(), v.end());
  std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

void print_distribution(const char* what, const std::vector<int>& rounds,
                        const std::vector<std::size_t>& messages,
                        const std::vector<std::size_t>& dead = {}) {
  std::map<int, int> histogram;
  for (int r : rounds) ++histogram[r];
  std::string line;
  for (auto [r, n] : histogram) line += " " + std::to_string(r) + ":" + std::to_string(n);
  std::vector<std::size_t> m = messages;
  std::sort(m.begin(), m.end());
  std::printf("[ lookup   ] %s: rounds{hop:count}%s; median %d, p99 %d; messages median %zu, max %zu\n",
              what, line.c_str(), percentile(rounds, 0.5), percentile(rounds, 0.99),
              m[m.size() / 2], m.back());
  if (!dead.empty()) {
    std::vector<std::size_t> d = dead;
    std::sort(d.begin(), d.end());
    std::printf("[ lookup   ] %s: dead contacts asked per lookup median %zu, max %zu\n", what,
                d[d.size() / 2], d.back());
  }
}

// What any lookup can promise when routing tables list dead nodes: the k closest live nodes
// among all it was told of (seeds and replies). Whether those are the true k closest live
// depends on the network (a reply holds k entries, stale ones included), not on the lookup.
std::vector<node_id> closest_live_reported(const fake_network& net, const node_id& target,
                                           std::size_t self, const drive_result& r) {
  std::vector<node_id> ids = r.reported;
  for (const contact& c : net.answer(self, target, self)) ids.push_back(c.id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::erase_if(ids, [&](const node_id& id) {
    return id == net.id(self) || net.dead(net.index_of(id));
  });
  std::sort(ids.begin(), ids.end(), core::closer_to(target));
  if (ids.size() > default_k) ids.resize(default_k);
  return ids;
}

lookup seeded_lookup(fake_network& net, std::size_t self, const node_id& target,
                     lookup_config cfg) {
  return lookup(target, net.answer(self, target, self), cfg, net.id(self));
}

// --- Hand-made cases -------------------------------------------------------------------------

TEST(Lookup, QueriesSeedsClosestFirstAndNeverSelf) {
  node_id self = id_with(0x05);
  lookup_config cfg{.k = 3, .alpha = 2};
  lookup lk(node_id{}, {make_contact(id_with(0x30)), make_contact(self), make_contact(id_with(0x10)),
                        make_contact(id_with(0x10)), make_contact(id_with(0x20))},
            cfg, self);
  time_point t{};
  auto first = lk.next(t);
  auto second = lk.next(t);
  ASSERT_TRUE(std::holds_alternative<lookup::send>(first));
  ASSERT_TRUE(std::holds_alternative<lookup::send>(second));
  EXPECT_EQ(std::get<lookup::send>(first).to.id, id_with(0x10));
  EXPECT_EQ(std::get<lookup::send>(second).to.id, id_with(0x20));
  auto third = lk.next(t);  // alpha = 2 slots taken
  ASSERT_TRUE(std::holds_alternative<lookup::waiting>(third));
  EXPECT_EQ(std::get<lookup::waiting>(third).until, t + 1000ms);

  lk.on_reply(id_with(0x10), {}, t);
  auto fourth = lk.next(t);
  ASSERT_TRUE(std::holds_alternative<lookup::send>(fourth));
  EXPECT_EQ(std::get<lookup::send>(fourth).to.id, id_with(0x30));
  lk.on_reply(id_with(0x20), {}, t);
  lk.on_reply(id_with(0x30), {}, t);
  EXPECT_TRUE(std::holds_alternative<lookup::finished>(lk.next(t)));
  EXPECT_EQ(ids_of(lk.closest_answered()),
            (std::vector<node_id>{id_with(0x10), id_with(0x20), id_with(0x30)}));
  EXPECT_EQ(lk.get_stats().messages, 3u);
  EXPECT_EQ(lk.get_stats().rounds, 1);
}

TEST(Lookup, IgnoresUnsolicitedSelfDuplicateAndExcessContacts) {
  node_id self = id_with(0x05);
  lookup_config cfg{.k = 2, .alpha = 1};
  lookup lk(node_id{}, {make_contact(id_with(0x40))}, cfg, self);
  time_point t{};
  ASSERT_TRUE(std::holds_alternative<lookup::send>(lk.next(t)));

  // A node that was never asked cannot inject contacts, nor end the lookup with a value.
  lk.on_reply(id_with(0x50), {make_contact(id_with(0x01))}, t);
  lk.on_reply(self, {make_contact(id_with(0x01))}, t);
  lk.on_value(id_with(0x50), {9}, t);
  EXPECT_EQ(lk.get_stats().replies, 0u);
  EXPECT_TRUE(std::holds_alternative<lookup::waiting>(lk.next(t)));

  // The reply is cut to k = 2 entries before anything else: 0x02 and 0x03 are never seen.
  // Self and the duplicate take up those two entries, so nothing is learned at all.
  lk.on_reply(id_with(0x40), {make_contact(self), make_contact(id_with(0x40)),
                              make_contact(id_with(0x02)), make_contact(id_with(0x03))}, t);
  lk.on_reply(id_with(0x40), {make_contact(id_with(0x01))}, t);  // a second answer: ignored
  EXPECT_TRUE(std::holds_alternative<lookup::finished>(lk.next(t)));
  EXPECT_EQ(ids_of(lk.closest_answered()), std::vector<node_id>{id_with(0x40)});
  EXPECT_EQ(lk.get_stats().messages, 1u);
  EXPECT_EQ(lk.get_stats().replies, 1u);
}

TEST(Lookup, DuplicateContactsInOneReplyAreQueriedOnce) {
  lookup_config cfg{.k = 4, .alpha = 3};
  lookup lk(node_id{}, {make_contact(id_with(0x40))}, cfg, id_with(0xff));
  time_point t{};
  ASSERT_TRUE(std::holds_alternative<lookup::send>(lk.next(t)));
  lk.on_reply(id_with(0x40), {make_contact(id_with(0x01)), make_contact(id_with(0x01)),
                              make_contact(id_with(0x02))}, t);
  std::vector<node_id> sent;
  for (auto a = lk.next(t); std::holds_alternative<lookup::send>(a); a = lk.next(t))
    sent.push_back(std::get<lookup::send>(a).to.id);
  EXPECT_EQ(sent, (std::vector<node_id>{id_with(0x01), id_with(0x02)}));
  EXPECT_EQ(lk.get_stats().messages, 3u);
}

TEST(Lookup, FailureFreesSlotAtOnceAndTimeoutAtDeadline) {
  lookup_config cfg{.k = 3, .alpha = 1, .slot_timeout = 500ms};
  lookup lk(node_id{}, {make_contact(id_with(0x10)), make_contact(id_with(0x20)),
                        make_contact(id_with(0x30))}, cfg, id_with(0xff));
  time_point t{};
  ASSERT_EQ(std::get<lookup::send>(lk.next(t)).to.id, id_with(0x10));
  lk.on_failure(id_with(0x10));
  ASSERT_EQ(std::get<lookup::send>(lk.next(t)).to.id, id_with(0x20));  // no time passed
  auto w = lk.next(t + 499ms);
  ASSERT_TRUE(std::holds_alternative<lookup::waiting>(w));
  EXPECT_EQ(std::get<lookup::waiting>(w).until, t + 500ms);
  ASSERT_EQ(std::get<lookup::send>(lk.next(t + 500ms)).to.id, id_with(0x30));
  lk.on_reply(id_with(0x30), {}, t + 510ms);
  // Both others failed, nothing is in flight: finished with the one answer.
  EXPECT_TRUE(std::holds_alternative<lookup::finished>(lk.next(t + 510ms)));
  EXPECT_EQ(ids_of(lk.closest_answered()), std::vector<node_id>{id_with(0x30)});
  EXPECT_EQ(lk.get_stats().failures, 2u);
}

TEST(Lookup, LateReplyAfterSlotTimeoutIsUsed) {
  lookup_config cfg{.k = 3, .alpha = 1, .slot_timeout = 1000ms};
  lookup lk(node_id{}, {make_contact(id_with(0x10)), make_contact(id_with(0x20))}, cfg,
            id_with(0xff));
  time_point t{};
  ASSERT_EQ(std::get<lookup::send>(lk.next(t)).to.id, id_with(0x10));
  // 0x10's slot times out and goes to 0x20.
  ASSERT_EQ(std::get<lookup::send>(lk.next(t + 1000ms)).to.id, id_with(0x20));
  // 0x10 answers late with a closer contact: it is learned (hop 2) and queried.
  lk.on_reply(id_with(0x10), {make_contact(id_with(0x01))}, t + 1200ms);
  ASSERT_TRUE(std::holds_alternative<lookup::waiting>(lk.next(t + 1200ms)));  // alpha = 1
  lk.on_reply(id_with(0x20), {}, t + 1300ms);
  ASSERT_EQ(std::get<lookup::send>(lk.next(t + 1300ms)).to.id, id_with(0x01));
  lk.on_reply(id_with(0x01), {}, t + 1400ms);
  EXPECT_TRUE(std::holds_alternative<lookup::finished>(lk.next(t + 1400ms)));
  EXPECT_EQ(ids_of(lk.closest_answered()),
            (std::vector<node_id>{id_with(0x01), id_with(0x10), id_with(0x20)}));
  auto s = lk.get_stats();
  EXPECT_EQ(s.messages, 3u);
  EXPECT_EQ(s.replies, 3u);
  EXPECT_EQ(s.failures, 1u);
  EXPECT_EQ(s.rounds, 2);
}

// asks_per_contact = 2 (SHOUT repairs, joins): a contact silent past its deadline is asked again
// at once, without a slot, so the path goes on; the lookup does not finish while the second
// request may still be answered, and an answer to it counts.
TEST(Lookup, ASilentContactIsAskedAgainOutsideTheSlotsAndHoldsTheFinish) {
  lookup_config cfg{.k = 2, .alpha = 1, .slot_timeout = 100ms, .slot_rtts = 4, .slot_floor = 100ms,
                    .asks_per_contact = 2};
  contact a = make_contact(id_with(0x01));  // never measured: slot_rtts would take an RTT from its answer
  a.connected = true;
  lookup lk(node_id{}, {a, make_contact(id_with(0x02))}, cfg, id_with(0xff));
  time_point t{};
  ASSERT_EQ(std::get<lookup::send>(lk.next(t)).to.id, id_with(0x01));
  EXPECT_EQ(std::get<lookup::waiting>(lk.next(t + 1ms)).until, t + 100ms);
  // 0x01's deadline: asked again, and its slot goes to 0x02 at the same moment.
  ASSERT_EQ(std::get<lookup::send>(lk.next(t + 100ms)).to.id, id_with(0x01));
  ASSERT_EQ(std::get<lookup::send>(lk.next(t + 100ms)).to.id, id_with(0x02));
  lk.on_reply(id_with(0x02), {}, t + 110ms);
  // 0x02 answered, but 0x01 is closer and may still answer: not finished before its new deadline.
  EXPECT_EQ(std::get<lookup::waiting>(lk.next(t + 110ms)).until, t + 200ms);
  // The first request's own timeout, reported by the driver now, says nothing of the second.
  lk.on_failure(id_with(0x01), true);
  EXPECT_EQ(std::get<lookup::waiting>(lk.next(t + 150ms)).until, t + 200ms);
  lk.on_reply(id_with(0x01), {}, t + 160ms);
  EXPECT_TRUE(std::holds_alternative<lookup::finished>(lk.next(t + 160ms)));
  auto answered = lk.closest_answered();
  ASSERT_EQ(ids_of(answered), (std::vector<node_id>{id_with(0x01), id_with(0x02)}));
  EXPECT_EQ(answered[0].rtt, 0ms) << "which request was answered is unknown: no RTT taken from it";
  EXPECT_EQ(answered[1].rtt, 10ms) << "asked once, at 100 ms, answered at 110 ms";
  auto s = lk.get_stats();
  EXPECT_EQ(s.messages, 3u);
  EXPECT_EQ(s.failures, 1u);

  // Silent twice: given up at the second deadline, and the lookup finishes without it.
  lookup gone(node_id{}, {make_contact(id_with(0x01))}, cfg, id_with(0xff));
  ASSERT_EQ(std::get<lookup::send>(gone.next(t)).to.id, id_with(0x01));
  ASSERT_EQ(std::get<lookup::send>(gone.next(t + 100ms)).to.id, id_with(0x01));
  EXPECT_EQ(std::get<lookup::waiting>(gone.next(t + 101ms)).until, t + 200ms);
  EXPECT_TRUE(std::holds_alternative<lookup::finished>(gone.next(t + 200ms)));
  EXPECT_TRUE(gone.closest_answered().empty());
  EXPECT_EQ(gone.get_stats().messages, 2u);
  EXPECT_EQ(gone.get_stats().failures, 2u);
}

// subtree_bits: only contacts inside the subtree a repair looks into are asked again; the
// driver's timeout asks again as a deadline does, any other failure does not.
TEST(Lookup, OnlyContactsWithinTheSubtreeAreAskedAgainAndOnlyAfterSilence) {
  lookup_config cfg{.k = 3, .alpha = 3, .slot_timeout = 100ms, .asks_per_contact = 2, .subtree_bits = 8};
  const node_id inside = id_with(0x00, 0x01), outside = id_with(0x80), refusing = id_with(0x00, 0x02);
  lookup lk(node_id{}, {make_contact(inside), make_contact(outside), make_contact(refusing)}, cfg, id_with(0xff));
  time_point t{};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(std::holds_alternative<lookup::send>(lk.next(t)));
  lk.on_failure(refusing);              // a NACK, say: not asked again
  lk.on_failure(inside, true);          // the driver's timeout: asked again at once
  ASSERT_EQ(std::get<lookup::send>(lk.next(t + 10ms)).to.id, inside);
  // At the deadline the contact outside the subtree is given up, not asked again.
  EXPECT_EQ(std::get<lookup::waiting>(lk.next(t + 100ms)).until, t + 110ms);
  EXPECT_TRUE(std::holds_alternative<lookup::finished>(lk.next(t + 110ms)));
  EXPECT_EQ(lk.get_stats().messages, 4u);
}

// subtree_bits (SHOUT repairs): one answer from inside the subtree is all a repair needs; without
// it the lookup goes on to the k closest.
TEST(Lookup, FinishWithinEndsAtTheFirstAnswerFromInsideTheSubtree) {
  const node_id inside = id_with(0x00, 0x10), nearer = id_with(0x40), farther = id_with(0x80);
  for (int subtree_bits : {8, -1}) {
    lookup_config cfg{.k = 3, .alpha = 3, .slot_timeout = 100ms, .subtree_bits = subtree_bits};
    lookup lk(node_id{}, {make_contact(farther), make_contact(nearer), make_contact(inside)}, cfg, id_with(0xff));
    time_point t{};
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(std::holds_alternative<lookup::send>(lk.next(t)));
    lk.on_reply(nearer, {}, t + 5ms);
    EXPECT_TRUE(std::holds_alternative<lookup::waiting>(lk.next(t + 5ms))) << "an answer from outside is not enough";
    lk.on_reply(inside, {}, t + 10ms);
    if (subtree_bits < 0) {
      EXPECT_TRUE(std::holds_alternative<lookup::waiting>(lk.next(t + 10ms))) << "k closest: waits for " << farther.short_hex();
      continue;
    }
    EXPECT_TRUE(std::holds_alternative<lookup::finished>(lk.next(t + 10ms)));
    EXPECT_EQ(ids_of(lk.closest_answered()), (std::vector<node_id>{inside, nearer}));
  }
  // An answer from a node the caller said not to end on (a delegate that had its second chance).
  lookup_config cfg{.k = 3, .alpha = 3, .slot_timeout = 100ms, .subtree_bits = 8, .finish_ignoring = {inside}};
  lookup lk(node_id{}, {make_contact(farther), make_contact(nearer), make_contact(inside)}, cfg, id_with(0xff));
  time_point t{};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(std::holds_alternative<lookup::send>(lk.next(t)));
  lk.on_reply(inside, {}, t + 10ms);
  EXPECT_TRUE(std::holds_alternative<lookup::waiting>(lk.next(t + 10ms)));
}

// slot_rtts: a contact with a measured RTT holds its slot for that many RTTs (twice as many
// without a session, not below slot_floor); one never measured, for that many of the slowest RTT
// the lookup knows.
TEST(Lookup, SlotRttsEndsASilentContactsSlotAfterAFewOfItsRoundTrips) {
  lookup_config cfg{.k = 3, .alpha = 1, .slot_timeout = 1000ms, .slot_rtts = 4, .slot_floor = 50ms};
  contact measured = make_contact(id_with(0x10), 30ms);
  measured.connected = true;
  // 0x20 has no session: 2 × 4 of its 10 ms RTTs.
  lookup lk(node_id{}, {measured, make_contact(id_with(0x20), 10ms)}, cfg, id_with(0xff));
  time_point t{};
  ASSERT_EQ(std::get<lookup::send>(lk.next(t)).to.id, id_with(0x10));
  auto w = lk.next(t + 1ms);
  ASSERT_TRUE(std::holds_alternative<lookup::waiting>(w));
  EXPECT_EQ(std::get<lookup::waiting>(w).until, t + 120ms);
  ASSERT_EQ(std::get<lookup::send>(lk.next(t + 120ms)).to.id, id_with(0x20));
  w = lk.next(t + 121ms);
  EXPECT_EQ(std::get<lookup::waiting>(w).until, t + 200ms);
  // 0x20 answers in 10 ms with an unmeasured contact without a session, which gets 2 × 4 × the
  // slowest RTT known: the seeds' 30 ms.
  lk.on_reply(id_with(0x20), {make_contact(id_with(0x01))}, t + 130ms);
  ASSERT_EQ(std::get<lookup::send>(lk.next(t + 130ms)).to.id, id_with(0x01));
  w = lk.next(t + 131ms);
  EXPECT_EQ(std::get<lookup::waiting>(w).until, t + 370ms);
  lk.on_reply(id_with(0x01), {}, t + 170ms);
  EXPECT_TRUE(std::holds_alternative<lookup::finished>(lk.next(t + 170ms)));
  // The unmeasured contact is reported with the RTT this lookup saw: 40 ms.
  auto answered = lk.closest_answered();
  ASSERT_EQ(ids_of(answered), (std::vector<node_id>{id_with(0x01), id_with(0x20)}));
  EXPECT_EQ(answered[0].rtt, 40ms);
  EXPECT_EQ(answered[1].rtt, 10ms);  // measured before: kept
  EXPECT_EQ(lk.get_stats().failures, 1u);

  // 4 RTTs of a quick contact are below the floor: the floor.
  contact quick = make_contact(id_with(0x30), 5ms);
  quick.connected = true;
  lookup floored(node_id{}, {quick}, cfg, id_with(0xff));
  ASSERT_EQ(std::get<lookup::send>(floored.next(t)).to.id, id_with(0x30));
  EXPECT_EQ(std::get<lookup::waiting>(floored.next(t + 1ms)).until, t + 50ms);
}

// Without slot_rtts (every lookup but a SHOUT's repair) an RTT changes nothing.
TEST(Lookup, WithoutSlotRttsEverySlotLastsTheSlotTimeout) {
  lookup_config cfg{.k = 3, .alpha = 1, .slot_timeout = 1000ms};
  lookup lk(node_id{}, {make_contact(id_with(0x10), 30ms)}, cfg, id_with(0xff));
  time_point t{};
  ASSERT_EQ(std::get<lookup::send>(lk.next(t)).to.id, id_with(0x10));
  EXPECT_EQ(std::get<lookup::waiting>(lk.next(t + 1ms)).until, t + 1000ms);
  lk.on_reply(id_with(0x10), {}, t + 10ms);
  EXPECT_TRUE(std::holds_alternative<lookup::finished>(lk.next(t + 10ms)));
  EXPECT_EQ(lk.closest_answered().at(0).rtt, 30ms);
}

TEST(Lookup, WaitsForCloserInFlightBeforeFinishing) {
  // k = 1: 0x20 answers first, but 0x10 (closer, in flight) may still answer; the lookup must
  // not finish on 0x20 alone.
  lookup_config cfg{.k = 1, .alpha = 2};
  lookup lk(node_id{}, {make_contact(id_with(0x10)), make_contact(id_with(0x20))}, cfg,
            id_with(0xff));
  time_point t{};
  lk.next(t);
  lk.next(t);
  lk.on_reply(id_with(0x20), {}, t);
  auto w = lk.next(t);
  ASSERT_TRUE(std::holds_alternative<lookup::waiting>(w));
  lk.on_reply(id_with(0x10), {}, t);
  EXPECT_TRUE(std::holds_alternative<lookup::finished>(lk.next(t)));
  EXPECT_EQ(ids_of(lk.closest_answered()), std::vector<node_id>{id_with(0x10)});
}

// Hedged FIND_VALUE: one request first; alpha once it answers without the value.
TEST(Lookup, HedgedFindValueAsksOneThenWidensOnAnAnswerWithoutTheValue) {
  lookup_config cfg{.k = 4, .alpha = 3, .find_value = true};
  lookup lk(node_id{}, {make_contact(id_with(0x10)), make_contact(id_with(0x20)),
                        make_contact(id_with(0x30)), make_contact(id_with(0x40))},
            cfg, id_with(0xff));
  time_point t{};
  ASSERT_EQ(std::get<lookup::send>(lk.next(t)).to.id, id_with(0x10));
  auto w = lk.next(t);
  ASSERT_TRUE(std::holds_alternative<lookup::waiting>(w));
  EXPECT_EQ(std::get<lookup::waiting>(w).until, t + 100ms);  // hedge_unmeasured: no RTT yet
  lk.on_reply(id_with(0x10), {}, t + 1ms);
  std::vector<node_id> sent;
  for (auto a = lk.next(t + 1ms); std::holds_alternative<lookup::send>(a); a = lk.next(t + 1ms))
    sent.push_back(std::get<lookup::send>(a).to.id);
  EXPECT_EQ(sent, (std::vector<node_id>{id_with(0x20), id_with(0x30), id_with(0x40)}));
}

// The hedge: still silent after twice its smoothed RTT, the first contact gets company.
TEST(Lookup, HedgedFindValueWidensAfterTwiceTheFirstContactsRtt) {
  lookup_config cfg{.k = 4, .alpha = 3, .find_value = true};
  lookup lk(node_id{}, {make_contact(id_with(0x10), 4ms), make_contact(id_with(0x20)), make_contact(id_with(0x30))},
            cfg, id_with(0xff));
  time_point t{};
  ASSERT_EQ(std::get<lookup::send>(lk.next(t)).to.id, id_with(0x10));
  auto w = lk.next(t + 7ms);
  ASSERT_TRUE(std::holds_alternative<lookup::waiting>(w));
  EXPECT_EQ(std::get<lookup::waiting>(w).until, t + 8ms);
  ASSERT_EQ(std::get<lookup::send>(lk.next(t + 8ms)).to.id, id_with(0x20));
  ASSERT_EQ(std::get<lookup::send>(lk.next(t + 8ms)).to.id, id_with(0x30));
  // The first one's value still counts, and ends the lookup.
  lk.on_value(id_with(0x10), {7}, t + 9ms);
  EXPECT_TRUE(std::holds_alternative<lookup::finished>(lk.next(t + 9ms)));
  EXPECT_EQ(*lk.value(), byte_vector{7});
  EXPECT_EQ(lk.get_stats().messages, 3u);
}

// A failure widens at once, and a value at the first hop costs one request in all.
TEST(Lookup, HedgedFindValueWidensOnFailureAndStopsAtAFirstHopValue) {
  lookup_config cfg{.k = 4, .alpha = 2, .find_value = true};
  std::vector<contact> seeds{make_contact(id_with(0x10)), make_contact(id_with(0x20)),
                             make_contact(id_with(0x30))};
  time_point t{};
  lookup failing(node_id{}, seeds, cfg, id_with(0xff));
  ASSERT_EQ(std::get<lookup::send>(failing.next(t)).to.id, id_with(0x10));
  failing.on_failure(id_with(0x10));
  ASSERT_EQ(std::get<lookup::send>(failing.next(t)).to.id, id_with(0x20));
  ASSERT_EQ(std::get<lookup::send>(failing.next(t)).to.id, id_with(0x30));

  lookup found(node_id{}, seeds, cfg, id_with(0xff));
  ASSERT_EQ(std::get<lookup::send>(found.next(t)).to.id, id_with(0x10));
  found.on_value(id_with(0x10), {1}, t + 1ms);
  EXPECT_TRUE(std::holds_alternative<lookup::finished>(found.next(t + 1ms)));
  EXPECT_EQ(found.get_stats().messages, 1u);
}

// Beyond the replica radius a contact is only a step closer: no hedge, and no going out of
// distance order for a session.
TEST(Lookup, FindValueHedgesAndPrefersSessionsOnlyWithinTheReplicaRadius) {
  contact connected_far = make_contact(id_with(0x30));
  connected_far.connected = true;
  std::vector<contact> seeds{make_contact(id_with(0x10)), make_contact(id_with(0x20)), connected_far};
  lookup_config cfg{.k = 4, .alpha = 3, .find_value = true, .replica_radius = id_with(0x08)};
  time_point t{};
  lookup far(node_id{}, seeds, cfg, id_with(0xff));
  for (std::uint8_t b : {0x10, 0x20, 0x30})
    ASSERT_EQ(std::get<lookup::send>(far.next(t)).to.id, id_with(b));

  cfg.replica_radius = id_with(0x20);  // 0x10 and 0x20 are presumed replicas, 0x30 is not
  lookup near(node_id{}, seeds, cfg, id_with(0xff));
  ASSERT_EQ(std::get<lookup::send>(near.next(t)).to.id, id_with(0x10));
  EXPECT_TRUE(std::holds_alternative<lookup::waiting>(near.next(t)));  // hedged
}

TEST(Lookup, UnhedgedFindValueAsksAlphaAtOnce) {
  lookup_config cfg{.k = 4, .alpha = 3, .find_value = true, .hedge = false};
  lookup lk(node_id{}, {make_contact(id_with(0x10)), make_contact(id_with(0x20)),
                        make_contact(id_with(0x30)), make_contact(id_with(0x40))},
            cfg, id_with(0xff));
  time_point t{};
  for (std::uint8_t b : {0x10, 0x20, 0x30})
    ASSERT_EQ(std::get<lookup::send>(lk.next(t)).to.id, id_with(b));
  EXPECT_TRUE(std::holds_alternative<lookup::waiting>(lk.next(t)));
}

// FIND_VALUE asks a contact with a session first among the k closest; FIND_NODE keeps to
// distance order, and so does FIND_VALUE beyond the k closest.
TEST(Lookup, FindValueAsksAConnectedContactAmongTheKClosestFirst) {
  contact near = make_contact(id_with(0x10));
  contact connected = make_contact(id_with(0x30));
  connected.connected = true;
  contact far_connected = make_contact(id_with(0x50));
  far_connected.connected = true;
  std::vector<contact> seeds{near, make_contact(id_with(0x20)), connected,
                             make_contact(id_with(0x40)), far_connected};
  time_point t{};
  lookup value(node_id{}, seeds, {.k = 4, .alpha = 2, .find_value = true, .hedge = false},
               id_with(0xff));
  EXPECT_EQ(std::get<lookup::send>(value.next(t)).to.id, id_with(0x30));
  EXPECT_EQ(std::get<lookup::send>(value.next(t)).to.id, id_with(0x10));  // none left among k

  lookup node(node_id{}, seeds, {.k = 4, .alpha = 2}, id_with(0xff));
  EXPECT_EQ(std::get<lookup::send>(node.next(t)).to.id, id_with(0x10));
  EXPECT_EQ(std::get<lookup::send>(node.next(t)).to.id, id_with(0x20));
}

TEST(Lookup, EmptySeedsFinishAtOnce) {
  lookup lk(node_id{}, {}, {}, id_with(0x01));
  EXPECT_TRUE(std::holds_alternative<lookup::finished>(lk.next(time_point{})));
  EXPECT_TRUE(lk.closest_answered().empty());
  EXPECT_FALSE(lk.value());
}

TEST(Lookup, CandidateSetIsBounded) {
  // k = 2 keeps at most 4k = 8 unasked candidates: of 12 seeds the 4 farthest are dropped.
  // With every request failing, the lookup asks exactly the 8 it kept, closest first.
  std::vector<contact> seeds;
  for (std::uint8_t b = 0x20; b < 0x2c; ++b) seeds.push_back(make_contact(id_with(b)));
  lookup lk(node_id{}, seeds, {.k = 2, .alpha = 1}, id_with(0xff));
  time_point t{};
  std::vector<node_id> sent;
  for (auto a = lk.next(t); std::holds_alternative<lookup::send>(a); a = lk.next(t)) {
    sent.push_back(std::get<lookup::send>(a).to.id);
    lk.on_failure(sent.back());
  }
  EXPECT_TRUE(lk.is_finished());
  ASSERT_EQ(sent.size(), 8u);
  EXPECT_EQ(sent.front(), id_with(0x20));
  EXPECT_EQ(sent.back(), id_with(0x27));
  EXPECT_TRUE(lk.closest_answered().empty());
}

// --- Fake network ----------------------------------------------------------------------------

TEST(LookupNetwork, FindsTrueClosestWithFewRounds) {
  const std::uint64_t seed = default_seed;
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::printf("[ lookup   ] seed %llu, 2000 nodes, k=20, alpha=3\n",
              static_cast<unsigned long long>(seed));
  fake_network net(2000, default_k, seed);
  std::vector<int> rounds;
  std::vector<std::size_t> messages;
  for (int i = 0; i < 100; ++i) {
    SCOPED_TRACE("lookup " + std::to_string(i));
    std::size_t self = net.random_live_node();
    node_id target = random_id(net.rng());
    lookup lk = seeded_lookup(net, self, target, {});
    drive_result r = drive(net, lk, delays(self, 5ms, 150ms));
    EXPECT_EQ(ids_of(lk.closest_answered()), net.true_closest(target, self));
    EXPECT_TRUE(no_duplicates(r.sent));
    EXPECT_FALSE(std::count(r.sent.begin(), r.sent.end(), net.id(self)));
    auto s = lk.get_stats();
    EXPECT_EQ(s.messages, r.sent.size());
    EXPECT_EQ(s.failures, 0u);
    rounds.push_back(s.rounds);
    messages.push_back(s.messages);
  }
  print_distribution("2000 nodes", rounds, messages);
  EXPECT_LE(percentile(rounds, 0.5), 4);
  EXPECT_LE(percentile(rounds, 0.99), 6);
}

TEST(LookupNetwork, FindValueStopsAtFirstHolderAndNamesCacheTarget) {
  const std::uint64_t seed = default_seed + 1;
  SCOPED_TRACE("seed=" + std::to_string(seed));
  fake_network net(2000, default_k, seed);
  for (int i = 0; i < 30; ++i) {
    SCOPED_TRACE("lookup " + std::to_string(i));
    std::size_t self = net.random_live_node();
    node_id key = random_id(net.rng());
    // The value lives on the 3 nodes closest to the key (short of a full replication).
    std::set<std::size_t> holders;
    for (const node_id& id : net.true_closest(key, self)) {
      holders.insert(net.index_of(id));
      if (holders.size() == 3) break;
    }
    lookup lk = seeded_lookup(net, self, key, {.find_value = true});
    drive_options opt = delays(self, 5ms, 150ms);
    opt.holders = holders;
    drive_result r = drive(net, lk, opt);
    ASSERT_TRUE(lk.value());
    EXPECT_EQ(*lk.value(), (byte_vector{1, 2, 3}));
    EXPECT_EQ(r.values_delivered, 1u);  // the first value ended it
    EXPECT_TRUE(std::holds_alternative<lookup::finished>(lk.next(time_point{} + 1h)));
    EXPECT_EQ(lk.get_stats().messages, r.sent.size());

    if (r.answered_without_value.empty()) {  // a seed held it: no one to cache at
      EXPECT_FALSE(lk.cache_target());
      continue;
    }
    node_id expected = *std::min_element(r.answered_without_value.begin(),
                                         r.answered_without_value.end(), core::closer_to(key));
    ASSERT_TRUE(lk.cache_target());
    EXPECT_EQ(lk.cache_target()->id, expected);
    EXPECT_FALSE(holders.contains(net.index_of(lk.cache_target()->id)));
  }
}

TEST(LookupNetwork, FindNodeHasNoCacheTarget) {
  fake_network net(300, default_k, default_seed + 2);
  std::size_t self = net.random_live_node();
  lookup lk = seeded_lookup(net, self, random_id(net.rng()), {});
  drive(net, lk, delays(self, 0ms, 0ms));
  EXPECT_FALSE(lk.value());
  EXPECT_FALSE(lk.cache_target());
}

// 30 % of the nodes never answer (still listed in everyone's view). Replies are instant on
// virtual time, so time only passes while all alpha slots hold dead contacts or, at the very
// end, while the last dead ones run out: each dead contact holds one slot for one
// slot_timeout, hence elapsed * alpha <= (dead_sent + alpha) * slot_timeout.
TEST(LookupNetwork, DeadContactsCostOneSlotTimeoutEach) {
  const std::uint64_t seed = default_seed + 3;
  SCOPED_TRACE("seed=" + std::to_string(seed));
  fake_network net(2000, default_k, seed, 0.30);
  const lookup_config cfg{};
  std::vector<int> rounds;
  std::vector<std::size_t> messages;
  std::vector<std::size_t> dead;
  int exact = 0;
  for (int i = 0; i < 100; ++i) {
    SCOPED_TRACE("lookup " + std::to_string(i));
    std::size_t self = net.random_live_node();
    node_id target = random_id(net.rng());
    lookup lk = seeded_lookup(net, self, target, cfg);
    drive_result r = drive(net, lk, delays(self, 0ms, 0ms));
    EXPECT_EQ(ids_of(lk.closest_answered()), closest_live_reported(net, target, self, r));
    exact += ids_of(lk.closest_answered()) == net.true_closest(target, self);
    EXPECT_TRUE(no_duplicates(r.sent));
    auto s = lk.get_stats();
    EXPECT_LE(s.failures, r.dead_sent);  // dead ones still in flight at the end never expire
    EXPECT_LE(r.elapsed * cfg.alpha, (r.dead_sent + cfg.alpha) * cfg.slot_timeout)
        << r.dead_sent << " dead contacts asked";
    rounds.push_back(s.rounds);
    messages.push_back(s.messages);
    dead.push_back(r.dead_sent);
  }
  print_distribution("2000 nodes, 30% dead", rounds, messages, dead);
  std::printf("[ lookup   ] 30%% dead: %d of 100 lookups found the true 20 closest live nodes\n",
              exact);
  EXPECT_GE(exact, 95);
  EXPECT_LE(percentile(rounds, 0.99), 6);
}

// Worst case: every view lists its dead contacts, and replies take up to max_delay. Before the
// last send, at every moment either all slots hold dead contacts (at most
// dead_sent * timeout / alpha in total) or a live reply is in flight (at most
// live_sent * max_delay in total); the last send's timeout adds one more. With k-entry replies
// full of dead entries nobody may mention some of the true closest live nodes, so the check is
// against the closest live nodes the lookup was told of.
TEST(LookupNetwork, DeadContactsWithDelayedRepliesStayBounded) {
  const std::uint64_t seed = default_seed + 4;
  SCOPED_TRACE("seed=" + std::to_string(seed));
  fake_network net(2000, default_k, seed, 0.30, core::id_bits);
  std::vector<std::size_t> dead;
  const lookup_config cfg{};
  const auto max_delay = 200ms;
  for (int i = 0; i < 50; ++i) {
    SCOPED_TRACE("lookup " + std::to_string(i));
    std::size_t self = net.random_live_node();
    node_id target = random_id(net.rng());
    lookup lk = seeded_lookup(net, self, target, cfg);
    drive_result r = drive(net, lk, delays(self, 10ms, max_delay));
    EXPECT_EQ(ids_of(lk.closest_answered()), closest_live_reported(net, target, self, r));
    std::size_t live_sent = r.sent.size() - r.dead_sent;
    EXPECT_LE(r.elapsed * cfg.alpha, (r.dead_sent + cfg.alpha) * cfg.slot_timeout +
                                         cfg.alpha * live_sent * max_delay);
    dead.push_back(r.dead_sent);
  }
  std::sort(dead.begin(), dead.end());
  std::printf("[ lookup   ] all dead listed: dead contacts asked per lookup median %zu, max %zu\n",
              dead[dead.size() / 2], dead.back());
}

// Replies slower than the slot timeout: every slot times out, and every answer arrives late.
TEST(LookupNetwork, AllRepliesLateStillConverge) {
  const std::uint64_t seed = default_seed + 5;
  SCOPED_TRACE("seed=" + std::to_string(seed));
  fake_network net(500, default_k, seed);
  const lookup_config cfg{.slot_timeout = 100ms};
  for (int i = 0; i < 10; ++i) {
    std::size_t self = net.random_live_node();
    node_id target = random_id(net.rng());
    lookup lk = seeded_lookup(net, self, target, cfg);
    drive_result r = drive(net, lk, delays(self, 110ms, 150ms));
    EXPECT_TRUE(no_duplicates(r.sent));
    // Every answer comes after its slot timed out, yet answers are used: the lookup learns
    // beyond its seeds and goes more than one hop. (It need not reach the true k closest: a
    // timed-out contact no longer holds back termination, so the last late answers may miss.)
    auto s = lk.get_stats();
    EXPECT_EQ(s.replies, r.answered_without_value.size());
    EXPECT_GT(s.replies, 0u);
    EXPECT_LE(s.replies, s.failures);
    EXPECT_GT(s.messages, default_k);  // seeds are k: the rest came from late answers
  }
}

TEST(LookupNetwork, DisjointPathsNeverQueryTwiceAndFindClosest) {
  const std::uint64_t seed = default_seed + 6;
  SCOPED_TRACE("seed=" + std::to_string(seed));
  fake_network net(2000, default_k, seed);
  std::vector<int> rounds;
  std::vector<std::size_t> messages;
  for (int i = 0; i < 50; ++i) {
    SCOPED_TRACE("lookup " + std::to_string(i));
    std::size_t self = net.random_live_node();
    node_id target = random_id(net.rng());
    lookup lk = seeded_lookup(net, self, target, {.disjoint_paths = 3});
    drive_result r = drive(net, lk, delays(self, 5ms, 150ms));
    EXPECT_TRUE(no_duplicates(r.sent));
    EXPECT_EQ(ids_of(lk.closest_answered()), net.true_closest(target, self));
    rounds.push_back(lk.get_stats().rounds);
    messages.push_back(lk.get_stats().messages);
  }
  print_distribution("2000 nodes, 3 disjoint paths", rounds, messages);
}

TEST(LookupNetwork, DisjointPathsWithDeadContacts) {
  const std::uint64_t seed = default_seed + 7;
  SCOPED_TRACE("seed=" + std::to_string(seed));
  fake_network net(2000, default_k, seed, 0.30);
  for (int i = 0; i < 30; ++i) {
    SCOPED_TRACE("lookup " + std::to_string(i));
    std::size_t self = net.random_live_node();
    node_id target = random_id(net.rng());
    lookup lk = seeded_lookup(net, self, target, {.disjoint_paths = 3});
    drive_result r = drive(net, lk, delays(self, 5ms, 150ms));
    EXPECT_TRUE(no_duplicates(r.sent));
    EXPECT_EQ(ids_of(lk.closest_answered()), closest_live_reported(net, target, self, r));
  }
}

TEST(LookupNetwork, DisjointPathsSplitTheSeeds) {
  // Three paths, six seeds: the first three sends go to three different paths' closest seeds,
  // and every path keeps its own alpha slots.
  std::vector<contact> seeds;
  for (int b = 1; b <= 6; ++b)
    seeds.push_back(make_contact(id_with(static_cast<std::uint8_t>(b * 0x10))));
  lookup lk(node_id{}, seeds, {.k = 2, .alpha = 1, .disjoint_paths = 3}, id_with(0xff));
  time_point t{};
  std::vector<node_id> sent;
  for (auto a = lk.next(t); std::holds_alternative<lookup::send>(a); a = lk.next(t))
    sent.push_back(std::get<lookup::send>(a).to.id);
  EXPECT_EQ(sent, (std::vector<node_id>{id_with(0x10), id_with(0x20), id_with(0x30)}));
  // Path 0 (0x10, 0x40) learns 0x05; path 1 then hears of 0x05 too but must not ask it.
  lk.on_reply(id_with(0x10), {make_contact(id_with(0x05))}, t);
  lk.on_reply(id_with(0x20), {make_contact(id_with(0x05)), make_contact(id_with(0x06))}, t);
  sent.clear();
  for (auto a = lk.next(t); std::holds_alternative<lookup::send>(a); a = lk.next(t))
    sent.push_back(std::get<lookup::send>(a).to.id);
  EXPECT_EQ(sent, (std::vector<node_id>{id_with(0x05), id_with(0x06)}));
}

}  // namespace
}  // namespace kadnet::dht
