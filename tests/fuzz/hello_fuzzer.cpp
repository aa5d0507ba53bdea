// libFuzzer target for the handshake payload decoders (core/crypto/handshake.cpp, PROTOCOL.md
// 3.1 and 3.5).
//
// hello_fields::decode: exactly 161 bytes whose flags byte has no bit but 0 and 1 set decode, and
// a decoded hello re-encodes to the same 161 bytes; anything else fails with the documented error
// (truncated, bad_length, bad_field). decode_refuse: success exactly when the text length byte
// counts the rest; the fields and text are the input's; and a refusal in our own version
// re-encodes (make_refuse_packet) to the same payload.
// Seed corpus: the payloads of the packet_hello vector and of the session_aes_gcm initiator hello.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "kadnet/core/crypto/handshake.hpp"
#include "kadnet/core/errors.hpp"

using namespace kadnet;
using namespace kadnet::core;
using namespace kadnet::core::crypto;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  byte_span in(data, size);

  hello_fields h;
  auto ec = hello_fields::decode(in, h);
  if (size < hello_fields::size) {
    if (ec != errc::truncated) std::abort();
  } else if (size > hello_fields::size) {
    if (ec != errc::bad_length) std::abort();
  } else if ((in[64] & ~(hello_flag_dynamic_ip | hello_flag_aes_gcm)) != 0) {
    if (ec != errc::bad_field) std::abort();
  } else {
    if (ec || h.dynamic_ip != ((in[64] & 1) != 0) || h.aes_gcm != ((in[64] & 2) != 0)) std::abort();
    byte_vector again = h.encode();
    if (again.size() != hello_fields::size || !std::equal(again.begin(), again.end(), in.begin()))
      std::abort();
    byte_vector appended{0xAB};
    h.encode(appended);
    if (appended.size() != 1 + hello_fields::size ||
        !std::equal(again.begin(), again.end(), appended.begin() + 1))
      std::abort();
  }

  refusal r;
  ec = decode_refuse(in, r);
  if (size < 4 || size < 4 + std::size_t{in[3]}) {
    if (ec != errc::truncated) std::abort();
  } else if (size > 4 + std::size_t{in[3]}) {
    if (ec != errc::bad_length) std::abort();
  } else {
    if (ec || r.reason != in[0] || r.lowest_version != in[1] || r.highest_version != in[2])
      std::abort();
    if (r.text.size() != in[3] || !std::equal(r.text.begin(), r.text.end(), in.begin() + 4,
                                              [](char a, std::uint8_t b) {
                                                return static_cast<std::uint8_t>(a) == b;
                                              }))
      std::abort();
    if (r.lowest_version == wire::protocol_version && r.highest_version == wire::protocol_version) {
      byte_vector packet = make_refuse_packet(r.reason, r.text);
      wire::packet_view p;
      if (wire::parse_packet(packet, p) || p.type != wire::packet_type::refuse ||
          !std::equal(p.payload.begin(), p.payload.end(), in.begin(), in.end()))
        std::abort();
    }
  }
  return 0;
}
