// A session builds its stream mux only when it needs one: when a stream is opened on it or a
// stream frame arrives. Messages alone never build it. Streams run over datagram and stream
// sessions alike; on a stream session they never resend (the transport below loses nothing).
#include <gtest/gtest.h>

#include <string>

#include "kadnet/core/wire/message.hpp"
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

class SessionStreamsOn : public ::testing::TestWithParam<framing> {};

TEST_P(SessionStreamsOn, OpeningAStreamBuildsTheMuxOnBothSidesAndBytesFlow) {
  session_pair p(GetParam());
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
  // The first stream frame builds the accepter's mux; the bytes follow (on a stream session,
  // once the acknowledgement of the opening unit said the window).
  std::string got(text.size(), '\0');
  std::size_t read = 0;
  ASSERT_TRUE(p.run_until([&] {
    if (auto* theirs = p.accepter.streams())
      read += theirs->read(*id, mutable_byte_span(reinterpret_cast<std::uint8_t*>(got.data()) + read, got.size() - read));
    return read == text.size();
  }));
  EXPECT_EQ(got, text);
  bool opened = false;
  for (const auto& e : p.accepter_events)
    if (const auto* s = std::get_if<session::stream_event>(&e))
      opened |= s->stream == *id && s->kind == stream_mux::event_kind::opened;
  EXPECT_TRUE(opened);
}

INSTANTIATE_TEST_SUITE_P(Framing, SessionStreamsOn, ::testing::Values(framing::datagram, framing::stream),
                         [](const auto& info) { return info.param == framing::stream ? "stream" : "datagram"; });

TEST_P(SessionStreamsOn, ManyStreamsAtOnceAllDeliverTheirBytesAndEnds) {
  session_pair p(GetParam());
  p.establish();
  stream_mux* mine = p.dialer.ensure_streams();
  constexpr std::size_t count = 32, each = 64 * 1024;
  std::vector<stream_id> ids;
  std::vector<std::size_t> written(count, 0), read(count, 0);
  std::vector<bool> ended(count, false);
  for (std::size_t i = 0; i < count; ++i) ids.push_back(*mine->open(p.now));
  const byte_vector data(each, 0x33);
  byte_vector chunk(64 * 1024);
  ASSERT_TRUE(p.run_until([&] {
    bool all = true;
    for (std::size_t i = 0; i < count; ++i) {
      if (written[i] < each) {
        written[i] += mine->write(ids[i], byte_span(data).subspan(written[i]));
        if (written[i] == each) mine->shutdown(ids[i]);
      }
      if (auto* theirs = p.accepter.streams(); theirs && theirs->contains(ids[i])) {
        while (std::size_t n = theirs->read(ids[i], chunk)) read[i] += n;
        ended[i] = ended[i] || theirs->at_end(ids[i]);
      }
      all = all && ended[i];
    }
    p.dialer.flush();
    p.accepter.flush();
    return all;
  }, std::chrono::seconds(60)));
  for (std::size_t i = 0; i < count; ++i) EXPECT_EQ(read[i], each) << "stream " << ids[i];
}

