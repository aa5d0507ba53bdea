// SPEAK, WHISPER and SHOUT between kadnet::nodes on loopback TCP and UDP (node.async_speak,
// async_whisper, async_shout and their handlers; transports/node_driver_broadcast.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>

#include "kadnet/core/crypto/sealed_box.hpp"
#include "kadnet/core/errors.hpp"
#include "tests/support/loopback_nodes.hpp"
#include "tests/support/raw_peer.hpp"
#include "kadnet/transports/node.hpp"

namespace kadnet {
namespace {

using boost::system::error_code;
using testing::loopback_nodes;
using testing::wait;
using namespace std::chrono_literals;

byte_vector bytes_of(std::string_view text) { return byte_vector(text.begin(), text.end()); }
std::string text_of(byte_span bytes) { return std::string(bytes.begin(), bytes.end()); }
bool contains(byte_span haystack, std::string_view needle) {
  auto n = as_bytes(needle);
  return std::search(haystack.begin(), haystack.end(), n.begin(), n.end()) != haystack.end();
}

// What a node's handler received, filled on the io thread and read by the test: waits are on
// completion signals, bounded so that a lost message fails the test instead of hanging it.
template <typename T>
class inbox {
 public:
  void push(T item) {
    std::lock_guard lock(mutex_);
    items_.push_back(std::move(item));
    arrived_.notify_all();
  }
  // The items once there are at least `n` (fewer after 20 s: the test then fails on them).
  std::vector<T> wait_for(std::size_t n) {
    std::unique_lock lock(mutex_);
    arrived_.wait_for(lock, 20s, [&] { return items_.size() >= n; });
    return items_;
  }
  std::vector<T> items() {
    std::lock_guard lock(mutex_);
    return items_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<T> items_;
};

void connect(node& from, const uri& to) {
  auto [ec, peer] = wait<error_code, node_id>([&](auto h) { from.async_connect(to, std::nullopt, h); });
  ASSERT_FALSE(ec) << ec.message();
}

// --- SPEAK ---

struct spoken {
  node_id origin, from;
  std::string text;
};

// Records the speaks a node hears; forwards those whose origin is `forward_from`, if set.
void listen_for_speaks(node& n, inbox<spoken>& log, std::optional<node_id> forward_from = std::nullopt) {
  n.on_speak([&log, forward_from](const node_id& origin, const node_id& from, byte_span payload) {
    log.push(spoken{origin, from, text_of(payload)});
    return forward_from == origin;
  });
}

std::size_t speak(node& n, std::string_view text) {
  auto [ec, reached] = wait<error_code, std::size_t>([&](auto h) { n.async_speak(bytes_of(text), h); });
  EXPECT_FALSE(ec) << ec.message();
  return reached;
}

message_counters stats_of(node& n) { return n.async_message_stats(boost::asio::use_future).get(); }

class Speak : public ::testing::TestWithParam<std::string> {
 protected:
  // Four nodes (0..3) with a session for each pair (the first dials the second), each
  // recording what it hears and forwarding the speaks of `forward_from`, if set.
  void start(std::initializer_list<std::pair<std::size_t, std::size_t>> sessions,
             std::optional<std::size_t> forward_from = std::nullopt) {
    for (std::size_t i = 0; i < 4; ++i) net.add();
    for (auto [from, to] : sessions) connect(net[from], net.address(to));
    for (std::size_t i = 0; i < 4; ++i)
      listen_for_speaks(net[i], heard[i], forward_from ? std::optional(net[*forward_from].id()) : std::nullopt);
  }
  // How often node i's handler ran for speaks of node `origin`.
  long heard_from(std::size_t i, std::size_t origin) {
    auto all = heard[i].items();
    return std::count_if(all.begin(), all.end(), [&](const auto& h) { return h.origin == net[origin].id(); });
  }

