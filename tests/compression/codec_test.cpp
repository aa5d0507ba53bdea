// One suite instantiated for every codec (the shape of Apache Arrow's compression_test.cc):
// round trips, corrupt and truncated input, the output cap, and decompression bombs.
#include "kadnet/compression/codec.hpp"

#include <bzlib.h>
#include <lzma.h>
#include <snappy.h>
#include <sys/resource.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace {

namespace kc = kadnet::compression;
using bytes = std::vector<std::uint8_t>;

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * kib;
// The decompressors grow their output in chunks of this size (compression/backends.hpp).
constexpr std::size_t decoder_chunk = 64 * kib;

// English-like text: words from a fixed list, seeded, so every run compresses the same bytes.
bytes text_sample(std::size_t size, std::uint32_t seed) {
  static constexpr std::array<std::string_view, 24> words{
      "the",   "node",    "sends", "a",      "lookup", "to",      "its",    "closest",
      "peers", "and",     "each",  "answer", "brings", "nodes",   "nearer", "target",
      "value", "stored",  "under", "key",    "bucket", "refresh", "ping",   "distance"};
  std::mt19937 rng(seed);
  bytes out;
  out.reserve(size + 16);
  while (out.size() < size) {
    auto word = words[rng() % words.size()];
    out.insert(out.end(), word.begin(), word.end());
    out.push_back(rng() % 13 == 0 ? '\n' : ' ');
  }
  out.resize(size);
  return out;
}

bytes random_sample(std::size_t size, std::uint32_t seed) {
  std::mt19937 rng(seed);
  bytes out(size);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

// Alternating runs of text, noise and repeats: neither trivial nor incompressible.
bytes mixed_sample(std::size_t size, std::uint32_t seed) {
  std::mt19937 rng(seed);
  bytes out;
  out.reserve(size);
  while (out.size() < size) {
    std::size_t run = 256 + rng() % 4096;
    switch (rng() % 3) {
      case 0: {
        bytes t = text_sample(run, rng());
        out.insert(out.end(), t.begin(), t.end());
        break;
      }
      case 1: {
        bytes r = random_sample(run, rng());
        out.insert(out.end(), r.begin(), r.end());
        break;
      }
      default:
        out.insert(out.end(), run, static_cast<std::uint8_t>(rng()));
    }
  }
  out.resize(size);
  return out;
}

// Formats whose tools decode concatenated units (gzip members, bz2 and xz streams, zstd
// frames); zlib and raw snappy are a single unit by definition.
bool accepts_concatenation(kc::codec_id id) {
  return id != kc::codec_id::zlib && id != kc::codec_id::snappy;
}

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// Resets the kernel's peak-RSS mark (Linux >= 4.0) so ru_maxrss measures from now on rather
// than from the largest earlier test. Returns false where /proc does not allow it.
bool reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}

// ---- Decompression bombs, built in well under a second each from the libraries themselves.
// Each holds `units` copies of a unit of zeros; bomb_unit() says how large a unit is.

std::size_t bomb_unit(kc::codec_id id) { return id == kc::codec_id::bz2 ? 8 * mib : mib; }

// One raw deflate segment of 1 MiB zeros that ends in a full flush: it refers to nothing
// before it, so any number of copies in a row is a valid deflate body.
bytes deflate_zero_segment() {
  bytes zeros(mib), out(64 * kib);
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
  zs.next_in = zeros.data();
  zs.avail_in = static_cast<uInt>(zeros.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FULL_FLUSH), Z_OK);
  EXPECT_EQ(zs.avail_in, 0u);
  EXPECT_GT(zs.avail_out, 0u);
  out.resize(out.size() - zs.avail_out);
  deflateEnd(&zs);
  return out;
}

