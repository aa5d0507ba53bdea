// Handshake and session-cipher costs, each next to the bare libsodium calls it is built on, so
// the overhead of kadnet's own code can be read as a ratio:
//   BM_responder_handshake / BM_handshake_primitives
//   BM_seal_64k / BM_raw_aead_seal_64k,  BM_open_64k / BM_raw_aead_open_64k
// The "64k" cases all use 65,000-byte plaintexts: the largest round size that fits one packet
// (65,535-byte payload minus 24 bytes of counter and tag), for ours and for raw libsodium alike;
// they and the raw cases use ChaCha20-Poly1305. BM_seal_open_1100/<aead> seals and opens one
// datagram-sized packet with each AEAD a session can choose (PROTOCOL.md 3.4).
#include <array>
#include <optional>
#include <vector>

#include <benchmark/benchmark.h>
#include <sodium.h>

#include "kadnet/core/crypto/cookie_jar.hpp"
#include "kadnet/core/crypto/handshake.hpp"
#include "kadnet/core/crypto/session_cipher.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/core/wire/packet.hpp"

namespace {

using namespace kadnet;
using namespace kadnet::core;
using namespace kadnet::core::crypto;

constexpr std::size_t bulk_size = 65'000;
static_assert(bulk_size <= packet_sealer::max_plaintext_for(wire::max_stream_payload));

const std::array<std::uint8_t, 18> peer_address = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
                                                   192, 0, 2, 1, 0x0f, 0xa0};

