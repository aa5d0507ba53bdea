// A datagram session builds its stream mux only when it needs one: when a stream is opened on
// it or a stream frame arrives. Messages alone never build it.
#include <gtest/gtest.h>

#include <string>

#include "core/wire/message.hpp"
#include "tests/support/session_pair.hpp"

namespace kadnet::core {
namespace {
using testing::session_pair;

TEST(SessionStreams, NoMuxBeforeTheHandshakeNorAfterItUntilAStreamIsOpened) {
  session_pair p;
  EXPECT_EQ(p.dialer.ensure_streams(), nullptr);  // still handshaking: nothing to open
  p.establish();
  ASSERT_TRUE(p.dialer.is_established() && p.accepter.is_established());
  EXPECT_EQ(p.dialer.streams(), nullptr);
  EXPECT_EQ(p.accepter.streams(), nullptr);
}

TEST(SessionStreams, MessagesDoNotBuildAMux) {
  session_pair p;
  p.establish();
  byte_vector ping;
  wire::encode(wire::make_message(7, wire::ping{}), ping);
  ASSERT_FALSE(p.dialer.send(ping, std::nullopt));
  ASSERT_FALSE(p.accepter.send(ping, std::nullopt));
  p.exchange();
  EXPECT_EQ(p.accepter.counters().messages_in, 1u);
  EXPECT_EQ(p.dialer.counters().messages_in, 1u);
  EXPECT_EQ(p.dialer.streams(), nullptr);
  EXPECT_EQ(p.accepter.streams(), nullptr);
}

TEST(SessionStreams, OpeningAStreamBuildsTheMuxOnBothSidesAndBytesFlow) {
  session_pair p;
  p.establish();
  stream_mux* mine = p.dialer.ensure_streams();
  ASSERT_NE(mine, nullptr);
  EXPECT_EQ(p.dialer.ensure_streams(), mine);  // built once
  auto id = mine->open(p.now);
  ASSERT_TRUE(id);
  EXPECT_EQ(*id % 2, 1u);  // the dialer's ids are odd
  const std::string text = "bytes over a stream whose mux was built on demand";
  EXPECT_EQ(mine->write(*id, byte_span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())), text.size());
  p.dialer.flush();
  p.exchange();

  stream_mux* theirs = p.accepter.streams();  // the first stream frame built it
  ASSERT_NE(theirs, nullptr);
  bool opened = false;
  for (const auto& e : p.accepter_events)
    if (const auto* s = std::get_if<session::stream_event>(&e))
      opened |= s->stream == *id && s->kind == stream_mux::event_kind::opened;
  EXPECT_TRUE(opened);
  std::string got(text.size(), '\0');
  EXPECT_EQ(theirs->read(*id, mutable_byte_span(reinterpret_cast<std::uint8_t*>(got.data()), got.size())), text.size());
  EXPECT_EQ(got, text);
}

}  // namespace
}  // namespace kadnet::core