bytes deflate_bomb(bool gzip, std::size_t units) {
  bytes segment = deflate_zero_segment();
  bytes zeros(mib);
  uLong crc = crc32(0, zeros.data(), mib), crc_all = crc;
  uLong adler = adler32(1, zeros.data(), mib), adler_all = adler;
  for (std::size_t i = 1; i < units; ++i) {
    crc_all = crc32_combine(crc_all, crc, mib);
    adler_all = adler32_combine(adler_all, adler, mib);
  }
  // gzip: magic, deflate, no flags, no MTIME, XFL "slowest", OS Unix. zlib: 32 KiB window,
  // level-9 flags, no dictionary (0x78da is a multiple of 31, as FCHECK requires).
  bytes out = gzip ? bytes{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3} : bytes{0x78, 0xda};
  for (std::size_t i = 0; i < units; ++i) out.insert(out.end(), segment.begin(), segment.end());
  out.insert(out.end(), {0x03, 0x00});  // final, empty fixed-Huffman block
  auto put32 = [&](std::uint32_t v, bool little) {
    for (int i = 0; i < 4; ++i) {
      out.push_back(static_cast<std::uint8_t>(v >> (little ? 8 * i : 24 - 8 * i)));
    }
  };
  if (gzip) {
    put32(static_cast<std::uint32_t>(crc_all), true);
    put32(static_cast<std::uint32_t>(units * mib), true);  // ISIZE is the size mod 2^32
  } else {
    put32(static_cast<std::uint32_t>(adler_all), false);
  }
  return out;
}

// One .bz2 stream of `units` identical blocks of 8 MiB zeros. bzip2 blocks are bit-aligned,
// so the block is cut out of a one-block stream bit by bit and the stream CRC recomputed.
bytes bz2_bomb(std::size_t units) {
  bytes zeros(8 * mib), one(4 * kib);
  unsigned one_size = static_cast<unsigned>(one.size());
  EXPECT_EQ(BZ2_bzBuffToBuffCompress(reinterpret_cast<char*>(one.data()), &one_size,
                                     reinterpret_cast<char*>(zeros.data()),
                                     static_cast<unsigned>(zeros.size()), 9, 0, 0),
            BZ_OK);
  one.resize(one_size);
  auto bit = [&](std::size_t i) { return (one[i / 8] >> (7 - i % 8)) & 1; };
  auto read = [&](std::size_t at, int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = v << 1 | bit(at + i);
    return v;
  };
  constexpr std::uint64_t end_magic = 0x177245385090;
  std::size_t end = 0;
  for (std::size_t pad = 0; pad < 8; ++pad) {
    std::size_t at = one.size() * 8 - pad - 80;
    if (read(at, 48) == end_magic) end = at;
  }
  EXPECT_NE(end, 0u);
  const std::uint32_t block_crc = static_cast<std::uint32_t>(read(32 + 48, 32));
  // One block only: then the stream CRC equals the block CRC.
  EXPECT_EQ(read(end + 48, 32), block_crc);

  bytes out(one.begin(), one.begin() + 4);  // "BZh9"
  int used = 8;
  auto put = [&](std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) {
      if (used == 8) out.push_back(0), used = 0;
      out.back() |= static_cast<std::uint8_t>(((v >> i) & 1) << (7 - used++));
    }
  };
  std::uint32_t combined = 0;
  for (std::size_t u = 0; u < units; ++u) {
    for (std::size_t i = 32; i < end; ++i) put(bit(i), 1);
    combined = (combined << 1 | combined >> 31) ^ block_crc;
  }
  put(end_magic, 48);
  put(combined, 32);
  return out;
}