// One responder on_hello per iteration: verify + key pair + key exchange + sign, plus decoding
// and building the packets. The initiators' hellos are made before timing starts.
void BM_responder_handshake(benchmark::State& state) {
  const identity bob = identity::generate();
  responder r(bob, {});
  cookie_jar jar;
  std::vector<identity> initiators;
  std::vector<byte_vector> hellos;
  for (int i = 0; i < 64; ++i) {
    initiators.push_back(identity::generate());
    initiator_handshake h(initiators.back(), {});
    hellos.push_back(h.first_packet());
  }
  std::vector<wire::packet_view> views(hellos.size());
  for (std::size_t i = 0; i < hellos.size(); ++i) wire::parse_packet(hellos[i], views[i]);

  std::size_t i = 0;
  for (auto _ : state) {
    auto response = r.on_hello(views[i++ % views.size()], peer_address, 0, false, jar);
    if (!response.done) state.SkipWithError("handshake failed");
    benchmark::DoNotOptimize(response);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_responder_handshake);

// The libsodium calls the responder makes, and nothing else.
void BM_handshake_primitives(benchmark::State& state) {
  ensure_sodium();
  std::array<std::uint8_t, crypto_sign_PUBLICKEYBYTES> ipk, rpk;
  std::array<std::uint8_t, crypto_sign_SECRETKEYBYTES> isk, rsk;
  crypto_sign_keypair(ipk.data(), isk.data());
  crypto_sign_keypair(rpk.data(), rsk.data());
  std::array<std::uint8_t, 32> eph_i_pk, eph_i_sk;
  crypto_kx_keypair(eph_i_pk.data(), eph_i_sk.data());
  // Same message sizes as the real signatures: 16 + 97 and 16 + 161 + 97 bytes.
  std::array<std::uint8_t, 113> initiator_message{};
  std::array<std::uint8_t, 274> responder_message{};
  std::array<std::uint8_t, crypto_sign_BYTES> isig, rsig;
  crypto_sign_detached(isig.data(), nullptr, initiator_message.data(), initiator_message.size(),
                       isk.data());

  for (auto _ : state) {
    std::array<std::uint8_t, 32> eph_r_pk, eph_r_sk, rx, tx;
    if (crypto_sign_verify_detached(isig.data(), initiator_message.data(),
                                    initiator_message.size(), ipk.data()) != 0)
      state.SkipWithError("verify failed");
    crypto_kx_keypair(eph_r_pk.data(), eph_r_sk.data());
    if (crypto_kx_server_session_keys(rx.data(), tx.data(), eph_r_pk.data(), eph_r_sk.data(),
                                      eph_i_pk.data()) != 0)
      state.SkipWithError("kx failed");
    crypto_sign_detached(rsig.data(), nullptr, responder_message.data(), responder_message.size(),
                         rsk.data());
    benchmark::DoNotOptimize(tx);
    benchmark::DoNotOptimize(rsig);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_handshake_primitives);

key bench_key() {
  key k;
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i * 7 + 1);
  return k;
}

void BM_seal_64k(benchmark::State& state) {
  packet_sealer sealer(bench_key(), aead::chacha20_poly1305);
  const byte_vector plaintext(bulk_size, 0x5a);
  byte_vector out;
  out.reserve(bulk_size + packet_sealer::overhead);
  for (auto _ : state) {
    out.clear();  // keeps the capacity: no allocation in the loop
    sealer.seal(wire::packet_type::stream_data, plaintext, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bulk_size));
}
BENCHMARK(BM_seal_64k);

void BM_open_64k(benchmark::State& state) {
  // A run of distinct packets (each counter opens once); a fresh opener every run lap costs a
  // 264-byte memset, noise next to 65 kB of ChaCha20-Poly1305.
  constexpr std::size_t run = 64;
  packet_sealer sealer(bench_key(), aead::chacha20_poly1305);
  const byte_vector plaintext(bulk_size, 0x5a);
  std::vector<byte_vector> packets(run);
  std::vector<wire::packet_view> views(run);
  for (std::size_t i = 0; i < run; ++i) {
    sealer.seal(wire::packet_type::stream_data, plaintext, packets[i]);
    wire::parse_packet(packets[i], views[i]);
  }
  std::optional<packet_opener> opener;
  byte_vector out;
  out.reserve(bulk_size);
  std::size_t i = 0;
  for (auto _ : state) {
    if (i % run == 0) opener.emplace(bench_key(), aead::chacha20_poly1305);
    if (opener->open(views[i++ % run], out)) state.SkipWithError("open failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bulk_size));
}
BENCHMARK(BM_open_64k);

// One 1,100-byte plaintext sealed and opened per iteration, as a datagram session does on each
// side: in order, so the opener's replay window stays compact.
void BM_seal_open_1100(benchmark::State& state, aead cipher) {
  if (cipher == aead::aes256_gcm && !aes256_gcm_available()) {
    state.SkipWithError("no AES-NI/PCLMUL on this CPU");
    return;
  }
  constexpr std::size_t size = 1'100;
  packet_sealer sealer(bench_key(), cipher);
  packet_opener opener(bench_key(), cipher);
  const byte_vector plaintext(size, 0x5a);
  byte_vector packet, out;
  packet.reserve(size + packet_sealer::overhead);
  out.reserve(size);
  for (auto _ : state) {
    packet.clear();
    sealer.seal(wire::packet_type::reliable_data, plaintext, packet);
    wire::packet_view p;
    wire::parse_packet(packet, p);
    if (opener.open(p, out)) state.SkipWithError("open failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}
BENCHMARK_CAPTURE(BM_seal_open_1100, chacha20_poly1305, aead::chacha20_poly1305);
BENCHMARK_CAPTURE(BM_seal_open_1100, aes256_gcm, aead::aes256_gcm);

void BM_raw_aead_seal_64k(benchmark::State& state) {
  ensure_sodium();
  const key k = bench_key();
  const byte_vector plaintext(bulk_size, 0x5a);
  byte_vector ciphertext(bulk_size);
  std::array<std::uint8_t, 16> tag;
  const std::array<std::uint8_t, 4> ad = {1, 10, 0xfe, 0x00};
  std::array<std::uint8_t, 12> nonce{};
  std::uint64_t counter = 0;
  for (auto _ : state) {
    std::memcpy(nonce.data() + 4, &counter, 8);
    ++counter;
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(ciphertext.data(), tag.data(), nullptr,
                                                       plaintext.data(), plaintext.size(),
                                                       ad.data(), ad.size(), nullptr,
                                                       nonce.data(), k.data());
    benchmark::DoNotOptimize(ciphertext.data());
    benchmark::DoNotOptimize(tag);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bulk_size));
}
BENCHMARK(BM_raw_aead_seal_64k);

void BM_raw_aead_open_64k(benchmark::State& state) {
  ensure_sodium();
  const key k = bench_key();
  const byte_vector plaintext(bulk_size, 0x5a);
  byte_vector ciphertext(bulk_size), out(bulk_size);
  std::array<std::uint8_t, 16> tag;
  const std::array<std::uint8_t, 4> ad = {1, 10, 0xfe, 0x00};
  const std::array<std::uint8_t, 12> nonce{};
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(ciphertext.data(), tag.data(), nullptr,
                                                     plaintext.data(), plaintext.size(), ad.data(),
                                                     ad.size(), nullptr, nonce.data(), k.data());
  for (auto _ : state) {
    if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(out.data(), nullptr, ciphertext.data(),
                                                           ciphertext.size(), tag.data(),
                                                           ad.data(), ad.size(), nonce.data(),
                                                           k.data()) != 0)
      state.SkipWithError("open failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bulk_size));
}
BENCHMARK(BM_raw_aead_open_64k);

}  // namespace