  std::array<inbox<spoken>, 4> heard;  // before net: outlives the handlers that fill it
  loopback_nodes net{GetParam()};
};

TEST_P(Speak, ReachesExactlyTheDirectPeers) {
  // 1 - 0 - 2, and 3 behind 1: 3 is no peer of 0's.
  start({{1, 0}, {2, 0}, {3, 1}});
  EXPECT_EQ(speak(net[0], "hello neighbours"), 2u);
  for (std::size_t i : {1, 2}) {
    auto got = heard[i].wait_for(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].origin, net[0].id());
    EXPECT_EQ(got[0].from, net[0].id());
    EXPECT_EQ(got[0].text, "hello neighbours");
  }
  // 1 does not forward by default. Its own speak, sent after it handled 0's, reaches 3 after
  // anything 1 could have forwarded: 3 heard 1 only.
  EXPECT_EQ(speak(net[1], "from 1"), 2u);
  ASSERT_EQ(heard[3].wait_for(1).size(), 1u);
  EXPECT_EQ(heard_from(3, 1), 1);
  EXPECT_EQ(stats_of(net[3]).speaks_received, 1u);
  EXPECT_EQ(stats_of(net[1]).speaks_forwarded, 0u);
}

TEST_P(Speak, ForwardedByTheApplicationItReachesTheNextRingOnce) {
  // 0 - 1, 0 - 2, 1 - 3, 2 - 3: 3 hears 0's speak through both 1 and 2, and forwards it too.
  start({{1, 0}, {2, 0}, {1, 3}, {2, 3}}, 0);
  EXPECT_EQ(speak(net[0], "pass it on"), 2u);
  auto first_at_3 = heard[3].wait_for(1);
  ASSERT_EQ(first_at_3.size(), 1u);
  EXPECT_EQ(first_at_3[0].origin, net[0].id());
  EXPECT_TRUE(first_at_3[0].from == net[1].id() || first_at_3[0].from == net[2].id());
  ASSERT_EQ(heard[1].wait_for(1).size(), 1u);
  ASSERT_EQ(heard[2].wait_for(1).size(), 1u);
  // Each forwarder speaks once more after forwarding: on the same sessions, these arrive after
  // every copy it forwarded, so once they are ACKed no copy is still on its way.
  for (std::size_t i : {1, 2, 3}) speak(net[i], "sync");
  for (std::size_t i : {1, 2, 3}) EXPECT_EQ(heard_from(i, 0), 1) << "node " << i;
  EXPECT_EQ(heard_from(0, 0), 0);  // its own speak never comes back to the origin's handler
  // 3 got two copies and passed one on to whichever of 1 and 2 it did not get it from.
  std::uint64_t duplicates = 0;
  for (std::size_t i : {1, 2, 3}) duplicates += stats_of(net[i]).speaks_duplicate;
  EXPECT_EQ(duplicates, 2u);
}

TEST_P(Speak, WithNoPeerItIsNotConnected) {
  auto& a = net.add();
  auto [ec, reached] = wait<error_code, std::size_t>([&](auto h) { a.async_speak(bytes_of("anyone?"), h); });
  EXPECT_EQ(ec, make_error_code(core::errc::not_connected));
  EXPECT_EQ(reached, 0u);
}

INSTANTIATE_TEST_SUITE_P(Loopback, Speak, ::testing::ValuesIn(testing::loopback_transports()),
                         [](const auto& info) { return info.param; });

// --- WHISPER ---

struct whispered {
  node_id sender;
  std::string text;
  bool sealed;
};

void listen_for_whispers(node& n, inbox<whispered>& log) {
  n.on_whisper([&log](const node_id& sender, byte_span plaintext, bool sealed) {
    log.push(whispered{sender, text_of(plaintext), sealed});
  });
}

error_code whisper(node& from, const node_id& to, std::string_view text, whisper_options options = {}) {
  return std::get<0>(wait<error_code>([&](auto h) { from.async_whisper(to, bytes_of(text), options, h); }));
}

class Whisper : public ::testing::TestWithParam<std::string> {};

TEST_P(Whisper, DeliversThePlaintextSealedOrNot) {
  inbox<whispered> at_b;  // outlives the nodes whose handlers fill it
  loopback_nodes net(GetParam());
  auto& a = net.add();
  auto& b = net.add();
  connect(a, net.address(1));
  listen_for_whispers(b, at_b);
  EXPECT_FALSE(whisper(a, b.id(), "for your eyes only"));
  EXPECT_FALSE(whisper(a, b.id(), "nothing to hide", whisper_options{.sealed = false}));
  auto got = at_b.wait_for(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].sender, a.id());
  EXPECT_EQ(got[0].text, "for your eyes only");
  EXPECT_TRUE(got[0].sealed);
  EXPECT_EQ(got[1].text, "nothing to hide");
  EXPECT_FALSE(got[1].sealed);
  EXPECT_EQ(stats_of(b).whispers_received, 2u);
}

TEST_P(Whisper, FindsATargetThatIsNoDirectPeerThroughTheDht) {
  // A - B - C: A knows C only through B's routing table.
  inbox<whispered> at_c;
  loopback_nodes net(GetParam());
  auto& a = net.add();
  net.add();
  auto& c = net.add();
  connect(a, net.address(1));
  connect(c, net.address(1));
  auto peers = a.async_peers(boost::asio::use_future).get();
  ASSERT_TRUE(std::none_of(peers.begin(), peers.end(), [&](const auto& p) { return p.peer == c.id(); }));
  listen_for_whispers(c, at_c);
  EXPECT_FALSE(whisper(a, c.id(), "found you"));
  auto got = at_c.wait_for(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sender, a.id());
  EXPECT_EQ(got[0].text, "found you");
}

TEST_P(Whisper, ANodeNobodyKnowsIsNotFound) {
  loopback_nodes net(GetParam());
  auto& a = net.add();
  net.add();
  connect(a, net.address(1));
  EXPECT_EQ(whisper(a, core::identity::generate().id(), "hello?"), make_error_code(core::errc::peer_not_found));
  EXPECT_EQ(whisper(a, a.id(), "me"), make_error_code(core::errc::own_id));
}

INSTANTIATE_TEST_SUITE_P(Loopback, Whisper, ::testing::ValuesIn(testing::loopback_transports()),
                         [](const auto& info) { return info.param; });

// The target's side of the session run by hand: what a capture of the decrypted session holds,
// and receipts of our choosing.
class WhisperToRawPeer : public ::testing::Test {
 protected:
  WhisperToRawPeer() : sender(net.add()), target(net.address(0)) {
    EXPECT_TRUE(target.handshake(target_id));
  }
  // Starts a whisper to the raw peer and returns the WHISPER message as the peer decoded it.
  core::wire::message start_whisper(std::string_view text, whisper_options options = {}) {
    sender.async_whisper(target_id.id(), bytes_of(text), options, [this](error_code ec) { result.set_value(ec); });
    for (;;) {
      auto m = target.next_message();
      if (!m) ADD_FAILURE() << "the session ended before the whisper came";
      if (!m || std::holds_alternative<core::wire::whisper>(m->body)) return m.value_or(core::wire::message{});
    }
  }
  error_code answer(const core::wire::message& request, byte_vector receipt) {
    target.send_raw(target.seal(core::wire::message{0, request.id, core::wire::ack{request.opcode, std::move(receipt)}}));
    return result.get_future().get();
  }
  static byte_vector receipt_of(byte_span payload) {
    auto h = node_id::hash_of(payload);
    return byte_vector(h.bytes().begin(), h.bytes().end());
  }

