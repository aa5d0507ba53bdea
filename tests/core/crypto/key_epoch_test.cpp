// Key epochs of sealed packets (PROTOCOL.md 3.4): the key changes every 2^23 packets, by counter.
// The sealers and openers start near an epoch boundary through their test-only factories; the
// keys of later epochs are computed here independently, with crypto_kdf_derive_from_key.
#include <numeric>

#include <gtest/gtest.h>
#include <sodium.h>

#include "kadnet/core/crypto/session_cipher.hpp"
#include "kadnet/core/errors.hpp"
#include "kadnet/core/wire/packet.hpp"
#include "tests/support/sealed_packets.hpp"

namespace kadnet::core::crypto {
namespace {

using wire::packet_type;
using testing::parse;
using testing::test_key;
using testing::counting_bytes;

constexpr std::uint64_t epoch_length = std::uint64_t{1} << 23;  // packets per key
constexpr std::uint64_t S = epoch_length;                       // the first counter of epoch 1

const key k0 = test_key(1);

// K_{e+1} from K_e, as PROTOCOL.md 3.4 says, without kadnet's code.
key next_key(const key& k, std::uint64_t next_epoch) {
  key out;
  EXPECT_EQ(crypto_kdf_derive_from_key(out.data(), out.size(), next_epoch, "kadnetep", k.data()),
            0);
  return out;
}

std::uint64_t counter_of(const byte_vector& packet) {
  std::uint64_t c = 0;
  for (std::size_t k = 0; k < 8; ++k) c = c << 8 | packet[wire::packet_header_size + k];
  return c;
}

// Opens a sealed packet with libsodium alone: nonce 4 zero bytes || counter, AD the header.
bool raw_open(const byte_vector& packet, const key& k, aead cipher) {
  std::array<std::uint8_t, 12> nonce{};
  std::copy_n(packet.begin() + wire::packet_header_size, 8, nonce.begin() + 4);
  const std::uint8_t* c = packet.data() + wire::packet_header_size + 8;
  const std::size_t clen = packet.size() - wire::packet_header_size - 8;
  byte_vector plain(clen);
  unsigned long long mlen = 0;
  const int rc =
      cipher == aead::aes256_gcm
          ? crypto_aead_aes256gcm_decrypt(plain.data(), &mlen, nullptr, c, clen, packet.data(),
                                          wire::packet_header_size, nonce.data(), k.data())
          : crypto_aead_chacha20poly1305_ietf_decrypt(plain.data(), &mlen, nullptr, c, clen,
                                                      packet.data(), wire::packet_header_size,
                                                      nonce.data(), k.data());
  return rc == 0;
}

// Seals `n` packets (plaintext = the counter's low byte, 20 bytes) starting at the sealer's
// counter.
std::vector<byte_vector> seal_n(packet_sealer& s, std::size_t n) {
  std::vector<byte_vector> out(n);
  for (auto& p : out) {
    const auto first = static_cast<std::uint8_t>(s.next_counter());
    s.seal(packet_type::stream_data, counting_bytes(20, first), p);
  }
  return out;
}

boost::system::error_code open(packet_opener& o, const byte_vector& packet) {
  byte_vector plain;
  auto ec = o.open(parse(packet), plain);
  if (!ec) {
    EXPECT_EQ(plain, counting_bytes(20, static_cast<std::uint8_t>(counter_of(packet))));
  }
  return ec;
}

const char* name_of(aead a) { return a == aead::aes256_gcm ? "Aes256Gcm" : "ChaCha20Poly1305"; }

class KeyEpochs : public ::testing::TestWithParam<aead> {
 protected:
  void SetUp() override {
    if (cipher() == aead::aes256_gcm && !aes256_gcm_available())
      GTEST_SKIP() << "this CPU lacks AES-NI/PCLMUL, which libsodium's AES-256-GCM needs";
  }
  static aead cipher() { return GetParam(); }
};

TEST_P(KeyEpochs, SealAndOpenAcrossTheBoundary) {
  auto sealer = packet_sealer::for_testing_at(k0, cipher(), S - 3);
  packet_opener opener(k0, cipher());  // a real opener from counter 0 would look the same
  const auto packets = seal_n(sealer, 6);  // S-3 .. S+2
  EXPECT_EQ(sealer.next_counter(), S + 3);
  for (std::size_t i = 0; i < packets.size(); ++i) {
    EXPECT_FALSE(open(opener, packets[i])) << "packet " << i;
    EXPECT_EQ(opener.epoch(), i < 3 ? 0u : 1u);
  }
  EXPECT_TRUE(opener.holds_previous_key());
  EXPECT_EQ(opener.heap_bytes(), sizeof(key));
}

// The key really changes at counter 2^23: K_0 seals up to S-1, K_1 from S on.
TEST_P(KeyEpochs, PacketsAfterTheBoundaryAreSealedUnderTheNextKey) {
  auto sealer = packet_sealer::for_testing_at(k0, cipher(), S - 1);
  const auto packets = seal_n(sealer, 2);
  const key k1 = next_key(k0, 1);
  EXPECT_TRUE(raw_open(packets[0], k0, cipher()));
  EXPECT_FALSE(raw_open(packets[0], k1, cipher()));
  EXPECT_FALSE(raw_open(packets[1], k0, cipher()));
  EXPECT_TRUE(raw_open(packets[1], k1, cipher()));

  // A sender that kept K_0 past the boundary is refused: packet S sealed again under K_0 with
  // libsodium (same header, counter and plaintext).
  byte_vector forged = packets[1];
  {
    std::array<std::uint8_t, 12> nonce{};
    std::copy_n(forged.begin() + wire::packet_header_size, 8, nonce.begin() + 4);
    const byte_vector plain = counting_bytes(20, static_cast<std::uint8_t>(S));
    std::uint8_t* c = forged.data() + wire::packet_header_size + 8;
    unsigned long long clen = 0;
    if (cipher() == aead::aes256_gcm)
      crypto_aead_aes256gcm_encrypt(c, &clen, plain.data(), plain.size(), forged.data(),
                                    wire::packet_header_size, nullptr, nonce.data(), k0.data());
    else
      crypto_aead_chacha20poly1305_ietf_encrypt(c, &clen, plain.data(), plain.size(),
                                                forged.data(), wire::packet_header_size, nullptr,
                                                nonce.data(), k0.data());
    ASSERT_EQ(clen, plain.size() + 16);
  }
  ASSERT_TRUE(raw_open(forged, k0, cipher()));
  auto opener = packet_opener::for_testing_after(k0, cipher(), S - 2);
  EXPECT_EQ(open(opener, forged), errc::decrypt_failed);
  EXPECT_EQ(opener.epoch(), 0u);
  EXPECT_FALSE(open(opener, packets[0]));
  EXPECT_FALSE(open(opener, packets[1]));
  EXPECT_EQ(opener.epoch(), 1u);
}

// Reordering across the boundary: packets of epoch 0 that arrive after the opener moved to
// epoch 1 still open while the window accepts them, and only once.
TEST_P(KeyEpochs, LatePacketsOfThePreviousEpochOpen) {
  auto sealer = packet_sealer::for_testing_at(k0, cipher(), S - 3);
  auto opener = packet_opener::for_testing_after(k0, cipher(), S - 4);
  const auto p = seal_n(sealer, 6);  // S-3 .. S+2
  EXPECT_FALSE(open(opener, p[0]));  // S-3
  EXPECT_FALSE(open(opener, p[3]));  // S: moves to epoch 1
  EXPECT_EQ(opener.epoch(), 1u);
  EXPECT_FALSE(open(opener, p[4]));  // S+1
  EXPECT_FALSE(open(opener, p[2]));  // S-1, late, under the kept K_0
  EXPECT_FALSE(open(opener, p[1]));  // S-2
  EXPECT_EQ(open(opener, p[1]), errc::replayed);
  EXPECT_EQ(open(opener, p[0]), errc::replayed);
  EXPECT_FALSE(open(opener, p[5]));  // S+2
  EXPECT_EQ(opener.epoch(), 1u);
}

// The kept K_0 goes once the window can no longer accept any of epoch 0.
TEST_P(KeyEpochs, PreviousKeyIsFreedOnceTheWindowHasPassedTheEpoch) {
  auto sealer = packet_sealer::for_testing_at(k0, cipher(), S - 2);
  auto opener = packet_opener::for_testing_after(k0, cipher(), S - 3);
  const auto p = seal_n(sealer, 2 + replay_window::window_size + 1);  // S-2 .. S+2048
  // S-2 and S-1 are held back; S .. S+2047 arrive.
  for (std::size_t i = 2; i < p.size() - 1; ++i) ASSERT_FALSE(open(opener, p[i])) << i;
  EXPECT_TRUE(opener.holds_previous_key());
  EXPECT_FALSE(open(opener, p[1]));  // S-1: exactly 2,048 below S+2047, still inside
  EXPECT_TRUE(opener.holds_previous_key());
  EXPECT_FALSE(open(opener, p.back()));  // S+2048: the window's floor is now S
  EXPECT_FALSE(opener.holds_previous_key());
  EXPECT_EQ(opener.heap_bytes(), opener.window().heap_bytes());
  EXPECT_EQ(open(opener, p[0]), errc::replayed);  // S-2: out of the window anyway
}

TEST_P(KeyEpochs, NoPreviousKeyKeptWhenTheEpochStartsOutsideTheWindow) {
  auto opener = packet_opener::for_testing_after(k0, cipher(), S - 1);
  auto late = packet_sealer::for_testing_at(k0, cipher(), S + replay_window::window_size);
  EXPECT_FALSE(open(opener, seal_n(late, 1)[0]));
  EXPECT_EQ(opener.epoch(), 1u);
  EXPECT_FALSE(opener.holds_previous_key());
  EXPECT_EQ(opener.heap_bytes(), opener.window().heap_bytes());  // the jump built the bitmap
}

// A forged packet claiming the next epoch fails and moves nothing: neither the epoch nor the
// window. A later genuine packet of the current epoch still opens.
TEST_P(KeyEpochs, ForgedNextEpochPacketDoesNotMoveTheOpener) {
  auto sealer = packet_sealer::for_testing_at(k0, cipher(), S - 10);
  auto opener = packet_opener::for_testing_after(k0, cipher(), S - 11);
  const auto current = seal_n(sealer, 2);  // S-10, S-9
  auto ahead = packet_sealer::for_testing_at(k0, cipher(), S + 5);
  const byte_vector genuine = seal_n(ahead, 1)[0];
  for (std::size_t at : {wire::packet_header_size + 8, genuine.size() - 1}) {
    byte_vector forged = genuine;
    forged[at] ^= 0x01;
    EXPECT_EQ(open(opener, forged), errc::decrypt_failed);
    EXPECT_EQ(opener.epoch(), 0u);
    EXPECT_EQ(opener.window().highest(), S - 11);
    EXPECT_FALSE(opener.holds_previous_key());
  }
  EXPECT_FALSE(open(opener, current[0]));
  EXPECT_FALSE(open(opener, current[1]));
  EXPECT_FALSE(open(opener, genuine));
  EXPECT_EQ(opener.epoch(), 1u);
}

TEST_P(KeyEpochs, PacketTwoEpochsAheadFails) {
  packet_opener opener(k0, cipher());
  auto two_ahead = packet_sealer::for_testing_at(k0, cipher(), 2 * S);
  EXPECT_EQ(open(opener, seal_n(two_ahead, 1)[0]), errc::decrypt_failed);
  EXPECT_EQ(opener.epoch(), 0u);
  EXPECT_FALSE(opener.window().any_accepted());
  auto one_ahead = packet_sealer::for_testing_at(k0, cipher(), S);
  EXPECT_FALSE(open(opener, seal_n(one_ahead, 1)[0]));
  EXPECT_EQ(opener.epoch(), 1u);
}

// Without the previous key (here: an opener that never held it), a packet of the previous
// epoch fails even inside the window.
TEST_P(KeyEpochs, PreviousEpochWithoutTheKeptKeyFails) {
  auto opener = packet_opener::for_testing_after(k0, cipher(), 2 * S + 5);
  auto old = packet_sealer::for_testing_at(k0, cipher(), 2 * S - 1);
  EXPECT_EQ(open(opener, seal_n(old, 1)[0]), errc::decrypt_failed);
  EXPECT_EQ(opener.window().highest(), 2 * S + 5);
}

// The sealer ratchets in place, epoch after epoch; each packet opens under the key computed
// here, and the opener follows one epoch at a time.
TEST_P(KeyEpochs, SealerKeepsWorkingForSeveralEpochs) {
  const key k1 = next_key(k0, 1), k2 = next_key(k1, 2), k3 = next_key(k2, 3), k4 = next_key(k3, 4);
  auto opener = packet_opener::for_testing_after(k0, cipher(), 2 * S - 3);
  auto sealer = packet_sealer::for_testing_at(k0, cipher(), 2 * S - 2);
  const auto a = seal_n(sealer, 4);  // 2S-2 .. 2S+1
  EXPECT_TRUE(raw_open(a[1], k1, cipher()));
  EXPECT_TRUE(raw_open(a[2], k2, cipher()));
  for (const auto& p : a) EXPECT_FALSE(open(opener, p));
  EXPECT_EQ(opener.epoch(), 2u);

  auto later = packet_sealer::for_testing_at(k0, cipher(), 3 * S - 1);
  const auto b = seal_n(later, 2);  // 3S-1, 3S
  EXPECT_TRUE(raw_open(b[0], k2, cipher()));
  EXPECT_TRUE(raw_open(b[1], k3, cipher()));
  EXPECT_FALSE(raw_open(b[1], k2, cipher()));
  for (const auto& p : b) EXPECT_FALSE(open(opener, p));
  EXPECT_EQ(opener.epoch(), 3u);

  auto latest = packet_sealer::for_testing_at(k0, cipher(), 4 * S - 1);
  const auto c = seal_n(latest, 2);  // 4S-1, 4S
  EXPECT_TRUE(raw_open(c[1], k4, cipher()));
  for (const auto& p : c) EXPECT_FALSE(open(opener, p));
  EXPECT_EQ(opener.epoch(), 4u);
}

// The kept key moves with the opener (and is wiped with it).
TEST_P(KeyEpochs, MovedOpenerKeepsThePreviousKey) {
  auto sealer = packet_sealer::for_testing_at(k0, cipher(), S - 2);
  auto opener = packet_opener::for_testing_after(k0, cipher(), S - 3);
  const auto p = seal_n(sealer, 3);  // S-2, S-1, S
  EXPECT_FALSE(open(opener, p[2]));
  packet_opener moved(std::move(opener));
  EXPECT_TRUE(moved.holds_previous_key());
  EXPECT_FALSE(open(moved, p[0]));
  packet_opener assigned(k0, cipher());
  assigned = std::move(moved);
  EXPECT_FALSE(open(assigned, p[1]));
}

INSTANTIATE_TEST_SUITE_P(Aead, KeyEpochs,
                         ::testing::Values(aead::chacha20_poly1305, aead::aes256_gcm),
                         [](const auto& info) { return std::string(name_of(info.param)); });

}  // namespace
}  // namespace kadnet::core::crypto
