// The file-transfer frames (core/wire/file_transfer.hpp, PROTOCOL.md 9.7): exact bytes, round
// trips, every truncation, trailing bytes, each malformed field, and the file-name rules.
#include "kadnet/core/wire/file_transfer.hpp"

#include <gtest/gtest.h>

#include "kadnet/core/errors.hpp"

namespace kadnet::core::wire {
namespace {

byte_vector hex(std::string_view text) {
  byte_vector out;
  EXPECT_TRUE(from_hex(text, out)) << text;
  return out;
}

file_digest digest_of_hello() {
  // BLAKE2b-256("hello")
  auto b = hex("324dcf027dd4a30a932c441f365a25e86b173defa4b8e58948253471b81b72cf");
  file_digest d;
  std::copy(b.begin(), b.end(), d.begin());
  return d;
}

byte_vector encoded(const file_message& m) {
  byte_vector out;
  encode(m, out);
  return out;
}

boost::system::error_code decode_error(byte_span in) {
  file_message out;
  return decode(in, out);
}

TEST(FileTransferCodec, FramesHaveTheDocumentedBytes) {
  EXPECT_EQ(to_hex(encoded(file_offer{5, digest_of_hello(), "a.txt"})),
            "5050002d0000000000000005324dcf027dd4a30a932c441f365a25e86b173defa4b8e58948253471b81b72cf612e747874");
  EXPECT_EQ(to_hex(encoded(file_accept{3, digest_of_hello()})),
            "515100280000000000000003324dcf027dd4a30a932c441f365a25e86b173defa4b8e58948253471b81b72cf");
  EXPECT_EQ(to_hex(encoded(file_reject{file_reject_code::exists, "exists"})), "5252000705657869737473");
  EXPECT_EQ(to_hex(encoded(file_chunk{{0xde, 0xad}})), "53530002dead");
  EXPECT_EQ(to_hex(encoded(file_start{0x0102030405060708})), "545400080102030405060708");
  EXPECT_EQ(to_hex(encoded(file_verdict{file_verdict_code::digest_mismatch})), "5555000102");
}

TEST(FileTransferCodec, TheProtocolDocumentsExampleConversation) {
  auto empty = hex("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");  // BLAKE2b-256("")
  file_digest nothing;
  std::copy(empty.begin(), empty.end(), nothing.begin());
  EXPECT_EQ(to_hex(encoded(file_accept{0, nothing})),
            "515100280000000000000000" "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  EXPECT_EQ(to_hex(encoded(file_start{0})), "545400080000000000000000");
  EXPECT_EQ(to_hex(encoded(file_chunk{byte_vector{'h', 'e', 'l', 'l', 'o'}})), "5353000568656c6c6f");
  EXPECT_EQ(to_hex(encoded(file_verdict{file_verdict_code::ok})), "5555000100");
}

std::vector<file_message> samples() {
  return {file_offer{5, digest_of_hello(), "a.txt"},
          file_offer{~std::uint64_t{0}, {}, std::string(max_file_name, 'n')},
          file_offer{0, {}, "../not/judged/here"},  // the codec carries it; check_file_name refuses it
          file_accept{0, {}},
          file_accept{1 << 20, digest_of_hello()},
          file_reject{file_reject_code::declined, ""},
          file_reject{static_cast<file_reject_code>(200), std::string(max_reject_text, 'r')},
          file_reject{file_reject_code::bad_name, "der Name enthält \xe2\x80\x9e/\xe2\x80\x9c"},
          file_chunk{byte_vector(1, 7)},
          file_chunk{byte_vector(max_file_chunk, 9)},
          file_start{0},
          file_start{12345},
          file_verdict{file_verdict_code::ok},
          file_verdict{static_cast<file_verdict_code>(99)}};
}

TEST(FileTransferCodec, RoundTripsWholeAndHeaderThenBody) {
  for (const auto& m : samples()) {
    auto bytes = encoded(m);
    file_message whole;
    ASSERT_FALSE(decode(bytes, whole)) << to_hex(bytes).substr(0, 80);
    EXPECT_EQ(whole, m);
    // As a stream reader takes it: the header, then exactly the body it announces.
    file_frame_header header;
    ASSERT_FALSE(decode_header(bytes, header));
    EXPECT_EQ(header.type, frame_type(m));
    EXPECT_EQ(header.length + file_frame_header_size, bytes.size());
    file_message parts;
    ASSERT_FALSE(decode_body(header, byte_span(bytes).subspan(file_frame_header_size), parts));
    EXPECT_EQ(parts, m);
  }
}

TEST(FileTransferCodec, EveryTruncationIsTruncatedAndExtraBytesAreTrailing) {
  for (const auto& m : samples()) {
    auto bytes = encoded(m);
    for (std::size_t n = 0; n < bytes.size(); ++n)
      EXPECT_EQ(decode_error(byte_span(bytes).first(n)), errc::truncated) << n << " of " << bytes.size();
    auto longer = bytes;
    longer.push_back(0);
    EXPECT_EQ(decode_error(longer), errc::trailing_bytes);
    // A body read after its header must be exactly as long as announced.
    file_frame_header header;
    ASSERT_FALSE(decode_header(bytes, header));
    file_message out = file_verdict{};
    byte_span body = byte_span(bytes).subspan(file_frame_header_size);
    EXPECT_EQ(decode_body(header, body.first(body.size() - 1), out), errc::truncated);
    EXPECT_EQ(decode_body(header, byte_span(longer).subspan(file_frame_header_size), out), errc::trailing_bytes);
    EXPECT_EQ(out, file_message(file_verdict{})) << "a failed decode left its output changed";
  }
}

TEST(FileTransferCodec, HeaderFaults) {
  file_frame_header h;
  EXPECT_EQ(decode_header(hex("5051002d"), h), errc::bad_field);             // the type bytes differ
  EXPECT_EQ(decode_header(hex("56560001"), h), errc::unknown_packet_type);   // after verdict
  EXPECT_EQ(decode_header(hex("4f4f0001"), h), errc::unknown_packet_type);   // before offer
  EXPECT_EQ(decode_header(hex("00000000"), h), errc::unknown_packet_type);
  EXPECT_EQ(decode_header(hex("50500028"), h), errc::bad_length);  // an offer with no name
  EXPECT_EQ(decode_header(hex("50500128"), h), errc::bad_length);  // a name of 256 bytes
  EXPECT_FALSE(decode_header(hex("50500127"), h));
  EXPECT_EQ(h, (file_frame_header{file_frame::offer, 0x127}));
  EXPECT_EQ(decode_header(hex("51510027"), h), errc::bad_length);  // accept is 40 bytes exactly
  EXPECT_EQ(decode_header(hex("51510029"), h), errc::bad_length);
  EXPECT_EQ(decode_header(hex("52520000"), h), errc::bad_length);  // a reject without a code
  EXPECT_EQ(decode_header(hex("52520101"), h), errc::bad_length);  // text of 256 bytes
  EXPECT_EQ(decode_header(hex("53530000"), h), errc::bad_length);  // an empty chunk
  EXPECT_EQ(decode_header(hex("5353fffd"), h), errc::bad_length);  // 65533 bytes
  EXPECT_FALSE(decode_header(hex("5353fffc"), h));
  EXPECT_EQ(decode_header(hex("54540007"), h), errc::bad_length);
  EXPECT_EQ(decode_header(hex("55550000"), h), errc::bad_length);
  EXPECT_EQ(decode_header(hex("55550002"), h), errc::bad_length);
  // decode_body checks the range too, for a header it did not make itself.
  file_message out;
  EXPECT_EQ(decode_body(file_frame_header{file_frame::start, 7}, hex("00000000000000"), out), errc::bad_length);
  EXPECT_EQ(decode_body(file_frame_header{static_cast<file_frame>(0x60), 1}, hex("00"), out), errc::bad_length);
}

TEST(FileTransferCodec, RejectTextMustBeUtf8) {
  EXPECT_EQ(decode_error(hex("525200030180ff")), errc::bad_field);
  EXPECT_EQ(decode_error(hex("5252000301c0af")), errc::bad_field);  // overlong '/'
  EXPECT_EQ(decode_error(hex("5252000401eda080")), errc::bad_field);   // a surrogate
  EXPECT_FALSE(decode_error(hex("5252000401e282ac")));                 // a euro sign
}

TEST(FileTransferCodec, FileNames) {
  using p = file_name_problem;
  EXPECT_EQ(check_file_name("report.pdf"), p::none);
  EXPECT_EQ(check_file_name(".hidden"), p::none);
  EXPECT_EQ(check_file_name("a..b"), p::none);
  EXPECT_EQ(check_file_name("Grüße €.txt"), p::none);
  EXPECT_EQ(check_file_name(std::string(255, 'x')), p::none);
  EXPECT_EQ(check_file_name(""), p::empty);
  EXPECT_EQ(check_file_name(std::string(256, 'x')), p::too_long);
  EXPECT_EQ(check_file_name("\xff.txt"), p::not_utf8);
  EXPECT_EQ(check_file_name("a/b"), p::separator);
  EXPECT_EQ(check_file_name("/etc"), p::separator);
  EXPECT_EQ(check_file_name("a\\b"), p::separator);
  EXPECT_EQ(check_file_name("..\\x"), p::separator);
  EXPECT_EQ(check_file_name(std::string("a\0b", 3)), p::nul);
  EXPECT_EQ(check_file_name("line\nbreak"), p::control);
  EXPECT_EQ(check_file_name("esc\x1b[2J"), p::control);
  EXPECT_EQ(check_file_name("del\x7f"), p::control);
  EXPECT_EQ(check_file_name("."), p::dot);
  EXPECT_EQ(check_file_name(".."), p::dot);
  EXPECT_EQ(check_file_name("..x"), p::dot);
  EXPECT_EQ(check_file_name("movie.mkv.part"), p::partial_suffix);
  EXPECT_STREQ(describe(p::separator), "contains a path separator ('/' or '\\')");
}

}  // namespace
}  // namespace kadnet::core::wire