  loopback_nodes net;
  node& sender;
  core::identity target_id = core::identity::generate();
  testing::raw_peer target;
  std::promise<error_code> result;
};

TEST_F(WhisperToRawPeer, ACaptureOfTheSessionHoldsNoPlaintext) {
  constexpr std::string_view secret = "the eagle lands at dawn";
  auto m = start_whisper(secret);
  const auto& w = std::get<core::wire::whisper>(m.body);
  EXPECT_TRUE(w.sealed);
  EXPECT_EQ(w.sender, sender.id());
  EXPECT_EQ(w.target, target_id.id());
  EXPECT_FALSE(contains(w.payload, secret));
  auto opened = core::crypto::open_sealed(target_id, w.payload);
  ASSERT_TRUE(opened);
  EXPECT_EQ(text_of(*opened), secret);
  EXPECT_FALSE(answer(m, receipt_of(w.payload)));
}

TEST_F(WhisperToRawPeer, OptedOutThePayloadIsThePlaintext) {
  auto m = start_whisper("open letter", whisper_options{.sealed = false});
  const auto& w = std::get<core::wire::whisper>(m.body);
  EXPECT_FALSE(w.sealed);
  EXPECT_EQ(text_of(w.payload), "open letter");
  EXPECT_FALSE(answer(m, receipt_of(w.payload)));
}

TEST_F(WhisperToRawPeer, AReceiptForOtherBytesFailsTheWhisper) {
  auto m = start_whisper("sign here");
  EXPECT_EQ(answer(m, receipt_of(as_bytes("sign here"))), make_error_code(core::errc::receipt_mismatch));
}

// A whisper whose receipt has not come can be cancelled (terminal or partial, as a call): it ends
// with operation_aborted at once, and the receipt that comes later completes nothing more.
TEST_F(WhisperToRawPeer, AWhisperWaitingForItsReceiptCanBeCancelled) {
  boost::asio::cancellation_signal cancel;
  struct outcome {
    std::atomic<int> completions{0};
    std::promise<error_code> ended;
  };
  auto seen = std::make_shared<outcome>();  // outlives the test should the whisper never end
  sender.async_whisper(target_id.id(), bytes_of("held"), whisper_options{},
                       boost::asio::bind_cancellation_slot(cancel.slot(), [seen](error_code ec) {
                         if (++seen->completions == 1) seen->ended.set_value(ec);
                       }));
  core::wire::message m;
  while (!std::holds_alternative<core::wire::whisper>(m.body)) {
    auto next = target.next_message();
    ASSERT_TRUE(next) << "the session ended before the whisper came";
    m = std::move(*next);
  }
  boost::asio::post(sender.get_executor(), [&] { cancel.emit(boost::asio::cancellation_type::terminal); });
  auto cancelled = seen->ended.get_future();
  ASSERT_EQ(cancelled.wait_for(30s), std::future_status::ready) << "the whisper still waits for its receipt";
  EXPECT_EQ(cancelled.get(), boost::asio::error::operation_aborted);
  const auto& w = std::get<core::wire::whisper>(m.body);
  target.send_raw(target.seal(core::wire::message{0, m.id, core::wire::ack{m.opcode, receipt_of(w.payload)}}));
  // The next whisper gets its own receipt; by then the late one has come and completed nothing.
  auto next = start_whisper("next");
  EXPECT_FALSE(answer(next, receipt_of(std::get<core::wire::whisper>(next.body).payload)));
  EXPECT_EQ(seen->completions.load(), 1);
}

// A peer run by hand sends whispers that a kadnet node cannot take.
class WhisperFromRawPeer : public ::testing::Test {
 protected:
  WhisperFromRawPeer() : target(net.add()), peer(net.address(0)) {
    EXPECT_TRUE(peer.handshake(peer_id));
    target.on_whisper([this](const node_id& sender, byte_span plaintext, bool sealed) {
      heard.push(whispered{sender, text_of(plaintext), sealed});
    });
  }
  // Sends a WHISPER and waits for the node's ACK (which comes before it opens the payload).
  void send(core::wire::whisper w) {
    peer.send_raw(peer.seal(core::wire::message{static_cast<std::uint8_t>(core::wire::opcode::whisper), 7, std::move(w)}));
    for (;;) {
      auto m = peer.next_message();
      ASSERT_TRUE(m) << "the session ended before the ACK came";
      if (m->id == 7 && std::holds_alternative<core::wire::ack>(m->body)) return;
    }
  }

