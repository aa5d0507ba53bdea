// A datagram session builds its stream mux only when it needs one: when a stream is opened on
// it or a stream frame arrives. Messages alone never build it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/crypto/cookie_jar.hpp"
#include "core/crypto/handshake.hpp"
#include "core/session.hpp"
#include "core/wire/message.hpp"
#include "tests/support/fixed_keys.hpp"

namespace kadnet::core {
namespace {
using testing::fixed_identity;

// Two datagram sessions, dialer and responder, that hand each other their packets directly.
struct session_pair {
  identity dialer_id = fixed_identity(1);
  identity responder_id = fixed_identity(2);
  crypto::responder responder{responder_id, false};
  crypto::cookie_jar cookies;
  responder_context context{&responder, &cookies, false};
  time_point now{};
  session dialer = session::dial_datagram(dialer_id, false, responder_id.id(), {}, {}, now);
  session accepter = session::accept_datagram(context, byte_vector(18, 1), {}, {}, now);
  std::vector<session::event> dialer_events, accepter_events;

  // Moves packets both ways until neither side has any left to send.
  void exchange() {
    for (int round = 0; round < 100 && (dialer.has_transmit() || accepter.has_transmit()); ++round) {
      deliver(dialer, accepter);
      deliver(accepter, dialer);
    }
    while (auto e = dialer.poll_event()) dialer_events.push_back(std::move(*e));
    while (auto e = accepter.poll_event()) accepter_events.push_back(std::move(*e));
  }

  void deliver(session& from, session& to) {
    byte_vector packets = from.take_transmit();
    for (std::size_t off = 0; off + wire::packet_header_size <= packets.size();) {
      std::size_t len = wire::packet_header_size + ((std::size_t{packets[off + 2]} << 8) | packets[off + 3]);
      to.handle_datagram(byte_span(packets).subspan(off, len), now);
      off += len;
    }
  }

  void establish() {
    exchange();
    ASSERT_TRUE(dialer.is_established());
    ASSERT_TRUE(accepter.is_established());
  }
};

TEST(SessionStreams, NoMuxBeforeTheHandshakeNorAfterItUntilAStreamIsOpened) {
  session_pair p;
  EXPECT_EQ(p.dialer.ensure_streams(), nullptr);  // still handshaking: nothing to open
  p.establish();
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
  const std::string text = "bytes over a lazily built stream";
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
