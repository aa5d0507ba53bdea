// Hostile input for the message decoder: every truncation and many seeded random mutations of
// every wire vector. Whatever the input, decode() must return an error or a message that
// re-encodes to exactly the input (the encoding is canonical), and the decoded message never
// holds more bytes than the input had (no allocation driven by a lying length field).
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kadnet/core/errors.hpp"
#include "kadnet/core/wire/message.hpp"

namespace kadnet::core::wire {
namespace {

using boost::system::error_code;

const std::filesystem::path vector_dir = KADNET_SOURCE_DIR "/tests/vectors";
constexpr std::uint64_t base_seed = 0x6b61646e6574;  // "kadnet"
constexpr int mutations_per_vector = 12000;

struct loaded_vector {
  std::string name;
  byte_vector bytes;
};

std::vector<loaded_vector> load_vectors() {
  std::vector<loaded_vector> out;
  for (const auto& entry : std::filesystem::directory_iterator(vector_dir)) {
    if (entry.path().extension() != ".txt") continue;
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      byte_vector bytes;
      if (line.rfind("hex: ", 0) == 0 && from_hex(line.substr(5), bytes)) {
        out.push_back({entry.path().stem().string(), std::move(bytes)});
        break;
      }
    }
  }
  return out;
}

// Bytes the decoded message holds on the heap (capacity, as that is what was allocated).
std::size_t held_bytes(const message& m) {
  struct counter {
    std::size_t operator()(const ack& b) const { return b.data.capacity(); }
    std::size_t operator()(const nack& b) const { return b.text.size() + b.data.capacity(); }
    std::size_t operator()(const ping&) const { return 0; }
    std::size_t operator()(const set_connection_opt&) const { return 0; }
    std::size_t operator()(const shout& b) const { return b.payload.capacity(); }
    std::size_t operator()(const speak& b) const { return b.payload.capacity(); }
    std::size_t operator()(const whisper& b) const { return b.payload.capacity(); }
    std::size_t operator()(const find_node&) const { return 0; }
    std::size_t operator()(const find_value&) const { return 0; }
    std::size_t operator()(const store& b) const { return b.value.capacity(); }
    std::size_t operator()(const announce& b) const {
      std::size_t n = 0;
      for (const auto& a : b.addresses) n += a.size();
      return n;
    }
    std::size_t operator()(const introduce& b) const { return b.address.capacity(); }
    std::size_t operator()(const relay& b) const { return b.data.capacity(); }
    std::size_t operator()(const plugin_call& b) const { return b.payload.capacity(); }
  };
  return std::visit(counter{}, m.body);
}

// Checks the decoder's contract on one input; returns false (with a gtest failure) if broken.
bool decoder_holds_contract(const byte_vector& in, const decode_limits& limits = {}) {
  message m;
  error_code ec = decode(in, m, limits);
  if (ec) {
    EXPECT_EQ(&ec.category(), &error_category()) << ec.message();
    return !::testing::Test::HasFailure();
  }
  EXPECT_LE(held_bytes(m), in.size()) << "decoded fields hold more than the input";
  byte_vector again;
  encode(m, again);
  EXPECT_EQ(to_hex(again), to_hex(in)) << "decode then encode is not the identity";
  message twice;
  EXPECT_FALSE(decode(again, twice, limits));
  EXPECT_EQ(twice, m);
  return !::testing::Test::HasFailure();
}

// Offsets of the length fields the layouts define, by opcode (and STORE's owner flag).
std::vector<std::pair<std::size_t, int>> length_fields(const byte_vector& in) {
  if (in.empty()) return {};
  switch (in[0]) {
    case 1: return {{8, 2}};                       // NACK text_len
    case 4: return {{5 + 32 + 8 + 1, 4}};          // SHOUT payload_len
    case 9: {
      const std::size_t flags_at = 5 + 32 + 8 + 4;
      bool owned = in.size() > flags_at && (in[flags_at] & 1);
      bool consensus = in.size() > flags_at && (in[flags_at] & 2);
      return {{flags_at + 1 + (owned ? 96 : 0) + (consensus ? 57 : 0), 4}};  // STORE value_len
    }
    default: return {};
  }
}

void mutate(byte_vector& b, std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n)(rng); };
  auto byte = [&] { return static_cast<std::uint8_t>(rng()); };
  switch (pick(5)) {
    case 0:  // flip one bit
      if (!b.empty()) b[pick(b.size() - 1)] ^= static_cast<std::uint8_t>(1u << pick(7));
      break;
    case 1: {  // insert a few random bytes
      std::size_t at = pick(b.size()), n = 1 + pick(7);
      for (std::size_t i = 0; i < n; ++i) b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), byte());
      break;
    }
    case 2: {  // delete a range
      if (b.empty()) break;
      std::size_t at = pick(b.size() - 1), n = 1 + pick(std::min<std::size_t>(15, b.size() - at - 1));
      b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + n));
      break;
    }
    case 3:  // overwrite a random byte
      if (!b.empty()) b[pick(b.size() - 1)] = byte();
      break;
    case 4: {  // overwrite a defined length field with a huge (or off-by-one) value
      auto fields = length_fields(b);
      if (fields.empty()) break;
      auto [at, width] = fields[pick(fields.size() - 1)];
      if (at + width > b.size()) break;
      static constexpr std::uint32_t values[] = {0xffffffff, 0x7fffffff, 0x80000000, 0x00100001,
                                                 0x00010001, 0xffff, 0x0400, 0x0401, 0};
      std::uint32_t v = values[pick(std::size(values) - 1)];
      if (pick(3) == 0) v = static_cast<std::uint32_t>(b.size() - at - width + pick(2)) - 1;
      for (int i = 0; i < width; ++i)
        b[at + i] = static_cast<std::uint8_t>(v >> (8 * (width - 1 - i)));
      break;
    }
    default: {  // change the opcode
      if (!b.empty()) b[0] = byte();
      break;
    }
  }
}