  inbox<whispered> heard;
  loopback_nodes net;
  node& target;
  core::identity peer_id = core::identity::generate();
  testing::raw_peer peer;
};

TEST_F(WhisperFromRawPeer, OneThatDoesNotOpenIsDroppedAndCounted) {
  auto sealed_to_another = *core::crypto::seal_to(core::identity::generate().id(), as_bytes("not for you"));
  send(core::wire::whisper{peer_id.id(), target.id(), true, sealed_to_another});
  send(core::wire::whisper{peer_id.id(), target.id(), true, bytes_of("no box at all")});
  auto stats = stats_of(target);
  EXPECT_EQ(stats.whispers_unopened, 2u);
  EXPECT_EQ(stats.whispers_received, 0u);
  EXPECT_TRUE(heard.items().empty());
}

TEST_F(WhisperFromRawPeer, OneThatClaimsAnotherSenderIsDropped) {
  send(core::wire::whisper{core::identity::generate().id(), target.id(), false, bytes_of("it was not me")});
  send(core::wire::whisper{peer_id.id(), target.id(), false, bytes_of("it was me")});
  auto got = heard.wait_for(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].text, "it was me");
  EXPECT_EQ(stats_of(target).whispers_misattributed, 1u);
}

// --- SHOUT ---

struct shouted {
  node_id origin;
  std::uint64_t sequence;
  std::string text;
};

