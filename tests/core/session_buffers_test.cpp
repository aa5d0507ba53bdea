// What a datagram session keeps in buffers between calls: nothing for the messages it carries
// (a message in one fragment is unwrapped where it lies, a longer one's reassembly buffer goes
// with it), and nothing of the handshake once the dialer is established. The responder keeps
// its answer to the hello, to send it again, until the dialer's first sealed packet arrives.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "tests/support/session_pair.hpp"

namespace kadnet::core {
namespace {
using testing::session_pair;

// An opcode-less payload is enough: the session does not decode messages, the engine does.
byte_vector payload_of(std::size_t size, std::uint8_t seed) {
  byte_vector out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::uint8_t>(seed + i * 31 + i / 253);
  return out;
}

std::vector<byte_vector> messages_in(const std::vector<session::event>& events) {
  std::vector<byte_vector> out;
  for (const auto& e : events)
    if (const auto* m = std::get_if<session::message>(&e)) out.push_back(m->bytes);
  return out;
}

TEST(SessionBuffers, TheDialerKeepsNothingOfTheHandshake) {
  session_pair p;
  EXPECT_GT(p.dialer.buffer_capacity(), 0u);  // its hello, until answered
  p.establish();
  ASSERT_TRUE(p.dialer.is_established());
  EXPECT_EQ(p.dialer.buffer_capacity(), 0u);
}

TEST(SessionBuffers, TheResponderKeepsItsAnswerOnlyUntilTheDialersFirstSealedPacket) {
  session_pair p;
  p.establish();
  ASSERT_TRUE(p.accepter.is_established());
  EXPECT_GT(p.accepter.buffer_capacity(), 0u);  // its answer, in case the dialer asks again
  ASSERT_FALSE(p.dialer.send(byte_vector{1, 2, 3}, std::nullopt));
  p.deliver(p.dialer, p.accepter);
  p.accepter.take_transmit();
  EXPECT_EQ(p.accepter.buffer_capacity(), 0u);
}

TEST(SessionBuffers, AHelloRepeatedAfterTheDialersFirstSealedPacketIsDroppedUnanswered) {
  session_pair p;
  // The dialer's hello, as the responder will receive it again later (a duplicate on the path).
  const byte_vector hello = p.dialer.take_transmit();
  ASSERT_TRUE(p.accepter.handle_datagram(hello, p.now));
  p.deliver(p.accepter, p.dialer);
  ASSERT_TRUE(p.accepter.is_established() && p.dialer.is_established());

  // Before the dialer sealed anything, the same hello means the answer was lost: answered again.
  ASSERT_TRUE(p.accepter.is_repeated_hello(hello));
  ASSERT_TRUE(p.accepter.handle_datagram(hello, p.now));
  EXPECT_TRUE(p.accepter.has_transmit());
  p.accepter.take_transmit();

  ASSERT_FALSE(p.dialer.send(byte_vector{1, 2, 3}, std::nullopt));
  p.deliver(p.dialer, p.accepter);
  p.accepter.take_transmit();
  // Now the dialer evidently has the answer: the hello is still recognised (so that the engine
  // opens no second session for it) and taken, but not answered, and not counted as malformed.
  const auto malformed = p.accepter.counters().malformed;
  ASSERT_TRUE(p.accepter.is_repeated_hello(hello));
  ASSERT_TRUE(p.accepter.handle_datagram(hello, p.now));
  EXPECT_FALSE(p.accepter.has_transmit());
  EXPECT_EQ(p.accepter.counters().malformed, malformed);
  EXPECT_TRUE(p.accepter.is_established());
  // Another hello is not taken for it.
  byte_vector other = hello;
  other.back() ^= 1;
  EXPECT_FALSE(p.accepter.is_repeated_hello(other));
}

TEST(SessionBuffers, MessagesOfEverySizeArriveWholeAndLeaveNoBufferBehind) {
  session_pair p;
  p.establish();
  ASSERT_TRUE(p.accepter.is_established());
  // One fragment, just over one, and many (a datagram fragment holds about 1.1 KB).
  const std::vector<std::size_t> sizes{1, 300, 1'100, 1'200, 5'000, 100'000};
  std::vector<byte_vector> sent;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    sent.push_back(payload_of(sizes[k], static_cast<std::uint8_t>(k)));
    ASSERT_FALSE(p.dialer.send(sent.back(), std::nullopt));
    ASSERT_FALSE(p.accepter.send(sent.back(), std::nullopt));
  }
  ASSERT_TRUE(p.run_until([&] {
    return messages_in(p.accepter_events).size() == sent.size() && messages_in(p.dialer_events).size() == sent.size();
  }));
  EXPECT_EQ(messages_in(p.accepter_events), sent);
  EXPECT_EQ(messages_in(p.dialer_events), sent);
  EXPECT_EQ(p.dialer.buffer_capacity(), 0u);
  EXPECT_EQ(p.accepter.buffer_capacity(), 0u);
}

TEST(SessionBuffers, AMessageOverManyFragmentsIsHeldOnlyUntilItsLastOne) {
  session_pair p;
  p.establish();
  const std::size_t before = p.accepter.buffer_capacity();
  const byte_vector message = payload_of(50'000, 9);
  ASSERT_FALSE(p.dialer.send(message, std::nullopt));
  byte_vector packets = p.dialer.take_transmit();
  const std::size_t first = wire::packet_header_size + ((std::size_t{packets[2]} << 8) | packets[3]);
  ASSERT_LT(first, packets.size());
  ASSERT_TRUE(p.accepter.handle_datagram(byte_span(packets).first(first), p.now));
  p.accepter.take_transmit();  // its acknowledgement: lost, which does no harm here
  EXPECT_GT(p.accepter.buffer_capacity(), before);  // the partial message
  EXPECT_FALSE(p.accepter.poll_event());

  for (std::size_t off = first; off < packets.size();) {
    const std::size_t len = wire::packet_header_size + ((std::size_t{packets[off + 2]} << 8) | packets[off + 3]);
    p.accepter.handle_datagram(byte_span(packets).subspan(off, len), p.now);
    off += len;
  }
  ASSERT_TRUE(p.run_until([&] { return !messages_in(p.accepter_events).empty(); }));
  EXPECT_EQ(messages_in(p.accepter_events), std::vector<byte_vector>{message});
  EXPECT_EQ(p.accepter.buffer_capacity(), 0u);  // nor its answer to the hello, by now
}

}  // namespace
}  // namespace kadnet::core