// One .xz stream of `units` independent blocks of 1 MiB zeros, with a matching index.
bytes xz_bomb(std::size_t units) {
  bytes zeros(mib), block(64 * kib);
  lzma_options_lzma options;
  lzma_lzma_preset(&options, 0);
  options.dict_size = mib;
  lzma_filter filters[] = {{LZMA_FILTER_LZMA2, &options}, {LZMA_VLI_UNKNOWN, nullptr}};
  lzma_block header{};
  header.version = 0;
  header.check = LZMA_CHECK_CRC64;
  header.filters = filters;
  std::size_t block_size = 0;
  EXPECT_EQ(lzma_block_buffer_encode(&header, nullptr, zeros.data(), zeros.size(), block.data(),
                                     &block_size, block.size()),
            LZMA_OK);
  block.resize(block_size);

  lzma_stream_flags flags{};
  flags.version = 0;
  flags.check = LZMA_CHECK_CRC64;
  bytes out(LZMA_STREAM_HEADER_SIZE);
  EXPECT_EQ(lzma_stream_header_encode(&flags, out.data()), LZMA_OK);
  lzma_index* index = lzma_index_init(nullptr);
  for (std::size_t u = 0; u < units; ++u) {
    out.insert(out.end(), block.begin(), block.end());
    EXPECT_EQ(lzma_index_append(index, nullptr, lzma_block_unpadded_size(&header), mib), LZMA_OK);
  }
  std::size_t at = out.size();
  out.resize(at + lzma_index_size(index));
  EXPECT_EQ(lzma_index_buffer_encode(index, out.data(), &at, out.size()), LZMA_OK);
  flags.backward_size = lzma_index_size(index);
  lzma_index_end(index, nullptr);
  out.resize(at + LZMA_STREAM_HEADER_SIZE);
  EXPECT_EQ(lzma_stream_footer_encode(&flags, out.data() + at), LZMA_OK);
  return out;
}

// One zstd frame whose header declares the full size, streamed from a 1 MiB zero buffer.
bytes zstd_bomb(std::size_t units) {
  bytes zeros(mib), out;
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 1);
  ZSTD_CCtx_setPledgedSrcSize(cctx, units * mib);
  bytes buffer(ZSTD_CStreamOutSize());
  for (std::size_t u = 0; u < units; ++u) {
    ZSTD_inBuffer in{zeros.data(), zeros.size(), 0};
    auto mode = u + 1 == units ? ZSTD_e_end : ZSTD_e_continue;
    for (;;) {
      ZSTD_outBuffer o{buffer.data(), buffer.size(), 0};
      std::size_t left = ZSTD_compressStream2(cctx, &o, &in, mode);
      EXPECT_FALSE(ZSTD_isError(left));
      out.insert(out.end(), buffer.begin(), buffer.begin() + o.pos);
      if (ZSTD_isError(left) || (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)) break;
    }
  }
  ZSTD_freeCCtx(cctx);
  EXPECT_EQ(ZSTD_getFrameContentSize(out.data(), out.size()), units * mib);
  return out;
}

// A raw snappy block of 1 MiB zeros whose header claims units MiB instead.
bytes snappy_bomb(std::size_t units) {
  bytes zeros(mib);
  std::string real;
  snappy::Compress(reinterpret_cast<const char*>(zeros.data()), zeros.size(), &real);
  bytes out;
  for (std::uint64_t claim = units * mib; ; claim >>= 7) {
    out.push_back(static_cast<std::uint8_t>(claim & 0x7f) | (claim >= 0x80 ? 0x80 : 0));
    if (claim < 0x80) break;
  }
  std::size_t header = 0;
  while (static_cast<std::uint8_t>(real[header]) & 0x80) ++header;
  out.insert(out.end(), real.begin() + header + 1, real.end());
  return out;
}

bytes make_bomb(kc::codec_id id, std::size_t units) {
  switch (id) {
    case kc::codec_id::bz2: return bz2_bomb(units);
    case kc::codec_id::gzip: return deflate_bomb(true, units);
    case kc::codec_id::lzma: return xz_bomb(units);
    case kc::codec_id::zlib: return deflate_bomb(false, units);
    case kc::codec_id::snappy: return snappy_bomb(units);
    case kc::codec_id::zstd: return zstd_bomb(units);
  }
  return {};
}

