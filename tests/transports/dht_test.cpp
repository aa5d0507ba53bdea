// The DHT over real TCP and UDP sessions on loopback: joining, puts and gets between processes' worth of
// nodes, a node that cannot accept connections, and a restart that keeps a node's values.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <future>
#include <mutex>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "kadnet/core/errors.hpp"
#include "kadnet/dht/dht_codec.hpp"
#include "tests/support/cas_counter.hpp"
#include "tests/support/loopback_nodes.hpp"
#include "kadnet/transports/node.hpp"

namespace kadnet {
namespace {

using boost::system::error_code;
using testing::loopback_dht;
using testing::wait;

void join(node& n, const uri& via) {
  auto [ec, peer] = wait<error_code, node_id>([&](auto h) { n.async_connect(via, std::nullopt, h); });
  ASSERT_FALSE(ec) << ec.message();
  auto [bec, found] = wait<error_code, dht::find_node_result>([&](auto h) { n.dht().bootstrap(h); });
  ASSERT_FALSE(bec) << bec.message();
}

byte_vector bytes_of(std::string_view s) { return byte_vector(s.begin(), s.end()); }

dht::put_outcome put(node& n, std::string_view key, std::string_view value) {
  auto [ec, r] = wait<error_code, dht::put_outcome>(
      [&](auto h) { n.dht().put(text_key(key), byte_vector(value.begin(), value.end()), h); });
  EXPECT_FALSE(ec) << ec.message();
  return r;
}

std::optional<std::string> get(node& n, std::string_view key) {
  auto [ec, r] = wait<error_code, dht::get_result>([&](auto h) { n.dht().get(text_key(key), h); });
  if (ec || !r.value) return std::nullopt;
  return std::string(r.value->value.begin(), r.value->value.end());
}

class loopback_swarm : public testing::loopback_nodes {
 public:
  explicit loopback_swarm(std::string transport) : loopback_nodes(transport), transport_(std::move(transport)) {}
  node& add_dht(transports::dht_settings s = loopback_dht(), bool listen = true,
                std::optional<core::identity> id = std::nullopt) {
    own_.push_back(std::make_unique<node>(io().get_executor(), id ? std::move(*id) : core::identity::generate(),
                                          core::node_config{}, s));
    if (listen) own_addresses_.push_back(own_.back()->listen(*transports::parse_uri(transport_ + "://127.0.0.1:0")));
    else own_addresses_.push_back(uri{});
    return *own_.back();
  }
  ~loopback_swarm() {
    for (auto& n : own_) n->stop();
  }
  std::string transport_;
  std::vector<std::unique_ptr<node>> own_;
  std::vector<uri> own_addresses_;
};

// A fresh data directory for one test (the caller removes it) and DHT settings that use it.
std::filesystem::path fresh_data_dir(const std::string& what, const std::string& transport) {
  auto dir = std::filesystem::temp_directory_path() / ("kadnet-dht-" + what + "-" + transport + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}
transports::dht_settings persistent_in(const std::filesystem::path& dir) {
  transports::dht_settings s = loopback_dht();
  s.data_dir = dir;
  return s;
}
// `count` DHT nodes, each but the first joined through the first.
void add_joined(loopback_swarm& net, int count) {
  for (int i = 0; i < count; ++i) net.add_dht();
  for (std::size_t i = net.own_.size() - count + 1; i < net.own_.size(); ++i) join(*net.own_[i], net.own_addresses_[net.own_.size() - count]);
}

class DhtOverTransport : public ::testing::TestWithParam<std::string> {};

TEST_P(DhtOverTransport, ValuesPutOnOneNodeAreFoundFromEveryOther) {
  loopback_swarm net(GetParam());
  for (int i = 0; i < 16; ++i) net.add_dht();
  for (std::size_t i = 1; i < net.own_.size(); ++i) join(*net.own_[i], net.own_addresses_[0]);
  auto r = put(*net.own_[5], "colour", "blue");
  EXPECT_GE(r.replicas, 1u);
  for (auto& n : net.own_) EXPECT_EQ(get(*n, "colour"), "blue");
  auto [ec, missing] = wait<error_code, dht::get_result>([&](auto h) { net.own_[3]->dht().get(text_key("nothing"), h); });
  EXPECT_EQ(ec, make_error_code(core::errc::not_found));
}

// dht().join: the seeds dialed and the lookup of the node's own id in one operation.
TEST_P(DhtOverTransport, JoinDialsItsSeedsThenLooksItselfUp) {
  loopback_swarm net(GetParam());
  for (int i = 0; i < 8; ++i) net.add_dht();
  for (std::size_t i = 1; i < net.own_.size(); ++i) {
    std::vector<uri> seeds{net.own_addresses_[0]};
    if (i > 1) seeds.push_back(net.own_addresses_[i - 1]);
    auto [ec, found] = wait<error_code, dht::find_node_result>([&](auto h) { net.own_[i]->dht().join(seeds, h); });
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_FALSE(found.closest.empty());
  }
  put(*net.own_[7], "joined", "yes");
  for (auto& n : net.own_) EXPECT_EQ(get(*n, "joined"), "yes");
  auto [none, r] = wait<error_code, dht::find_node_result>([&](auto h) { net.own_[1]->dht().join({}, h); });
  EXPECT_EQ(none, make_error_code(core::errc::not_connected)) << "no seed to join through";
}

TEST_P(DhtOverTransport, CompareAndSwapAndConcurrentUpdatesLoseNothing) {
  loopback_swarm net(GetParam());
  for (int i = 0; i < 8; ++i) net.add_dht();
  for (std::size_t i = 1; i < net.own_.size(); ++i) join(*net.own_[i], net.own_addresses_[0]);
  const auto key = text_key("loopback counter");
  auto [ec, created] = wait<error_code, dht::cas_outcome>([&](auto h) { net.own_[1]->dht().cas(key, 0, testing::counter_bytes(0), h); });
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(created.version, 1u);
  auto [stale_ec, stale] = wait<error_code, dht::cas_outcome>([&](auto h) { net.own_[2]->dht().cas(key, 0, testing::counter_bytes(9), h); });
  EXPECT_EQ(stale_ec, make_error_code(core::errc::cas_conflict));
  EXPECT_EQ(stale.value, testing::counter_bytes(0));

  // Four nodes increment at once, five times each, each update started when its last one ended.
  constexpr int writers = 4, rounds = 5;
  std::vector<std::promise<int>> finished(writers);
  std::vector<std::function<void(int, int)>> next(writers);
  for (int w = 0; w < writers; ++w) {
    next[w] = [&, w](int left, int failures) {
      if (left == 0) return finished[w].set_value(failures);
      net.own_[2 + w]->dht().update(key, testing::increment, [&, w, left, failures](error_code e, dht::cas_outcome r) {
        next[w](left - 1, failures + ((e || !r.written) ? 1 : 0));
      });
    };
    next[w](rounds, 0);
  }
  for (auto& f : finished) EXPECT_EQ(f.get_future().get(), 0) << "failed updates";
  auto [rec, read] = wait<error_code, dht::cas_outcome>(
      [&](auto h) { net.own_[7]->dht().update(key, testing::read_only, h); });
  ASSERT_FALSE(rec) << rec.message();
  EXPECT_EQ(read.value, testing::counter_bytes(writers * rounds));
  EXPECT_EQ(read.version, 1u + writers * rounds);
}

// Locks over real sessions: a grant, another node refused with `locked` naming the holder, unlock,
// and the other node then gets it with a larger token.
TEST_P(DhtOverTransport, LockRefusesOthersUntilUnlocked) {
  using namespace std::chrono_literals;
  loopback_swarm net(GetParam());
  for (int i = 0; i < 6; ++i) net.add_dht();
  for (std::size_t i = 1; i < net.own_.size(); ++i) join(*net.own_[i], net.own_addresses_[0]);
  const auto key = text_key("loopback lock");
  auto [ec, granted] = wait<error_code, dht::lock_outcome>([&](auto h) { net.own_[1]->dht().lock(key, 60s, h); });
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(granted.token, 1u);
  EXPECT_EQ(granted.holder, net.own_[1]->id());

  auto [lec, refused] = wait<error_code, dht::lock_outcome>([&](auto h) { net.own_[4]->dht().lock(key, 60s, h); });
  EXPECT_EQ(lec, make_error_code(core::errc::locked));
  EXPECT_EQ(refused.holder, net.own_[1]->id());
  EXPECT_EQ(refused.token, 1u);

  auto [uec, released] = wait<error_code, dht::lock_outcome>([&](auto h) { net.own_[1]->dht().unlock(key, granted.token, h); });
  ASSERT_FALSE(uec) << uec.message();
  auto [nec, next] = wait<error_code, dht::lock_outcome>([&](auto h) { net.own_[4]->dht().lock(key, 60s, h); });
  ASSERT_FALSE(nec) << nec.message();
  EXPECT_EQ(next.token, 2u);
  EXPECT_EQ(next.holder, net.own_[4]->id());
}

// Listening over real sessions: the subscriber hears a put, a patch (as a diff) and another put,
// in order; after cancel, nothing more, and a second cancel is refused.
TEST_P(DhtOverTransport, ListenHearsEachNewVersionUntilCancelled) {
  using namespace std::chrono_literals;
  loopback_swarm net(GetParam());
  for (int i = 0; i < 8; ++i) net.add_dht();
  for (std::size_t i = 1; i < net.own_.size(); ++i) join(*net.own_[i], net.own_addresses_[0]);
  const auto key = text_key("loopback listen");
  std::mutex m;
  std::vector<dht::listen_delivery> heard;
  std::promise<void> three;
  auto on_version = [&](const dht::listen_delivery& d) {
    std::lock_guard lock(m);
    heard.push_back(d);
    if (heard.size() == 3) three.set_value();
  };
  auto [ec, subscribed] = wait<error_code, dht::listen_outcome>([&](auto h) { net.own_[3]->dht().listen(key, on_version, h); });
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_GE(subscribed.replicas, 1u);

  // Long enough that a diff is smaller than the value (else the whole value travels).
  const std::string tail(100, '.');
  put(*net.own_[5], "loopback listen", "hello world" + tail);
  auto [pec, patched] = wait<error_code, dht::patch_outcome>([&](auto h) {
    net.own_[5]->dht().patch(key, 1, bytes_of("hello world" + tail), dht::value_patch{{dht::splice{6, 5, bytes_of("there")}}}, h);
  });
  ASSERT_FALSE(pec) << pec.message();
  put(*net.own_[6], "loopback listen", "bye");
  ASSERT_EQ(three.get_future().wait_for(30s), std::future_status::ready) << "the third version never came";
  {
    std::lock_guard lock(m);
    ASSERT_EQ(heard.size(), 3u);
    EXPECT_EQ(heard[0].value.value, bytes_of("hello world" + tail));
    EXPECT_EQ(heard[1].value.value, bytes_of("hello there" + tail));
    ASSERT_TRUE(heard[1].diff.has_value());
    EXPECT_EQ(heard[1].diff->splices.at(0).inserted, bytes_of("there"));
    EXPECT_EQ(heard[2].value.value, bytes_of("bye"));
    EXPECT_EQ(heard[2].value.version, 3u);
  }

  auto [cec] = wait<error_code>([&](auto h) { net.own_[3]->dht().cancel(subscribed.subscription, h); });
  EXPECT_FALSE(cec) << cec.message();
  put(*net.own_[5], "loopback listen", "unheard");
  // Whatever a replica still sends, the listener's node has no subscription to hand it to; the get
  // runs on that node's strand after any delivery the put could have caused.
  EXPECT_EQ(get(*net.own_[3], "loopback listen"), "unheard");
  {
    std::lock_guard lock(m);
    EXPECT_EQ(heard.size(), 3u);
  }
  auto [again] = wait<error_code>([&](auto h) { net.own_[3]->dht().cancel(subscribed.subscription, h); });
  EXPECT_EQ(again, make_error_code(core::errc::not_found));
}

TEST_P(DhtOverTransport, NodeWithoutListenerJoinsStoresAndFindsButIsNeverHandedOut) {
  loopback_swarm net(GetParam());
  add_joined(net, 6);
  node& hidden = net.add_dht(loopback_dht(), /*listen=*/false);
  join(hidden, net.own_addresses_[2]);
  put(hidden, "from-behind-nat", "hello");
  EXPECT_EQ(get(*net.own_[4], "from-behind-nat"), "hello");
  put(*net.own_[1], "for-the-hidden-node", "hi");
  EXPECT_EQ(get(hidden, "for-the-hidden-node"), "hi");
  // No FIND_NODE reply on the wire hands the dial-only node out as a contact (a node's own
  // lookup may still reach it over the session it has).
  for (std::size_t i = 0; i < 6; ++i) {
    auto [ec, r] = wait<error_code, reply>([&](auto h) {
      net.own_[(i + 1) % 6]->async_request(net.own_addresses_[i], static_cast<std::uint8_t>(core::wire::opcode::find_node),
                                           core::wire::find_node{hidden.id()}, h);
    });
    ASSERT_FALSE(ec) << ec.message();
    std::vector<dht::wire_contact> contacts;
    ASSERT_FALSE(dht::decode_contacts(r.data, contacts));
    EXPECT_FALSE(contacts.empty());
    for (const auto& c : contacts) EXPECT_NE(c.id, hidden.id()) << "node " << i << " handed out the dial-only node";
  }
}

TEST_P(DhtOverTransport, RestartedNodeWithItsDataDirectoryStillServesItsValues) {
  auto dir = fresh_data_dir("restart", GetParam());
  auto identity_file = dir / "identity.key";
  transports::dht_settings persistent = persistent_in(dir);
  {
    loopback_swarm net(GetParam());
    node& keeper = net.add_dht(persistent);
    put(keeper, "kept", "across restarts");  // alone: stored on the keeper itself
    core::identity::load_or_create(identity_file);
  }
  loopback_swarm net(GetParam());
  node& keeper = net.add_dht(persistent);
  node& reader = net.add_dht();
  join(reader, net.own_addresses_[0]);
  EXPECT_EQ(get(reader, "kept"), "across restarts");
  std::filesystem::remove_all(dir);
  (void)keeper;
}

TEST_P(DhtOverTransport, RestartedNodeRejoinsThroughItsSavedContacts) {
  auto dir = fresh_data_dir("rejoin", GetParam());
  transports::dht_settings persistent = persistent_in(dir);
  loopback_swarm net(GetParam());
  add_joined(net, 6);
  put(*net.own_[3], "while-away", "still here");
  {
    // A node that knew the swarm, then stopped (its contacts saved in its data directory).
    node traveller(net.io().get_executor(), core::identity::load_or_create(dir / "identity.key"), {}, persistent);
    join(traveller, net.own_addresses_[1]);
    wait<>([&](auto h) { traveller.async_stop(h); });
  }
  node back(net.io().get_executor(), core::identity::load_or_create(dir / "identity.key"), {}, persistent);
  auto [ec, found] = wait<error_code, dht::find_node_result>([&](auto h) { back.dht().rejoin(h); });
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_FALSE(found.closest.empty());
  EXPECT_EQ(get(back, "while-away"), "still here");
  back.stop();
  std::filesystem::remove_all(dir);
}

TEST_P(DhtOverTransport, ARunningNodeSavesItsContactsWithoutWaitingForItsStop) {
  auto dir = fresh_data_dir("snapshot", GetParam());
  transports::dht_settings persistent = persistent_in(dir);
  persistent.snapshot_interval = std::chrono::milliseconds(0);  // at every turn of the driver
  loopback_swarm net(GetParam());
  add_joined(net, 4);
  node runner(net.io().get_executor(), core::identity::generate(), {}, persistent);
  join(runner, net.own_addresses_[1]);
  // Answered on the driver's strand after the turn that finished the join (and saved) is over.
  EXPECT_FALSE(get(runner, "nothing here"));
  // Read while the node still runs and holds the store: a kill now would leave these behind.
  auto saved = dht::sqlite_store(dir).load_contacts();
  EXPECT_GE(saved.size(), 3u);
  runner.stop();
  std::filesystem::remove_all(dir);
}

// A restart that has reached one contact when it stops keeps the contacts it had saved before
// behind that one: its next restart still has them to dial.
TEST_P(DhtOverTransport, ARestartThatReachedFewContactsKeepsItsSavedOnes) {
  auto dir = fresh_data_dir("keep", GetParam());
  transports::dht_settings persistent = persistent_in(dir);
  loopback_swarm net(GetParam());
  add_joined(net, 6);
  auto identity = [&] { return core::identity::load_or_create(dir / "identity.key"); };
  {
    node traveller(net.io().get_executor(), identity(), {}, persistent);
    join(traveller, net.own_addresses_[1]);
    wait<>([&](auto h) { traveller.async_stop(h); });
  }
  const auto before = dht::sqlite_store(dir).load_contacts();
  ASSERT_GE(before.size(), 5u);
  {
    node back(net.io().get_executor(), identity(), {}, persistent);
    auto [ec, peer] = wait<error_code, node_id>([&](auto h) { back.async_connect(net.own_addresses_[2], std::nullopt, h); });
    ASSERT_FALSE(ec) << ec.message();
    auto [ping_ec, rtt] = wait<error_code, std::chrono::microseconds>([&](auto h) { back.async_ping(peer, h); });
    ASSERT_FALSE(ping_ec) << ping_ec.message();
    auto [buckets] = wait<std::vector<dht::bucket_view>>([&](auto h) { back.dht().buckets(h); });
    std::size_t known = 0;
    for (const auto& b : buckets) known += b.contacts.size();
    ASSERT_GE(known, 1u) << "the peer it reached is in its table";
    ASSERT_LT(known, before.size()) << "its table is still filling";
    wait<>([&](auto h) { back.async_stop(h); });
  }
  const auto after = dht::sqlite_store(dir).load_contacts();
  for (const auto& c : before)
    EXPECT_TRUE(std::any_of(after.begin(), after.end(), [&](const dht::contact& a) { return a.id == c.id; }))
        << "a saved contact was dropped";
  std::filesystem::remove_all(dir);
}

// Per-operation cancellation of DHT operations. Node 1 loses everything it sends, so its
// operations could only end by their timeouts (a second or more); a cancellation ends them at
// once. A get honours any type; a put only terminal and partial (its STOREs may have landed).
TEST(DhtCancellation, ACancelledGetEndsAtOnceAndAPutIgnoresATotalCancellation) {
  using namespace std::chrono_literals;
  loopback_swarm net("udp");
  for (int i = 0; i < 4; ++i) net.add_dht();
  for (std::size_t i = 1; i < net.own_.size(); ++i) join(*net.own_[i], net.own_addresses_[0]);
  put(*net.own_[2], "kept", "yes");
  node& muted = *net.own_[1];
  transports::udp_impairment gone;
  gone.loss = 1.0;
  muted.set_udp_impairment(gone);

  auto cancelled = [&](boost::asio::cancellation_type type, auto start) {
    boost::asio::cancellation_signal cancel;
    std::promise<error_code> ended;
    start(boost::asio::bind_cancellation_slot(cancel.slot(), [&](error_code ec, auto) { ended.set_value(ec); }));
    boost::asio::post(muted.get_executor(), [&] { cancel.emit(type); });
    return ended.get_future().get();
  };
  const auto key = text_key("kept");
  EXPECT_EQ(cancelled(boost::asio::cancellation_type::total, [&](auto h) { muted.dht().get(key, h); }),
            boost::asio::error::operation_aborted);
  EXPECT_EQ(cancelled(boost::asio::cancellation_type::terminal, [&](auto h) { muted.dht().find_node(key, h); }),
            boost::asio::error::operation_aborted);
  EXPECT_EQ(cancelled(boost::asio::cancellation_type::terminal,
                      [&](auto h) { muted.dht().put(text_key("cancelled put"), bytes_of("x"), h); }),
            boost::asio::error::operation_aborted);
  const error_code total_on_put = cancelled(boost::asio::cancellation_type::total, [&](auto h) {
    muted.dht().put(text_key("uncancelled put"), bytes_of("x"), h);
  });
  EXPECT_NE(total_on_put, boost::asio::error::operation_aborted) << "a put ran to its own end";

  // The node goes on: once it can send again its gets find what is stored.
  muted.set_udp_impairment({});
  EXPECT_EQ(get(muted, "kept"), "yes");
}

// The usual way to give a DHT operation a deadline: race it against a timer. The get loses
// and ends cancelled (were it not cancellable, the group would wait for its timeouts).
TEST(DhtCancellation, AGetRacedAgainstATimerEndsCancelledWhenTheTimerWins) {
  using namespace std::chrono_literals;
  loopback_swarm net("udp");
  for (int i = 0; i < 3; ++i) net.add_dht();
  for (std::size_t i = 1; i < net.own_.size(); ++i) join(*net.own_[i], net.own_addresses_[0]);
  node& muted = *net.own_[1];
  transports::udp_impairment gone;
  gone.loss = 1.0;
  muted.set_udp_impairment(gone);
  auto outcome = boost::asio::co_spawn(
      muted.get_executor(),
      [&]() -> boost::asio::awaitable<std::pair<std::size_t, error_code>> {
        boost::asio::steady_timer timer(muted.get_executor(), 50ms);
        auto [order, get_ec, found, timer_ec] =
            co_await boost::asio::experimental::make_parallel_group(
                muted.dht().get(text_key("anything"), boost::asio::deferred), timer.async_wait(boost::asio::deferred))
                .async_wait(boost::asio::experimental::wait_for_one(), boost::asio::use_awaitable);
        co_return std::pair{order[0], get_ec};
      },
      boost::asio::use_future);
  ASSERT_EQ(outcome.wait_for(30s), std::future_status::ready);
  auto [first, get_ec] = outcome.get();
  EXPECT_EQ(first, 1u) << "the timer won";
  EXPECT_EQ(get_ec, boost::asio::error::operation_aborted);
}

// A node made without its DHT says so, rather than "not connected".
TEST(DhtDisabled, DhtOperationsAndShoutsSayTheDhtIsOff) {
  boost::asio::io_context io;
  transports::dht_settings off;
  off.enabled = false;
  node n(io.get_executor(), core::identity::generate(), {}, off);
  std::optional<error_code> get_ec, shout_ec;
  n.dht().get(text_key("k"), [&](error_code ec, dht::get_result) { get_ec = ec; });
  n.async_shout(byte_vector{1}, [&](error_code ec, dht::shout_outcome) { shout_ec = ec; });
  for (int handlers = 0; handlers < 1000 && !(get_ec && shout_ec); ++handlers) io.run_one_for(std::chrono::seconds(1));
  EXPECT_EQ(get_ec, make_error_code(core::errc::dht_disabled));
  EXPECT_EQ(shout_ec, make_error_code(core::errc::dht_disabled));
  n.stop();
}

INSTANTIATE_TEST_SUITE_P(Loopback, DhtOverTransport, ::testing::ValuesIn(testing::loopback_transports()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kadnet