TEST(MalformedMessages, VectorsAreThere) {
  auto vectors = load_vectors();
  EXPECT_GE(vectors.size(), 12u) << "expected the wire vectors in " << vector_dir;
}

TEST(MalformedMessages, EveryTruncationOfEveryVector) {
  for (const auto& v : load_vectors()) {
    for (std::size_t n = 0; n <= v.bytes.size(); ++n) {
      byte_vector cut(v.bytes.begin(), v.bytes.begin() + static_cast<std::ptrdiff_t>(n));
      ASSERT_TRUE(decoder_holds_contract(cut)) << v.name << " cut to " << n << " bytes";
    }
  }
}

TEST(MalformedMessages, SeededRandomMutationsOfEveryVector) {
  const auto vectors = load_vectors();
  ASSERT_FALSE(vectors.empty());
  decode_limits tight;  // small limits exercise the too_large paths with small inputs
  tight.max_text = 8;
  tight.max_value = 16;
  tight.max_payload = 32;
  int decoded_ok = 0, total = 0;
  for (std::size_t vi = 0; vi < vectors.size(); ++vi) {
    for (int i = 0; i < mutations_per_vector; ++i) {
      const std::uint64_t seed = base_seed + vi * 1'000'003 + static_cast<std::uint64_t>(i);
      std::mt19937_64 rng(seed);
      byte_vector b = vectors[vi].bytes;
      const int rounds = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < rounds; ++k) mutate(b, rng);
      const bool use_tight = rng() % 4 == 0;
      ASSERT_TRUE(decoder_holds_contract(b, use_tight ? tight : decode_limits{}))
          << "vector " << vectors[vi].name << ", seed " << seed << ", input " << to_hex(b);
      message m;
      decoded_ok += !decode(b, m);
      ++total;
    }
  }
  EXPECT_GE(total, 10000);
  // The mutations must leave both outcomes common, or they test nothing.
  EXPECT_GT(decoded_ok, total / 20);
  EXPECT_LT(decoded_ok, total - total / 20);
}

TEST(MalformedMessages, HugeLengthsNeverAllocate) {
  // A 55-byte STORE that claims a 4 GiB value, and a SHOUT and NACK with maximal lengths: each is
  // refused from the header alone.
  byte_vector st = {0x09, 0, 0, 0, 1};
  st.resize(5 + 32 + 8 + 4, 0);
  st.push_back(0);
  for (int i = 0; i < 4; ++i) st.push_back(0xff);
  EXPECT_EQ(decode(st, *std::make_unique<message>()), errc::too_large);

  byte_vector sh = {0x04, 0, 0, 0, 1};
  sh.resize(5 + 32 + 8 + 1 + 1 + 1, 0);  // through hops, scope and the level count
  for (int i = 0; i < 4; ++i) sh.push_back(0xff);
  EXPECT_EQ(decode(sh, *std::make_unique<message>()), errc::too_large);

  decode_limits generous;
  generous.max_payload = std::numeric_limits<std::size_t>::max();
  generous.max_value = std::numeric_limits<std::size_t>::max();
  generous.max_text = std::numeric_limits<std::size_t>::max();
  EXPECT_EQ(decode(st, *std::make_unique<message>(), generous), errc::truncated);
  EXPECT_EQ(decode(sh, *std::make_unique<message>(), generous), errc::truncated);
  byte_vector nk = {0x01, 0, 0, 0, 1, 3, 0, 0, 0xff, 0xff};
  EXPECT_EQ(decode(nk, *std::make_unique<message>(), generous), errc::truncated);
}

}  // namespace
}  // namespace kadnet::core::wire