class CodecTest : public ::testing::TestWithParam<kc::codec_id> {
 protected:
  const kc::codec& codec() const { return kc::get_codec(GetParam()); }

  bytes compress(const bytes& input) const {
    bytes out;
    EXPECT_FALSE(codec().compress(input, out));
    return out;
  }

  boost::system::error_code decompress(const bytes& input, std::size_t cap, bytes& out) const {
    return codec().decompress(input, cap, out);
  }

  // Both directions append: bytes already in the output vectors must survive untouched.
  void expect_round_trip(const bytes& input) const {
    const bytes prefix{0xde, 0xad, 0xbe, 0xef};
    bytes compressed = prefix;
    ASSERT_FALSE(codec().compress(input, compressed));
    ASSERT_TRUE(std::equal(prefix.begin(), prefix.end(), compressed.begin()));
    bytes body(compressed.begin() + prefix.size(), compressed.end());
    bytes restored = prefix;
    ASSERT_FALSE(decompress(body, input.size(), restored));
    ASSERT_EQ(restored.size(), prefix.size() + input.size());
    EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), restored.begin()));
    EXPECT_TRUE(std::equal(input.begin(), input.end(), restored.begin() + prefix.size()));
  }
};

TEST_P(CodecTest, ReportsItsId) { EXPECT_EQ(codec().id(), GetParam()); }

TEST_P(CodecTest, RoundTripsEmptyInput) {
  expect_round_trip({});
  // An empty input still compresses to a non-empty, valid stream of the format.
  EXPECT_FALSE(compress({}).empty());
}

TEST_P(CodecTest, RoundTripsOneByte) {
  expect_round_trip({0x42});
  expect_round_trip({0x00});
}

TEST_P(CodecTest, RoundTripsText) {
  bytes text = text_sample(64 * kib, 1);
  expect_round_trip(text);
  // The codec really compresses: every one of these formats gets English-like text to well
  // under half its size.
  EXPECT_LT(compress(text).size(), text.size() / 2);
}

TEST_P(CodecTest, RoundTripsRandomBytes) { expect_round_trip(random_sample(64 * kib, 2)); }

TEST_P(CodecTest, RoundTripsOneMebibyte) { expect_round_trip(mixed_sample(mib, 3)); }

TEST_P(CodecTest, RejectsDataThatIsNotCompressed) {
  const std::string_view text = "kadnet: definitely not compressed data, just a sentence.";
  bytes out;
  EXPECT_EQ(decompress(bytes(text.begin(), text.end()), mib, out), kc::errc::corrupt_input);
  // A stream of zero bytes is no valid header in any of the formats.
  EXPECT_EQ(decompress(bytes(64, 0), mib, out), kc::errc::corrupt_input);
}

TEST_P(CodecTest, RejectsEmptyInput) {
  bytes out;
  EXPECT_EQ(decompress({}, mib, out), kc::errc::corrupt_input);
}

TEST_P(CodecTest, RejectsTrailingGarbage) {
  bytes input = text_sample(4 * kib, 4);
  bytes stream = compress(input);
  for (std::string_view junk : {"junk", "\x01", "not a stream at all"}) {
    bytes garbled = stream;
    garbled.insert(garbled.end(), junk.begin(), junk.end());
    bytes out;
    EXPECT_EQ(decompress(garbled, mib, out), kc::errc::corrupt_input) << "junk: " << junk;
  }
}

TEST_P(CodecTest, ConcatenationFollowsTheFormat) {
  bytes first = text_sample(3 * kib, 5), second = random_sample(kib, 6);
  bytes stream = compress(first), more = compress(second);
  stream.insert(stream.end(), more.begin(), more.end());
  bytes out;
  auto ec = decompress(stream, mib, out);
  if (accepts_concatenation(GetParam())) {
    ASSERT_FALSE(ec) << ec.message();
    bytes expected = first;
    expected.insert(expected.end(), second.begin(), second.end());
    EXPECT_EQ(out, expected);
  } else {
    EXPECT_EQ(ec, kc::errc::corrupt_input);
  }
}