class Shout : public ::testing::TestWithParam<std::string> {};

TEST_P(Shout, EveryOtherNodeHearsItOnce) {
  constexpr std::size_t nodes = 6;
  std::vector<inbox<shouted>> heard(nodes);
  loopback_nodes net(GetParam());
  for (std::size_t i = 0; i < nodes; ++i) {
    auto& n = net.add();
    n.on_shout([&log = heard[i]](const dht::shout_delivery& s) {
      log.push(shouted{s.origin, s.sequence, text_of(s.payload)});
    });
    if (i == 0) continue;
    connect(n, net.address(0));
    auto [ec, found] = wait<error_code, dht::find_node_result>([&](auto h) { n.dht().bootstrap(h); });
    ASSERT_FALSE(ec) << ec.message();
  }
  auto [ec, first] = wait<error_code, dht::shout_outcome>([&](auto h) { net[2].async_shout(bytes_of("to all"), h); });
  ASSERT_FALSE(ec) << ec.message();
  // A second shout from another origin: once everyone has it too, a duplicate of the first
  // would have had all the time it needed.
  auto [ec2, second] = wait<error_code, dht::shout_outcome>([&](auto h) { net[4].async_shout(bytes_of("again"), h); });
  ASSERT_FALSE(ec2) << ec2.message();
  for (std::size_t i = 0; i < nodes; ++i) {
    auto expected = (i == 2 || i == 4) ? 1u : 2u;  // an origin does not hear its own shout
    auto got = heard[i].wait_for(expected);
    ASSERT_EQ(got.size(), expected) << "node " << i;
    // Not the same shout twice: each of the others' shouts once.
    EXPECT_EQ(std::count_if(got.begin(), got.end(), [&](const shouted& s) { return s.origin == net[i].id(); }), 0);
    if (expected == 2) {
      EXPECT_NE(got[0].origin, got[1].origin) << "node " << i;
    }
    for (const auto& s : got) {
      bool from_2 = s.origin == net[2].id();
      EXPECT_TRUE(from_2 || s.origin == net[4].id());
      EXPECT_EQ(s.text, from_2 ? "to all" : "again");
      EXPECT_EQ(s.sequence, from_2 ? first.sequence : second.sequence);
    }
    EXPECT_EQ(stats_of(net[i]).shouts_received, expected);
  }
}

INSTANTIATE_TEST_SUITE_P(Loopback, Shout, ::testing::ValuesIn(testing::loopback_transports()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kadnet
