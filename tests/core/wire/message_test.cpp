// The opcode-message codec (core/wire/message.cpp): round trips, exact sizes, and one specific
// error per malformed input.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/core/wire/message.hpp"

namespace kadnet::core::wire {
namespace {

using boost::system::error_code;

node_id id_filled(std::uint8_t b) {
  node_id::bytes_type a;
  a.fill(b);
  return node_id(a);
}

byte_vector bytes_of(std::string_view s) {
  byte_span b = as_bytes(s);
  return byte_vector(b.begin(), b.end());
}

byte_vector encoded(const message& m) {
  byte_vector out;
  encode(m, out);
  return out;
}

error_code decode_err(const byte_vector& in, const decode_limits& limits = {}) {
  message m;
  return decode(in, m, limits);
}

// How a message behaves when cut short: fixed-size and length-counted messages are truncated
// by any cut; a message ending in "all remaining bytes" is still a valid (shorter) message once
// its fixed part is complete.
struct sample {
  std::string name;
  message m;
  std::size_t fixed_part;  // bytes before a rest-of-input field; 0 if there is none
};

shout signed_shout() {
  identity origin = identity::from_seed(std::array<std::uint8_t, 32>{7});
  shout s{origin.id(), 9, 1, 4, bytes_of("broadcast"), {}, {}};
  s.sig = origin.sign(shout_signed_bytes(s));
  return s;
}

std::vector<sample> samples() {
  store plain{id_filled(0x11), 5, 60, std::nullopt, bytes_of("v")};
  store owned{id_filled(0x12), 6, 61, store_owner{id_filled(0x13), {}}, bytes_of("owned")};
  owned.owner->sig.fill(0x5a);
  store cas_accept{id_filled(0x14), 7, 62, std::nullopt, bytes_of("next")};
  cas_accept.consensus = store_consensus{consensus_phase::accept, 0x0102030405060708, id_filled(0x15), {}};
  cas_accept.consensus->proposal.fill(0x6b);
  store cas_prepare{id_filled(0x16), 1, 0, std::nullopt, {}};
  cas_prepare.consensus = store_consensus{consensus_phase::prepare, 1, id_filled(0x17), {}};
  store patched{id_filled(0x18), 8, 63, std::nullopt, bytes_of("diff")};
  patched.patch = true;
  store patched_owned = owned;
  patched_owned.patch = true;
  store notified = owned;
  notified.notify = true;
  store notified_diff = patched;
  notified_diff.notify = true;
  return {
      {"ack", make_message(1, ack{2, {}}), 6},
      {"ack_data", make_message(2, ack{6, byte_vector(32, 0xab)}), 6},
      {"nack", make_message(3, nack{3, nack_code::option_refused, "no", {0, 9}}), 12},
      {"nack_empty", make_message(4, nack{9, nack_code::unspecified, "", {}}), 10},
      {"ping", make_message(5, ping{}), 0},
      {"set_connection_opt", make_message(6, set_connection_opt{0, 5}), 0},
      {"shout", make_message(7, signed_shout()), 0},
      {"shout_empty", make_message(8, shout{id_filled(1), 0, 0, 0, {}, {}, {}}), 0},
      {"speak", make_message(9, speak{id_filled(2), 77, bytes_of("hi")}), 45},
      {"whisper", make_message(10, whisper{id_filled(3), id_filled(4), false, bytes_of("w")}),
       70},
      {"whisper_sealed",
       make_message(11, whisper{id_filled(3), id_filled(4), true, byte_vector(48, 1)}), 70},
      {"find_node", make_message(12, find_node{id_filled(5)}), 0},
      {"find_value", make_message(13, find_value{id_filled(6)}), 0},
      {"store_plain", make_message(14, plain), 0},
      {"store_signed", make_message(15, owned), 0},
      {"store_empty", make_message(16, store{id_filled(7), 0, 0, std::nullopt, {}}), 0},
      {"store_cas_accept", make_message(20, cas_accept), 0},
      {"store_cas_prepare", make_message(21, cas_prepare), 0},
      {"store_patch", make_message(22, patched), 0},
      {"store_patch_signed", make_message(23, patched_owned), 0},
      {"store_notify_signed", make_message(24, notified), 0},
      {"store_notify_diff", make_message(25, notified_diff), 0},
      {"announce", make_message(18, announce{{"tcp://127.0.0.1:4000"}}), 0},
      {"announce_empty", make_message(20, announce{}), 0},
      {"announce_two", make_message(19, announce{{"tcp://[::1]:4000", "udp://203.0.113.9:1"}}), 0},
      {"introduce_asking", make_message(26, introduce{id_filled(8), {}}), 0},
      {"introduce_telling", make_message(27, introduce{id_filled(9), byte_vector(18, 7)}), 0},
      {"relay_open", make_message(28, relay{7, relay_kind::open, true, id_filled(10), {}}), 0},
      {"relay_data", make_message(29, relay{7, relay_kind::data, false, {}, bytes_of("inner")}), 11},
      {"relay_close", make_message(30, relay{9, relay_kind::close, true, {}, {}}), 0},
      {"plugin_64", make_plugin_call(64, 17, bytes_of("call")), 5},
      {"plugin_255", make_plugin_call(255, 0xffffffff, {}), 5},
  };
}

class MessageSamples : public ::testing::TestWithParam<sample> {};

TEST_P(MessageSamples, RoundTripsWhole) {
  const sample& s = GetParam();
  byte_vector wire = encoded(s.m);
  message out;
  ASSERT_FALSE(decode(wire, out));
  EXPECT_EQ(out, s.m);
  EXPECT_EQ(encoded(out), wire);

  std::uint8_t op = 0xee;
  std::uint32_t id = 0;
  ASSERT_FALSE(decode_header(wire, op, id));
  EXPECT_EQ(op, s.m.opcode);
  EXPECT_EQ(id, s.m.id);
}

TEST_P(MessageSamples, EncodeAppends) {
  const sample& s = GetParam();
  byte_vector out = {0xde, 0xad};
  encode(s.m, out);
  byte_vector expected = {0xde, 0xad};
  byte_vector wire = encoded(s.m);
  expected.insert(expected.end(), wire.begin(), wire.end());
  EXPECT_EQ(out, expected);
}

TEST_P(MessageSamples, TrailingByte) {
  const sample& s = GetParam();
  byte_vector wire = encoded(s.m);
  wire.push_back(0x00);
  message out;
  error_code ec = decode(wire, out);
  if (s.fixed_part == 0) {
    EXPECT_EQ(ec, errc::trailing_bytes);
  } else {
    // The extra byte belongs to the final rest-of-input field.
    ASSERT_FALSE(ec);
    EXPECT_NE(out, s.m);
    EXPECT_EQ(encoded(out), wire);
  }
}

TEST_P(MessageSamples, EveryTruncation) {
  const sample& s = GetParam();
  byte_vector wire = encoded(s.m);
  for (std::size_t n = 0; n < wire.size(); ++n) {
    byte_vector cut(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(n));
    message out = make_message(99, ping{});
    error_code ec = decode(cut, out);
    if (s.fixed_part != 0 && n >= s.fixed_part) {
      ASSERT_FALSE(ec) << "prefix of " << n << " bytes";
      EXPECT_EQ(encoded(out), cut);
    } else {
      ASSERT_EQ(ec, errc::truncated) << "prefix of " << n << " bytes: " << ec.message();
      EXPECT_EQ(out, make_message(99, ping{})) << "output changed on error";
    }
    std::uint8_t op;
    std::uint32_t id;
    EXPECT_EQ(decode_header(cut, op, id), n < message_header_size
                                              ? error_code(errc::truncated)
                                              : error_code());
  }
}

INSTANTIATE_TEST_SUITE_P(AllKinds, MessageSamples, ::testing::ValuesIn(samples()),
                         [](const auto& info) { return info.param.name; });

TEST(MessageLayout, FixedBytes) {
  EXPECT_EQ(to_hex(encoded(make_message(0x01020304, ping{}))), "0201020304");
  EXPECT_EQ(to_hex(encoded(make_message(1, set_connection_opt{1, 5}))), "03000000010105");
  EXPECT_EQ(to_hex(encoded(make_message(2, ack{2, {0xaa}}))), "000000000202aa");
  EXPECT_EQ(to_hex(encoded(make_message(3, nack{3, nack_code::too_large, "é", {0x01}}))),
            "0100000003" "03" "000a" "0002" "c3a9" "01");
  EXPECT_EQ(to_hex(encoded(make_plugin_call(200, 4, {0x01, 0x02}))), "c8000000040102");

  byte_vector w = encoded(make_message(5, whisper{id_filled(1), id_filled(2), true, {0x33}}));
  ASSERT_EQ(w.size(), 5u + 32 + 32 + 1 + 1);
  EXPECT_EQ(w[69], 0x01);

  shout s{id_filled(3), 0x0102030405060708, 9, 0x2a, {0xee, 0xff}, {}, {}};
  s.sig.fill(0x44);
  byte_vector sh = encoded(make_message(6, s));
  ASSERT_EQ(sh.size(), 5u + 32 + 8 + 1 + 1 + 1 + 4 + 2 + 64);
  EXPECT_EQ(to_hex(byte_span(sh).subspan(37, 17)), "0102030405060708" "09" "2a" "00" "00000002" "eeff");
  s.also_levels = {3, 0x29};
  sh = encoded(make_message(6, s));
  EXPECT_EQ(to_hex(byte_span(sh).subspan(46, 5)), "2a" "02" "03" "29" "00");

  store st{id_filled(4), 1, 0x00000e10, store_owner{id_filled(5), {}}, {0x77}};
  byte_vector so = encoded(make_message(7, st));
  ASSERT_EQ(so.size(), 5u + 32 + 8 + 4 + 1 + 32 + 64 + 4 + 1);
  EXPECT_EQ(to_hex(byte_span(so).subspan(37, 13)), "0000000000000001" "00000e10" "01");
  EXPECT_EQ(to_hex(byte_span(so).subspan(146, 5)), "0000000177");
  st.patch = true;
  so = encoded(make_message(7, st));
  ASSERT_EQ(so.size(), 5u + 32 + 8 + 4 + 1 + 32 + 64 + 4 + 1);
  EXPECT_EQ(to_hex(byte_span(so).subspan(37, 13)), "0000000000000001" "00000e10" "05");
}

TEST(MessageLayout, NackCodesAreStable) {
  EXPECT_EQ(static_cast<int>(nack_code::unspecified), 0);
  EXPECT_EQ(static_cast<int>(nack_code::unsupported_opcode), 1);
  EXPECT_EQ(static_cast<int>(nack_code::handler_failed), 2);
  EXPECT_EQ(static_cast<int>(nack_code::bad_request), 3);
  EXPECT_EQ(static_cast<int>(nack_code::option_refused), 4);
  EXPECT_EQ(static_cast<int>(nack_code::locked), 5);
  EXPECT_EQ(static_cast<int>(nack_code::quota_full), 6);
  EXPECT_EQ(static_cast<int>(nack_code::version_conflict), 7);
  EXPECT_EQ(static_cast<int>(nack_code::not_found), 8);
  EXPECT_EQ(static_cast<int>(nack_code::rate_limited), 9);
  EXPECT_EQ(static_cast<int>(nack_code::too_large), 10);
}

TEST(MessageDecode, EmptyAndShortHeaderAreTruncated) {
  EXPECT_EQ(decode_err({}), errc::truncated);
  EXPECT_EQ(decode_err({0x02, 0, 0, 0}), errc::truncated);
  std::uint8_t op;
  std::uint32_t id;
  EXPECT_EQ(decode_header(byte_vector{}, op, id), errc::truncated);
}

TEST(MessageDecode, AnnounceLayoutAndErrors) {
  byte_vector in = encoded(make_message(1, announce{{"tcp://h:1"}}));
  EXPECT_EQ(in, (byte_vector{10, 0, 0, 0, 1, 1, 9, 't', 'c', 'p', ':', '/', '/', 'h', ':', '1'}));
  message asking;  // no address: "how do you see me?" (PROTOCOL.md 5.13)
  ASSERT_FALSE(decode(byte_vector{10, 0, 0, 0, 1, 0}, asking));
  EXPECT_EQ(std::get<announce>(asking.body), announce{});
  EXPECT_EQ(decode_err(byte_vector{10, 0, 0, 0, 1, 9}), errc::too_large);     // over 8
  EXPECT_EQ(decode_err(byte_vector{10, 0, 0, 0, 1, 1, 0}), errc::bad_field);  // empty address
  EXPECT_EQ(decode_err(byte_vector{10, 0, 0, 0, 1, 1, 1, ' '}), errc::bad_field);  // not printable
  EXPECT_EQ(decode_err(byte_vector{10, 0, 0, 0, 1, 1, 2, 'a'}), errc::truncated);
}

TEST(MessageDecode, IntroduceLayoutAndErrors) {
  node_id peer = node_id::hash_of(as_bytes(std::string_view("peer")));
  byte_vector asking = encoded(make_message(7, introduce{peer, {}}));
  ASSERT_EQ(asking.size(), 5u + 32 + 1);
  EXPECT_EQ(asking[0], 11);
  EXPECT_EQ(asking.back(), 0);  // no address: "introduce me"
  byte_vector address(introduce_address_size, 0xab);
  byte_vector telling = encoded(make_message(7, introduce{peer, address}));
  ASSERT_EQ(telling.size(), 5u + 32 + 1 + 18);
  EXPECT_EQ(telling[5 + 32], 18);
  message back;
  ASSERT_FALSE(decode(telling, back));
  EXPECT_EQ(std::get<introduce>(back.body), (introduce{peer, address}));

  byte_vector wrong_length = asking;
  wrong_length.back() = 17;  // an address is 18 bytes or none
  wrong_length.resize(wrong_length.size() + 17);
  EXPECT_EQ(decode_err(wrong_length), errc::bad_field);
  byte_vector short_address(telling.begin(), telling.end() - 1);
  EXPECT_EQ(decode_err(short_address), errc::truncated);
  byte_vector trailing = telling;
  trailing.push_back(0);
  EXPECT_TRUE(decode_err(trailing));
  EXPECT_EQ(decode_err(byte_vector(asking.begin(), asking.begin() + 20)), errc::truncated);
}

TEST(MessageDecode, RelayLayoutAndErrors) {
  byte_vector data = encoded(make_message(1, relay{0x01020304, relay_kind::data, true, {}, {0xaa, 0xbb}}));
  EXPECT_EQ(data, (byte_vector{12, 0, 0, 0, 1, 1, 2, 3, 4, 0x81, 0xaa, 0xbb}));
  byte_vector close = encoded(make_message(1, relay{5, relay_kind::close, false, {}, {}}));
  EXPECT_EQ(close, (byte_vector{12, 0, 0, 0, 1, 0, 0, 0, 5, 2}));
  byte_vector open = encoded(make_message(1, relay{5, relay_kind::open, false, id_filled(3), {}}));
  EXPECT_EQ(open.size(), 10u + 32);
  EXPECT_EQ(decode_err(byte_vector{12, 0, 0, 0, 1, 0, 0, 0, 5, 3}), errc::bad_field);     // no kind 3
  EXPECT_EQ(decode_err(byte_vector{12, 0, 0, 0, 1, 0, 0, 0, 5, 0x41}), errc::bad_field);  // unknown flag
  EXPECT_EQ(decode_err(byte_vector{12, 0, 0, 0, 1, 0, 0, 0, 5, 1}), errc::truncated);     // data without bytes
  EXPECT_TRUE(decode_err(byte_vector{12, 0, 0, 0, 1, 0, 0, 0, 5, 2, 0}));                   // close with bytes
  EXPECT_EQ(decode_err(byte_vector(open.begin(), open.end() - 1)), errc::truncated);
  EXPECT_EQ(decode_err(byte_vector{12, 0, 0, 0, 1, 0, 0}), errc::truncated);
}

TEST(MessageDecode, ReservedOpcodesAreUnknownButHaveAHeader) {
  for (int op = 13; op < 64; ++op) {
    byte_vector in = {static_cast<std::uint8_t>(op), 0xca, 0xfe, 0xba, 0xbe};
    EXPECT_EQ(decode_err(in), errc::unknown_opcode) << op;
    in.push_back(0x00);
    EXPECT_EQ(decode_err(in), errc::unknown_opcode) << op;
    std::uint8_t got_op = 0;
    std::uint32_t got_id = 0;
    ASSERT_FALSE(decode_header(in, got_op, got_id));
    EXPECT_EQ(got_op, op);
    EXPECT_EQ(got_id, 0xcafebabe);
  }
}

TEST(MessageDecode, PluginOpcodesDecodeAsPluginCall) {
  for (int op = 64; op < 256; ++op) {
    byte_vector in = {static_cast<std::uint8_t>(op), 0, 0, 0, 1, 0x42};
    message m;
    ASSERT_FALSE(decode(in, m)) << op;
    EXPECT_EQ(m.opcode, op);
    ASSERT_TRUE(std::holds_alternative<plugin_call>(m.body));
    EXPECT_EQ(std::get<plugin_call>(m.body).payload, byte_vector{0x42});
  }
}

TEST(MessageDecode, ErrorLeavesOutputUntouched) {
  message out = make_message(42, find_node{id_filled(9)});
  const message before = out;
  EXPECT_EQ(decode(byte_vector{0x07, 0, 0, 0, 1, 0xff}, out), errc::truncated);
  EXPECT_EQ(out, before);
}

TEST(MessageDecode, FixedSizeMessagesRefuseTrailingBytes) {
  EXPECT_EQ(decode_err({0x02, 0, 0, 0, 1, 0x00}), errc::trailing_bytes);
  EXPECT_EQ(decode_err({0x03, 0, 0, 0, 1, 0, 1, 2}), errc::trailing_bytes);
  EXPECT_EQ(decode_err({0x03, 0, 0, 0, 1, 0}), errc::truncated);
  byte_vector fn = encoded(make_message(1, find_node{}));
  fn.push_back(0);
  EXPECT_EQ(decode_err(fn), errc::trailing_bytes);
  byte_vector fv = encoded(make_message(1, find_value{}));
  fv.push_back(0);
  EXPECT_EQ(decode_err(fv), errc::trailing_bytes);
}

// FIND_VALUE is 37 bytes, or 49 with a listen block (lease seconds, known version); any other
// size is refused.
TEST(MessageDecode, FindValueListenBlock) {
  find_value listen{id_filled(6), listen_request{180, 0x0102030405060708}};
  byte_vector wire = encoded(make_message(13, listen));
  ASSERT_EQ(wire.size(), 49u);
  EXPECT_EQ(to_hex(byte_span(wire).subspan(37)), "000000b4" "0102030405060708");
  message out;
  ASSERT_FALSE(decode(wire, out));
  EXPECT_EQ(std::get<find_value>(out.body), listen);
  for (std::size_t n = 38; n < wire.size(); ++n)
    EXPECT_EQ(decode_err(byte_vector(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(n))), errc::trailing_bytes) << n;
  byte_vector plain(wire.begin(), wire.begin() + 37);
  ASSERT_FALSE(decode(plain, out));
  EXPECT_FALSE(std::get<find_value>(out.body).listen.has_value());
  wire.push_back(0);
  EXPECT_EQ(decode_err(wire), errc::trailing_bytes);
}

TEST(MessageDecode, SetConnectionOptCarriesAnyValue) {
  message m;
  ASSERT_FALSE(decode(byte_vector{0x03, 0, 0, 0, 1, 0xfe, 0xff}, m));
  EXPECT_EQ(std::get<set_connection_opt>(m.body), (set_connection_opt{0xfe, 0xff}));
}

TEST(MessageDecode, NackTextChecks) {
  auto nack_bytes = [](std::uint16_t text_len, byte_vector text) {
    byte_vector b = {0x01, 0, 0, 0, 1, /*request*/ 3, /*code*/ 0, 4};
    b.push_back(static_cast<std::uint8_t>(text_len >> 8));
    b.push_back(static_cast<std::uint8_t>(text_len));
    b.insert(b.end(), text.begin(), text.end());
    return b;
  };
  EXPECT_EQ(decode_err(nack_bytes(5, bytes_of("abc"))), errc::truncated);
  EXPECT_EQ(decode_err(nack_bytes(0xffff, bytes_of("abc"))), errc::too_large);
  EXPECT_EQ(decode_err(nack_bytes(1025, byte_vector(1025, 'a'))), errc::too_large);
  EXPECT_FALSE(decode_err(nack_bytes(1024, byte_vector(1024, 'a'))));
  decode_limits tight;
  tight.max_text = 2;
  EXPECT_EQ(decode_err(nack_bytes(3, bytes_of("abc")), tight), errc::too_large);
  EXPECT_FALSE(decode_err(nack_bytes(2, bytes_of("ab")), tight));

  // Valid UTF-8 of every length class, then one example of each way to break it.
  EXPECT_FALSE(decode_err(nack_bytes(10, bytes_of("a\xc3\xa9\xe2\x80\x94\xf0\x9f\x98\x80"))));
  EXPECT_FALSE(decode_err(nack_bytes(4, bytes_of("\xf4\x8f\xbf\xbf"))));  // U+10FFFF
  const std::vector<byte_vector> bad = {
      {0xff},                    // never valid
      {0x80},                    // lone continuation byte
      {0xc0, 0x80},              // overlong NUL
      {0xe0, 0x80, 0x80},        // overlong 3-byte form
      {0xed, 0xa0, 0x80},        // surrogate U+D800
      {0xf0, 0x80, 0x80, 0x80},  // overlong 4-byte form
      {0xf4, 0x90, 0x80, 0x80},  // above U+10FFFF
      {0xe2, 0x82},              // sequence cut short
      {0xc3, 0x41},              // bad continuation
      {0xe2, 0x82, 0x41},        // bad second continuation
  };
  for (const auto& text : bad) {
    EXPECT_EQ(decode_err(nack_bytes(static_cast<std::uint16_t>(text.size()), text)),
              errc::bad_field)
        << to_hex(text);
  }
}

TEST(MessageDecode, UnknownNackCodeDecodes) {
  message m;
  ASSERT_FALSE(decode(byte_vector{0x01, 0, 0, 0, 1, 3, 0xbe, 0xef, 0, 0}, m));
  EXPECT_EQ(static_cast<std::uint16_t>(std::get<nack>(m.body).code), 0xbeef);
}

TEST(MessageDecode, WhisperFlags) {
  byte_vector w = encoded(make_message(1, whisper{id_filled(1), id_filled(2), false, {}}));
  for (int flags = 2; flags < 256; ++flags) {
    w[69] = static_cast<std::uint8_t>(flags);
    EXPECT_EQ(decode_err(w), errc::bad_field) << flags;
  }
  w[69] = 1;
  message m;
  ASSERT_FALSE(decode(w, m));
  EXPECT_TRUE(std::get<whisper>(m.body).sealed);
}

TEST(MessageDecode, ShoutLevelsAscendBelowTheScope) {
  shout s = signed_shout();  // scope 4
  auto decoded_levels = [&](std::vector<std::uint8_t> levels) {
    shout t = s;
    t.also_levels = std::move(levels);
    return decode_err(encoded(make_message(1, t)));
  };
  EXPECT_FALSE(decoded_levels({0, 3}));
  EXPECT_EQ(decoded_levels({4}), errc::bad_field) << "a level at the scope";
  EXPECT_EQ(decoded_levels({2, 2}), errc::bad_field) << "repeated";
  EXPECT_EQ(decoded_levels({3, 1}), errc::bad_field) << "descending";
  EXPECT_EQ(decoded_levels({0, 1, 2, 3, 3}), errc::bad_field) << "more levels than the scope has room for";
  message m;
  shout t = s;
  t.also_levels = {1, 3};
  ASSERT_FALSE(decode(encoded(make_message(1, t)), m));
  EXPECT_EQ(std::get<shout>(m.body).also_levels, (std::vector<std::uint8_t>{1, 3}));
}

TEST(MessageDecode, ShoutLengths) {
  shout s = signed_shout();
  byte_vector wire = encoded(make_message(1, s));
  const std::size_t len_at = 5 + 32 + 8 + 1 + 1 + 1;  // after hops, scope and the level count (0)
  auto with_len = [&](std::uint32_t len) {
    byte_vector b = wire;
    for (int i = 0; i < 4; ++i) b[len_at + i] = static_cast<std::uint8_t>(len >> (24 - 8 * i));
    return b;
  };
  EXPECT_EQ(decode_err(with_len(0xffffffff)), errc::too_large);
  EXPECT_EQ(decode_err(with_len((1u << 20) + 1)), errc::too_large);
  EXPECT_EQ(decode_err(with_len(1u << 20)), errc::truncated);          // within the limit
  EXPECT_EQ(decode_err(with_len(s.payload.size() + 1)), errc::truncated);  // eats the signature
  EXPECT_EQ(decode_err(with_len(s.payload.size() - 1)), errc::trailing_bytes);
  decode_limits tight;
  tight.max_payload = s.payload.size() - 1;
  EXPECT_EQ(decode_err(wire, tight), errc::too_large);
}

TEST(MessageDecode, StoreFieldsAndLimits) {
  store st{id_filled(1), 3, 10, std::nullopt, byte_vector(100, 0x5)};
  byte_vector wire = encoded(make_message(1, st));
  const std::size_t flags_at = 5 + 32 + 8 + 4;
  const std::size_t len_at = flags_at + 1;
  for (int flags = 3; flags < 256; ++flags) {
    // patch (4, 5 with an owner) and notify (8, 9; with patch 12, 13): below
    if (flags == 4 || flags == 5 || flags == 8 || flags == 9 || flags == 12 || flags == 13) continue;
    byte_vector b = wire;
    b[flags_at] = static_cast<std::uint8_t>(flags);
    EXPECT_EQ(decode_err(b), errc::bad_field) << flags;
  }
  // Flag bit 1 without the consensus fields: the input ends inside them.
  byte_vector consensus_flagged = encoded(make_message(1, store{id_filled(1), 3, 10, std::nullopt, {1}}));
  consensus_flagged[flags_at] = 2;
  EXPECT_EQ(decode_err(consensus_flagged), errc::truncated);
  // Flag bit 2 (patch) adds no field; it needs a base (version >= 1). With bit 0 the owner
  // fields follow as without it.
  byte_vector patch_flagged = wire;
  patch_flagged[flags_at] = 4;
  message pm;
  ASSERT_FALSE(decode(patch_flagged, pm));
  EXPECT_TRUE(std::get<store>(pm.body).patch);
  EXPECT_EQ(std::get<store>(pm.body).value, st.value);
  byte_vector owned_patch = encoded(make_message(1, store{id_filled(1), 3, 10, std::nullopt, {1}}));
  owned_patch[flags_at] = 5;
  EXPECT_EQ(decode_err(owned_patch), errc::truncated);
  byte_vector patch_v0 = encoded(make_message(1, store{id_filled(1), 0, 10, std::nullopt, {1}}));
  patch_v0[flags_at] = 4;
  EXPECT_EQ(decode_err(patch_v0), errc::bad_field);
  // Flag bit 3 (notify) adds no field either, alone or with a patch; with bit 1 it is refused
  // (the loop above), with bit 0 the owner fields follow.
  for (std::uint8_t notify_flags : {std::uint8_t{8}, std::uint8_t{12}}) {
    byte_vector notify_flagged = wire;
    notify_flagged[flags_at] = notify_flags;
    message nm;
    ASSERT_FALSE(decode(notify_flagged, nm)) << int(notify_flags);
    EXPECT_TRUE(std::get<store>(nm.body).notify);
    EXPECT_EQ(std::get<store>(nm.body).patch, notify_flags == 12);
    byte_vector owned_notify = encoded(make_message(1, store{id_filled(1), 3, 10, std::nullopt, {1}}));
    owned_notify[flags_at] = notify_flags | 1;
    EXPECT_EQ(decode_err(owned_notify), errc::truncated) << int(notify_flags | 1);
  }
  // Flag bit 0 without the owner fields: the input ends inside the owner.
  byte_vector flagged = encoded(make_message(1, store{id_filled(1), 3, 10, std::nullopt, {1}}));
  flagged[flags_at] = 1;
  EXPECT_EQ(decode_err(flagged), errc::truncated);

  auto with_len = [&](std::uint32_t len) {
    byte_vector b = wire;
    for (int i = 0; i < 4; ++i) b[len_at + i] = static_cast<std::uint8_t>(len >> (24 - 8 * i));
    return b;
  };
  EXPECT_EQ(decode_err(with_len(0xffffffff)), errc::too_large);
  EXPECT_EQ(decode_err(with_len(64 * 1024 + 1)), errc::too_large);
  EXPECT_EQ(decode_err(with_len(64 * 1024)), errc::truncated);
  EXPECT_EQ(decode_err(with_len(101)), errc::truncated);
  EXPECT_EQ(decode_err(with_len(99)), errc::trailing_bytes);

  decode_limits tight;
  tight.max_value = 99;
  EXPECT_EQ(decode_err(wire, tight), errc::too_large);
  tight.max_value = 100;
  EXPECT_FALSE(decode_err(wire, tight));

  store big{id_filled(2), 1, 1, std::nullopt, byte_vector(64 * 1024, 0xaa)};
  message m;
  ASSERT_FALSE(decode(encoded(make_message(2, big)), m));
  EXPECT_EQ(std::get<store>(m.body).value.size(), 64u * 1024);
}

TEST(MessageDecode, RestOfInputFieldsRespectMaxPayload) {
  decode_limits tight;
  tight.max_payload = 3;
  const std::vector<message> fits = {
      make_message(1, ack{0, {1, 2, 3}}),
      make_message(1, nack{0, nack_code::unspecified, "", {1, 2, 3}}),
      make_message(1, speak{{}, 0, {1, 2, 3}}),
      make_message(1, whisper{{}, {}, false, {1, 2, 3}}),
      make_plugin_call(70, 1, {1, 2, 3}),
  };
  for (const auto& m : fits) {
    byte_vector wire = encoded(m);
    EXPECT_FALSE(decode_err(wire, tight)) << int{m.opcode};
    wire.push_back(4);
    EXPECT_EQ(decode_err(wire, tight), errc::too_large) << int{m.opcode};
  }
}

TEST(MessageSigning, ShoutSignedBytesLayout) {
  shout s{id_filled(0xab), 0x0102030405060708, 200, 7, {0x01, 0x02, 0x03}, {}, {}};
  byte_vector expected = bytes_of("kadnet-shout-1");
  expected.insert(expected.end(), 32, 0xab);
  for (std::uint8_t b : {1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 3, 1, 2, 3}) expected.push_back(b);
  EXPECT_EQ(shout_signed_bytes(s), expected);

  shout forwarded = s;
  forwarded.hops = 201;
  forwarded.scope = 9;
  EXPECT_EQ(shout_signed_bytes(forwarded), expected) << "hops and scope must not be signed";
  forwarded.sequence++;
  EXPECT_NE(shout_signed_bytes(forwarded), expected);
}

TEST(MessageSigning, StoreSignedBytesLayout) {
  store s{id_filled(0xcd), 9, 3600, std::nullopt, {0xee}};
  byte_vector expected = bytes_of("kadnet-store-1");
  expected.insert(expected.end(), 32, 0xcd);
  for (std::uint8_t b : {0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1, 0xee}) expected.push_back(b);
  EXPECT_EQ(store_signed_bytes(s), expected);

  store replicated = s;
  replicated.ttl_seconds = 100;
  replicated.owner = store_owner{id_filled(1), {}};
  EXPECT_EQ(store_signed_bytes(replicated), expected) << "ttl and owner are not signed";
}

TEST(MessageSigning, SignaturesSurviveTheWireAndHopChanges) {
  identity owner = identity::from_seed(std::array<std::uint8_t, 32>{3});
  shout s = {owner.id(), 1, 0, 0, bytes_of("news"), {}, {}};
  s.sig = owner.sign(shout_signed_bytes(s));
  message m;
  ASSERT_FALSE(decode(encoded(make_message(1, s)), m));
  shout got = std::get<shout>(m.body);
  got.hops = 17;
  EXPECT_TRUE(identity::verify(got.origin, shout_signed_bytes(got), got.sig));
  got.payload[0] ^= 1;
  EXPECT_FALSE(identity::verify(got.origin, shout_signed_bytes(got), got.sig));

  store st{node_id::hash_of(as_bytes("k")), 4, 100, std::nullopt, bytes_of("val")};
  st.owner = store_owner{owner.id(), owner.sign(store_signed_bytes(st))};
  ASSERT_FALSE(decode(encoded(make_message(2, st)), m));
  store gst = std::get<store>(m.body);
  ASSERT_TRUE(gst.owner);
  gst.ttl_seconds = 50;
  EXPECT_TRUE(identity::verify(gst.owner->owner, store_signed_bytes(gst), gst.owner->sig));
  gst.version = 5;
  EXPECT_FALSE(identity::verify(gst.owner->owner, store_signed_bytes(gst), gst.owner->sig));
}

TEST(MessageMake, OpcodeFollowsBody) {
  EXPECT_EQ(make_message(1, ack{}).opcode, 0);
  EXPECT_EQ(make_message(1, nack{}).opcode, 1);
  EXPECT_EQ(make_message(1, ping{}).opcode, 2);
  EXPECT_EQ(make_message(1, set_connection_opt{}).opcode, 3);
  EXPECT_EQ(make_message(1, shout{}).opcode, 4);
  EXPECT_EQ(make_message(1, speak{}).opcode, 5);
  EXPECT_EQ(make_message(1, whisper{}).opcode, 6);
  EXPECT_EQ(make_message(1, find_node{}).opcode, 7);
  EXPECT_EQ(make_message(1, find_value{}).opcode, 8);
  EXPECT_EQ(make_message(1, store{}).opcode, 9);
  EXPECT_EQ(make_plugin_call(64, 1, {}).opcode, first_plugin_opcode);
}

}  // namespace
}  // namespace kadnet::core::wire
