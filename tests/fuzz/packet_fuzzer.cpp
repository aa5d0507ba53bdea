// libFuzzer target for the outer packet (core/wire/packet.cpp, PROTOCOL.md 2).
//
// parse_packet on the whole input (a datagram) must agree with the header: success exactly when
// the length field counts the rest, the payload being that rest. The same input is also fed to
// a stream_packet_reader in chunks whose sizes come from the bytes themselves: every packet it
// returns is the next header-plus-payload slice of the fed bytes, byte for byte and in order,
// and parses alone; the reader holds only what it has not returned (at most one incomplete
// packet once drained, never more than 2 * 65,539 bytes).
// Seed corpus: the packet_hello vector.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/wire/packet.hpp"

using namespace kadnet;
using namespace kadnet::core;
using namespace kadnet::core::wire;

namespace {

constexpr std::size_t max_packet = packet_header_size + max_stream_payload;  // 65,539

void check_datagram(byte_span in) {
  packet_view p;
  auto ec = parse_packet(in, p);
  if (in.size() < packet_header_size) {
    if (ec != errc::truncated) std::abort();
    return;
  }
  if (in[1] > max_packet_type) {
    if (ec != errc::unknown_packet_type) std::abort();
    return;
  }
  const std::size_t length = (std::size_t{in[2]} << 8) | in[3];
  const std::size_t rest = in.size() - packet_header_size;
  if (rest < length) {
    if (ec != errc::truncated) std::abort();
  } else if (rest > length) {
    if (ec != errc::bad_length) std::abort();
  } else {
    if (ec || p.version != in[0] || static_cast<std::uint8_t>(p.type) != in[1]) std::abort();
    if (p.header.data() != in.data() || p.header.size() != packet_header_size) std::abort();
    if (p.payload.data() != in.data() + packet_header_size || p.payload.size() != length)
      std::abort();
  }
}

void check_stream(byte_span in) {
  stream_packet_reader reader;
  std::size_t fed = 0, returned = 0;
  std::uint8_t salt = 0;
  while (fed < in.size()) {
    std::size_t n = 1 + (in[fed] ^ salt) % 256;
    salt = static_cast<std::uint8_t>(salt * 31 + 17);
    if (n > in.size() - fed) n = in.size() - fed;
    reader.feed(in.subspan(fed, n));
    fed += n;
    if (reader.buffered() != fed - returned || reader.buffered() > 2 * max_packet) std::abort();
    for (;;) {
      boost::system::error_code ec;
      auto p = reader.next(ec);
      if (ec) {
        if (p || in[returned + 1] <= max_packet_type) std::abort();
        return;  // an unparseable header: the stream is unusable
      }
      if (!p) break;
      const std::size_t whole = packet_header_size + p->payload.size();
      if (whole > fed - returned) std::abort();
      if (p->header.size() != packet_header_size ||
          p->payload.data() != p->header.data() + packet_header_size)
        std::abort();
      byte_span expected = in.subspan(returned, whole);
      if (!std::equal(p->header.begin(), p->header.end(), expected.begin()) ||
          !std::equal(p->payload.begin(), p->payload.end(), expected.begin() + packet_header_size))
        std::abort();
      packet_view alone;
      if (parse_packet(expected, alone) || alone.type != p->type || alone.version != p->version)
        std::abort();
      returned += whole;
      if (reader.buffered() != fed - returned) std::abort();
    }
    // Drained: what is left is an incomplete packet.
    if (reader.buffered() >= max_packet) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  byte_span in(data, size);
  check_datagram(in);
  check_stream(in);
  return 0;
}