// Writes `total` bytes through a new stream from the dialer, reading as they arrive; returns what
// the accepter read.
byte_vector carry(session_pair& p, std::size_t total) {
  stream_mux* mine = p.dialer.ensure_streams();
  auto id = mine->open(p.now);
  byte_vector data(total), got;
  for (std::size_t i = 0; i < total; ++i) data[i] = static_cast<std::uint8_t>(i * 7 + i / 1000);
  std::size_t sent = 0;
  byte_vector chunk(64 * 1024);
  p.run_until([&] {
    if (sent < total) sent += mine->write(*id, byte_span(data).subspan(sent));
    p.dialer.flush();
    if (auto* theirs = p.accepter.streams()) {
      theirs->accept(*id);  // the application takes the stream (its full window)
      while (std::size_t n = theirs->read(*id, chunk)) got.insert(got.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
      p.accepter.flush();  // the window the reads opened
    }
    return got.size() == total;
  }, std::chrono::seconds(60));
  EXPECT_TRUE(got == data) << "received " << got.size() << " of " << total << " bytes, or other ones";
  return got;
}

TEST(SessionStreams, OnAStreamSessionAStreamCarriesManyWindowsAndOutlivesDaysOfSilence) {
  session_pair p(framing::stream);
  p.establish();
  carry(p, 2 << 20);  // eight windows' worth: only the receiver's acknowledgements move it on
  // A stream of its own, then days with nothing to say: no keepalive, no idle end (the
  // transport's connection watches the peer), and the stream carries bytes afterwards.
  stream_mux* mine = p.dialer.ensure_streams();
  auto id = mine->open(p.now);
  p.dialer.flush();
  p.exchange();
  const auto out = p.dialer.counters().packets_out, in = p.accepter.counters().packets_out;
  EXPECT_FALSE(p.run_until([] { return false; }, std::chrono::hours(24 * 3)));
  EXPECT_EQ(p.dialer.counters().packets_out, out);
  EXPECT_EQ(p.accepter.counters().packets_out, in);
  const std::string later = "three days later";
  EXPECT_EQ(mine->write(*id, byte_span(reinterpret_cast<const std::uint8_t*>(later.data()), later.size())), later.size());
  p.dialer.flush();
  std::string got(later.size(), '\0');
  ASSERT_TRUE(p.run_until([&] {
    return p.accepter.streams()->read(*id, mutable_byte_span(reinterpret_cast<std::uint8_t*>(got.data()), got.size())) != 0;
  }));
  EXPECT_EQ(got, later);
}

TEST(SessionStreams, OnAStreamSessionAllStreamsTogetherKeepAtMostTheLosslessFlightUnacknowledged) {
  session_pair p(framing::stream);
  p.establish();
  stream_mux* mine = p.dialer.ensure_streams();
  std::vector<stream_id> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(*mine->open(p.now));
  p.dialer.flush();
  p.exchange();  // the opening units, and the acknowledgements that say each window
  for (auto id : ids) p.accepter.streams()->accept(id);  // each with its full window
  p.accepter.flush();
  ASSERT_TRUE(p.run_until([&] { return !p.dialer.has_transmit() && !p.accepter.has_transmit(); }));
  const byte_vector data(200 * 1000, 0x11);  // within a stream's send queue
  for (auto id : ids) EXPECT_EQ(mine->write(id, data), data.size());
  p.dialer.flush();
  // Eight windows would take 8 x 184 units; before any acknowledgement, the session sends 256.
  const std::size_t packets = p.dialer.take_transmit().size() / wire::max_datagram_size;
  const std::size_t limit = stream_limits{}.lossless_flight_units;
  EXPECT_LE(packets, limit);
  EXPECT_GE(packets, limit * 9 / 10);
}

TEST(SessionStreams, AStreamsFirstUnitsFitTheWindowOfAStreamNotYetAccepted) {
  session_pair p;  // a datagram session: units past the window would be dropped, then resent
  p.establish();
  stream_mux* mine = p.dialer.ensure_streams();
  auto id = mine->open(p.now);
  const byte_vector data(100 * stream_mux::max_unit_bytes, 0x77);
  EXPECT_EQ(mine->write(*id, data), data.size());
  p.dialer.flush();
  p.exchange();  // the first flight, before any acknowledgement said the window; nobody accepts
  ASSERT_NE(p.accepter.streams(), nullptr);
  auto theirs = p.accepter.streams()->counters_of(*id);
  auto ours = mine->counters_of(*id);
  ASSERT_TRUE(theirs && ours);
  EXPECT_EQ(theirs->out_of_window, 0u);  // with a guess of 32, 16 of them were dropped
  // It filled that window (the empty opening unit, read at once, frees one more) and no more.
  EXPECT_GE(ours->units_sent, std::uint64_t{stream_limits{}.unaccepted_window_units});
  EXPECT_LE(ours->units_sent, std::uint64_t{stream_limits{}.unaccepted_window_units} + 1);
  EXPECT_EQ(p.accepter.streams()->windows_of(*id)->receive, stream_limits{}.unaccepted_window_units);
}

TEST(SessionStreams, OnAStreamSessionAReaderThatDoesNotReadHoldsTheWriterToItsWindow) {
  session_pair p(framing::stream);
  p.establish();
  stream_mux* mine = p.dialer.ensure_streams();
  auto id = mine->open(p.now);
  const byte_vector data(8 << 20, 0x5a);
  std::size_t taken = 0;
  p.run_until([&] {
    taken += mine->write(*id, byte_span(data).subspan(taken));
    p.dialer.flush();
    return false;
  }, std::chrono::seconds(30));
  // The writer took its send queue's worth and the reader's window holds the rest back: what
  // the sender buffers is bounded, however much the application offers.
  const auto limits = stream_limits{};
  EXPECT_LE(taken, std::size_t{limits.max_window_units} * 2 * stream_mux::max_unit_bytes);
  EXPECT_LT(taken, data.size());
  ASSERT_NE(p.accepter.streams(), nullptr);
  auto windows = p.accepter.streams()->windows_of(*id);
  ASSERT_TRUE(windows);
  EXPECT_EQ(windows->receive, limits.unaccepted_window_units);  // never accepted, never read
}

}  // namespace
}  // namespace kadnet::core
