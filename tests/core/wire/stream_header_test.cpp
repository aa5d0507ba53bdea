// A byte stream's protocol header (core/wire/stream_header.hpp, PROTOCOL.md 9.6): exact bytes,
// reading it in any pieces, and the names refused.
#include "kadnet/core/wire/stream_header.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "kadnet/core/errors.hpp"

namespace kadnet::core::wire {
namespace {

byte_vector bytes_of(std::string_view text) { return byte_vector(text.begin(), text.end()); }

// Feeds `in` to a reader `piece` bytes at a time, taking no more than it wants; returns the
// reader and how many bytes it took.
std::pair<stream_header_reader, std::size_t> read_in_pieces(const byte_vector& in, std::size_t piece) {
  stream_header_reader reader;
  std::size_t taken = 0;
  while (reader.wanted() > 0 && taken < in.size()) {
    const std::size_t n = std::min({piece, reader.wanted(), in.size() - taken});
    reader.feed(byte_span(in.data() + taken, n));
    taken += n;
  }
  return {reader, taken};
}

TEST(StreamHeader, IsTheLengthThenTheName) {
  byte_vector expected{4};
  auto name = bytes_of("chat");
  expected.insert(expected.end(), name.begin(), name.end());
  EXPECT_EQ(encode_stream_header("chat"), expected);
  EXPECT_EQ(encode_stream_header(""), byte_vector{0});
}

TEST(StreamHeader, ReadsInAnyPiecesAndTakesNothingAfterIt) {
  byte_vector in = encode_stream_header("kadnet/file");
  const byte_vector after = bytes_of("application bytes");
  in.insert(in.end(), after.begin(), after.end());
  for (std::size_t piece : {1u, 2u, 5u, 100u}) {
    auto [reader, taken] = read_in_pieces(in, piece);
    EXPECT_TRUE(reader.done()) << piece;
    EXPECT_EQ(reader.protocol(), "kadnet/file");
    EXPECT_EQ(taken, 12u) << "the bytes after the header are the application's";
    EXPECT_EQ(reader.wanted(), 0u);
  }
}

TEST(StreamHeader, TheDefaultProtocolIsOneZeroByte) {
  auto [reader, taken] = read_in_pieces(byte_vector{0, 7, 7}, 10);
  EXPECT_TRUE(reader.done());
  EXPECT_EQ(reader.protocol(), "");
  EXPECT_EQ(taken, 1u);
}

TEST(StreamHeader, ANameOf255BytesIsTheLongest) {
  const std::string longest(255, 'p');
  auto [reader, taken] = read_in_pieces(encode_stream_header(longest), 64);
  EXPECT_TRUE(reader.done());
  EXPECT_EQ(reader.protocol(), longest);
  EXPECT_THROW(encode_stream_header(std::string(256, 'p')), std::invalid_argument);
}

TEST(StreamHeader, NamesThatAreNotUtf8OrHoldControlCharactersAreRefused) {
  for (std::string bad : {std::string("a\nb"), std::string("nul\0x", 5), std::string("\x7f"),
                          std::string("\xc3\x28"), std::string("\xed\xa0\x80")}) {
    EXPECT_FALSE(valid_stream_protocol(bad)) << bad;
    EXPECT_THROW(encode_stream_header(bad), std::invalid_argument);
    byte_vector in{static_cast<std::uint8_t>(bad.size())};
    in.insert(in.end(), bad.begin(), bad.end());
    stream_header_reader reader;
    EXPECT_EQ(reader.feed(in), make_error_code(errc::bad_field));
    EXPECT_TRUE(reader.failed());
    EXPECT_FALSE(reader.done());
    EXPECT_EQ(reader.wanted(), 0u);
  }
  EXPECT_TRUE(valid_stream_protocol("échange/1"));
}

TEST(StreamHeader, AnUnfinishedHeaderIsNeitherDoneNorFailed) {
  stream_header_reader reader;
  EXPECT_FALSE(reader.feed(byte_vector{5, 'a', 'b'}));
  EXPECT_FALSE(reader.done());
  EXPECT_FALSE(reader.failed());
  EXPECT_EQ(reader.wanted(), 3u);
}

}  // namespace
}  // namespace kadnet::core::wire