TEST_P(CodecTest, EveryTruncationIsCorruptInput) {
  bytes stream = compress(text_sample(2 * kib, 7));
  for (std::size_t size = 0; size < stream.size(); ++size) {
    bytes out;
    EXPECT_EQ(decompress(bytes(stream.begin(), stream.begin() + size), mib, out),
              kc::errc::corrupt_input)
        << "truncated to " << size << " of " << stream.size() << " bytes";
  }
}

TEST_P(CodecTest, SurvivesEveryByteFlip) {
  // A zstd frame carries no checksum by default and a raw snappy block none at all, so a flip
  // there may decode to other bytes; it must never crash, and what decodes obeys the cap. The
  // other formats check every byte (CRCs, Adler-32, header check bits) except gzip's MTIME,
  // XFL and OS header fields (bytes 4 to 9), so there a flip anywhere else must be caught.
  const kc::codec_id id = GetParam();
  const bool checksummed = id != kc::codec_id::zstd && id != kc::codec_id::snappy;
  const std::size_t cap = 8 * kib;
  bytes stream = compress(text_sample(4 * kib, 8));
  for (std::size_t i = 0; i < stream.size(); ++i) {
    bytes garbled = stream;
    garbled[i] ^= 0x55;
    bytes out;
    auto ec = decompress(garbled, cap, out);
    if (ec) {
      EXPECT_TRUE(ec == kc::errc::corrupt_input || ec == kc::errc::output_limit_exceeded)
          << "flip at " << i << ": " << ec.message();
    } else {
      EXPECT_LE(out.size(), cap);
      const bool unchecked_field = id == kc::codec_id::gzip && i >= 4 && i < 10;
      EXPECT_FALSE(checksummed && !unchecked_field) << "flip at " << i << " went unnoticed";
    }
  }
}

