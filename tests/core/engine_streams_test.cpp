// Byte streams through the engine's API (open_stream, write_stream, read_stream) on virtual time.
#include <gtest/gtest.h>

#include "tests/support/datagram_engines.hpp"

namespace kadnet::core {
namespace {

using testing::datagram_engines;

// A monotonic clock counts from boot: on a host up for days, "now" is far from zero. A stream
// opened then must measure its silences from now, not from the clock's zero (which would make
// it idle for days, and dead, at its first timer).
TEST(EngineStreams, AStreamOpenedOnAHostUpForDaysCarriesItsBytes) {
  datagram_engines net;
  net.now = time_point(std::chrono::hours(24 * 40));
  net.add();
  net.add();
  connection_id c = net.dial(0, 1);
  ASSERT_TRUE(net.run([&] { return net[1].peers().size() == 1 && net[0].connection_to(net[1].id()); }));
  boost::system::error_code ec;
  auto id = net[0].open_stream(c, ec);
  ASSERT_TRUE(id) << ec.message();
  const connection_id at_b = net[1].peers().front().connection;
  const byte_vector data(400 * 1024, 0x42);
  byte_vector got, chunk(64 * 1024);
  std::size_t sent = 0;
  ASSERT_TRUE(net.run([&] {
    if (sent < data.size()) sent += net[0].write_stream(c, *id, byte_span(data).subspan(sent));
    net[1].accept_stream(at_b, *id);  // the application takes it (its full window)
    while (std::size_t n = net[1].read_stream(at_b, *id, chunk))
      got.insert(got.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    net.pump();
    return got.size() == data.size();
  }));
  EXPECT_TRUE(got == data) << "received " << got.size() << " of " << data.size();
}

}  // namespace
}  // namespace kadnet::core
