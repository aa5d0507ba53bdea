// Compare-and-swap through dht::dht_node (dht_node::cas / update) on the in-memory network of
// tests/support/dht_network.hpp, on virtual time: create, swap and conflict, two writers of one
// version, the 32-client counter with and without message loss, owner-signed keys, a lone node.
// Fixed seeds, printed on failure.
#include "kadnet/dht/dht_node.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kadnet/core/errors.hpp"
#include "tests/support/cas_counter.hpp"
#include "tests/support/dht_network.hpp"

namespace kadnet::dht {
namespace {

using namespace std::chrono_literals;
using core::node_id;
using testing::counter_of;
using testing::dht_network;
using testing::increment;

constexpr std::uint64_t default_seed = 0x636173ull;  // "cas"

byte_vector bytes_of(const std::string& s) { return byte_vector(s.begin(), s.end()); }

std::string seed_text(std::uint64_t seed) { return "seed " + std::to_string(seed); }

std::unique_ptr<dht_network> joined_network(std::uint64_t seed, std::size_t n, dht_config config = {}) {
  auto net = std::make_unique<dht_network>(seed, config);
  for (std::size_t i = 0; i < n; ++i) net->add_node();
  net->join_all();
  net->set_delay(10ms);  // one-way: requests in flight overlap, as on a network
  return net;
}

// The value a majority of the key's replicas committed: an update whose function declines.
cas_outcome quorum_read(dht_network& net, std::size_t from, const node_id& key) {
  return net.update(from, key, testing::read_only);
}

TEST(DhtCas, CreateThenSwapThenConflict) {
  SCOPED_TRACE(seed_text(default_seed));
  auto net = joined_network(default_seed, 40);
  node_id key = node_id::hash_of(bytes_of("cas key"));

  auto created = net->cas(3, key, 0, bytes_of("one"));
  ASSERT_FALSE(created.ec) << created.ec.message();
  EXPECT_TRUE(created.written);
  EXPECT_EQ(created.version, 1u);

  auto swapped = net->cas(17, key, 1, bytes_of("two"));
  ASSERT_FALSE(swapped.ec) << swapped.ec.message();
  EXPECT_EQ(swapped.version, 2u);

  // A writer that read version 1 is too late: the conflict says what is there now.
  auto stale = net->cas(25, key, 1, bytes_of("three"));
  EXPECT_EQ(stale.ec, core::errc::cas_conflict);
  EXPECT_FALSE(stale.written);
  EXPECT_FALSE(stale.maybe_written);
  EXPECT_EQ(stale.version, 2u);
  EXPECT_EQ(stale.value, bytes_of("two"));

  // Plain gets see the committed value.
  auto got = net->get(30, key);
  ASSERT_FALSE(got.ec);
  EXPECT_EQ(got.value->version, 2u);
  EXPECT_EQ(got.value->value, bytes_of("two"));
}

TEST(DhtCas, TwoWritersOfOneVersionOneWins) {
  for (std::uint64_t trial = 0; trial < 10; ++trial) {
    const std::uint64_t seed = default_seed + 100 + trial;
    SCOPED_TRACE(seed_text(seed));
    auto net = joined_network(seed, 40);
    if (trial % 2) net->set_loss(0.1);
    node_id key = node_id::hash_of(bytes_of("contended " + std::to_string(trial)));
    std::size_t a = trial % 40, b = (trial * 7 + 13) % 40;
    ASSERT_FALSE(net->cas(a, key, 0, bytes_of("base")).ec);

    // Both read version 1 and write version 2 at the same instant.
    auto op_a = net->start(a, [&](dht_node& d, core::time_point now) { return d.cas(key, 1, bytes_of("from a"), now); });
    auto op_b = net->start(b, [&](dht_node& d, core::time_point now) { return d.cas(key, 1, bytes_of("from b"), now); });
    net->run_until(net->now() + 1h, [&] { return net->node(a).done.count(op_a) && net->node(b).done.count(op_b); });
    ASSERT_TRUE(net->node(a).done.count(op_a) && net->node(b).done.count(op_b));
    auto ra = std::get<cas_outcome>(net->node(a).done.at(op_a).result);
    auto rb = std::get<cas_outcome>(net->node(b).done.at(op_b).result);

    ASSERT_NE(ra.written, rb.written) << "a: " << ra.ec.message() << " v" << ra.version << " att " << ra.attempts << ", b: " << rb.ec.message() << " v" << rb.version << " att " << rb.attempts;
    const cas_outcome& winner = ra.written ? ra : rb;
    const cas_outcome& loser = ra.written ? rb : ra;
    EXPECT_FALSE(winner.ec);
    EXPECT_EQ(winner.version, 2u);
    EXPECT_EQ(loser.ec, core::errc::cas_conflict);
    EXPECT_EQ(loser.version, 2u);
    EXPECT_EQ(loser.value, winner.value);

    net->set_loss(0);
    auto now = quorum_read(*net, (a + b + 1) % 40, key);
    EXPECT_EQ(now.version, 2u);
    EXPECT_EQ(now.value, winner.value);
  }
}

TEST(DhtCas, OwnerSignedKeysRefuseCompareAndSwap) {
  SCOPED_TRACE(seed_text(default_seed + 2));
  auto net = joined_network(default_seed + 2, 30);
  node_id key = node_id::hash_of(bytes_of("owned"));
  put_options signed_put;
  signed_put.signed_by_self = true;
  ASSERT_FALSE(net->put(4, key, bytes_of("mine alone"), signed_put).ec);
  auto r = net->cas(9, key, 1, bytes_of("taken over"));
  EXPECT_EQ(r.ec, core::errc::owned_key);
  EXPECT_FALSE(r.written);
  EXPECT_EQ(net->get(12, key).value->value, bytes_of("mine alone"));
}

TEST(DhtCas, ALoneNodeIsItsOwnMajority) {
  dht_network net(default_seed + 3);
  net.add_node();
  node_id key = node_id::hash_of(bytes_of("alone"));
  for (std::uint64_t n = 1; n <= 3; ++n) {
    auto r = net.update(0, key, increment);
    ASSERT_TRUE(r.written) << r.ec.message();
    EXPECT_EQ(r.version, n);
  }
  EXPECT_EQ(counter_of(net.node(0).store->get(key, net.now())->value), 3u);
}

// The test: 32 clients on random nodes each increment one counter 50 times with update();
// the counter ends at exactly 1,600 and every increment got its own version.
void count_to_1600(std::uint64_t seed, double loss) {
  SCOPED_TRACE(seed_text(seed));
  dht_config config;
  config.cas.max_attempts = 1000;  // 32 writers on one key: a client may lose many slots in a row
  auto net = joined_network(seed, 48, config);
  net->set_loss(loss);
  const node_id key = node_id::hash_of(bytes_of("the counter"));
  constexpr std::size_t clients = 32, increments = 50;

  struct client {
    std::size_t node;
    std::size_t left = increments;
    operation_id op = 0;
  };
  std::vector<client> all;
  std::uniform_int_distribution<std::size_t> pick(0, net->size() - 1);
  for (std::size_t c = 0; c < clients; ++c) all.push_back(client{pick(net->rng())});

  std::set<std::uint64_t> versions;  // each written increment's version
  std::size_t failures = 0, attempts = 0, busiest = 0;
  auto begin = [&](client& c) {
    c.op = net->start(c.node, [&](dht_node& d, core::time_point now) { return d.update(key, increment, now); });
  };
  for (client& c : all) begin(c);
  const auto started = net->now();
  net->run_until(net->now() + 24h, [&] {
    bool all_done = true;
    for (client& c : all) {
      if (c.left == 0) continue;
      auto& done = net->node(c.node).done;
      auto it = done.find(c.op);
      if (it == done.end()) {
        all_done = false;
        continue;
      }
      auto r = std::get<cas_outcome>(it->second.result);
      done.erase(it);
      attempts += r.attempts;
      busiest = std::max(busiest, r.attempts);
      if (r.ec || !r.written) {
        ++failures;
        ADD_FAILURE() << "client on node " << c.node << ": " << r.ec.message()
                      << (r.maybe_written ? " (maybe written)" : "");
      } else {
        EXPECT_TRUE(versions.insert(r.version).second) << "version " << r.version << " written twice";
        EXPECT_EQ(counter_of(*r.value), r.version) << "an increment built on a stale value";
      }
      if (--c.left > 0) {
        begin(c);
        all_done = false;
      }
    }
    return all_done;
  });
  for (const client& c : all) ASSERT_EQ(c.left, 0u) << "a client did not finish on node " << c.node;
  EXPECT_EQ(failures, 0u);
  EXPECT_EQ(versions.size(), clients * increments);

  net->set_loss(0);
  auto final = quorum_read(*net, pick(net->rng()), key);
  ASSERT_FALSE(final.ec) << final.ec.message();
  ASSERT_TRUE(final.value);
  EXPECT_EQ(counter_of(*final.value), clients * increments);
  EXPECT_EQ(final.version, clients * increments);
  std::printf("counter (loss %.0f%%): 1600 increments, %zu attempts (busiest update %zu), %llu messages, %.0f s virtual\n",
              loss * 100, attempts, busiest, static_cast<unsigned long long>(net->messages()),
              std::chrono::duration<double>(net->now() - started).count());
}

TEST(DhtCas, ThirtyTwoClientsCountToSixteenHundred) { count_to_1600(default_seed + 200, 0); }

TEST(DhtCas, ThirtyTwoClientsCountToSixteenHundredWithTenPercentLoss) { count_to_1600(default_seed + 201, 0.1); }

}  // namespace
}  // namespace kadnet::dht