TEST_P(CodecTest, OutputExactlyAtTheCapSucceeds) {
  bytes input = text_sample(100'000, 9);
  bytes out;
  ASSERT_FALSE(decompress(compress(input), input.size(), out));
  EXPECT_EQ(out, input);
}

TEST_P(CodecTest, OutputPastTheCapFails) {
  bytes input = text_sample(100'000, 10);
  bytes stream = compress(input);
  for (std::size_t cap : {input.size() - 1, std::size_t{70'000}, std::size_t{1}, std::size_t{0}}) {
    bytes out;
    EXPECT_EQ(decompress(stream, cap, out), kc::errc::output_limit_exceeded) << "cap " << cap;
  }
  bytes out;
  EXPECT_FALSE(decompress(compress({}), 0, out)) << "an empty output fits a cap of zero";
}

TEST_P(CodecTest, OutputPastTheCapHoldsAtMostTheCapPlusOneChunk) {
  bytes input = mixed_sample(mib, 11);
  bytes stream = compress(input);
  const std::size_t cap = 100'000;
  bytes out;
  ASSERT_EQ(decompress(stream, cap, out), kc::errc::output_limit_exceeded);
  EXPECT_LE(out.capacity(), cap + decoder_chunk);
  // And data well under the cap is not given a cap-sized buffer up front.
  bytes small_out;
  ASSERT_FALSE(decompress(compress(text_sample(1000, 12)), 512 * mib, small_out));
  EXPECT_LE(small_out.capacity(), decoder_chunk);
}

TEST_P(CodecTest, BombConstructionIsValid) {
  // The bombs below are assembled by hand; a small one must decode to exactly its zeros, or
  // the bomb test would only be testing a broken stream.
  if (GetParam() == kc::codec_id::snappy) {
    // The snappy bomb is a header that lies; its body is a real 1 MiB block.
    bytes out;
    auto ec = decompress(make_bomb(GetParam(), 1), 2 * mib, out);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(out, bytes(mib, 0));
    return;
  }
  const std::size_t units = 2;
  bytes out;
  auto ec = decompress(make_bomb(GetParam(), units), units * bomb_unit(GetParam()), out);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(out.size(), units * bomb_unit(GetParam()));
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](std::uint8_t b) { return b == 0; }));
}

TEST_P(CodecTest, GibibyteBombStopsAtTheCapWithLittleMemory) {
  const bytes bomb = make_bomb(GetParam(), 1024 * mib / bomb_unit(GetParam()));
  const std::size_t cap = mib;
  bool measured_from_now = reset_peak_rss();
  if (!measured_from_now) {
    std::cerr << "note: /proc/self/clear_refs unavailable; peak RSS is compared with the "
                 "process's earlier peak, which can only understate the growth\n";
  }
  const long before = peak_rss_kib();
  bytes out;
  EXPECT_EQ(decompress(bomb, cap, out), kc::errc::output_limit_exceeded);
  const long growth_kib = peak_rss_kib() - before;
  EXPECT_LE(out.capacity(), cap + decoder_chunk);
  EXPECT_LT(growth_kib, 64 * 1024) << "peak RSS grew by " << growth_kib << " KiB";
  RecordProperty("bomb_bytes", static_cast<int>(bomb.size()));
  RecordProperty("peak_rss_growth_kib", static_cast<int>(growth_kib));
}

std::string codec_test_name(const ::testing::TestParamInfo<kc::codec_id>& info) {
  return std::string(kc::codec_name(info.param));
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, CodecTest,
                         ::testing::ValuesIn(kc::all_codecs().begin(), kc::all_codecs().end()),
                         codec_test_name);

// ---- The registry and the error category, which the suite above relies on.

TEST(CodecRegistry, FindsEveryCodecByNumberAndName) {
  ASSERT_EQ(kc::all_codecs().size(), kc::codec_count);
  for (std::uint8_t n = 0; n < kc::codec_count; ++n) {
    const kc::codec* c = kc::find_codec(n);
    ASSERT_NE(c, nullptr) << int(n);
    EXPECT_EQ(static_cast<std::uint8_t>(c->id()), n);
    EXPECT_EQ(kc::all_codecs()[n], c->id());
    EXPECT_EQ(kc::codec_from_name(kc::codec_name(c->id())), c->id());
    EXPECT_EQ(&kc::get_codec(c->id()), c) << "codecs are singletons";
  }
  EXPECT_EQ(kc::codec_name(kc::codec_id::bz2), "bz2");
  EXPECT_EQ(kc::codec_name(kc::codec_id::lzma), "lzma");
  EXPECT_EQ(kc::codec_name(kc::codec_id::zstd), "zstd");
}

TEST(CodecRegistry, UnknownNumbersAndNamesFindNothing) {
  EXPECT_EQ(kc::find_codec(kc::codec_count), nullptr);
  EXPECT_EQ(kc::find_codec(255), nullptr);
  EXPECT_EQ(kc::codec_from_name("xz"), std::nullopt);
  EXPECT_EQ(kc::codec_from_name("GZIP"), std::nullopt);
  EXPECT_EQ(kc::codec_from_name(""), std::nullopt);
}

TEST(CompressionErrors, HaveANamedCategoryAndAMessageEach) {
  EXPECT_STREQ(kc::error_category().name(), "kadnet.compression");
  std::vector<std::string> messages;
  for (auto e : {kc::errc::unsupported_method, kc::errc::output_limit_exceeded,
                 kc::errc::corrupt_input, kc::errc::compress_failed}) {
    boost::system::error_code ec = e;
    EXPECT_EQ(&ec.category(), &kc::error_category());
    EXPECT_FALSE(ec.message().empty());
    messages.push_back(ec.message());
  }
  std::sort(messages.begin(), messages.end());
  EXPECT_EQ(std::unique(messages.begin(), messages.end()), messages.end());
}

}  // namespace
