// Wire test vectors (tests/vectors/<name>.txt), built here from fixed keys and fixed values.
//
// Normally each test reads its file, decodes the hex, checks that the decoder gives exactly the
// message built below, and that re-encoding gives the same bytes. With
//   KADNET_REGENERATE_VECTORS=1 kadnet_wire_tests --gtest_filter='WireVectors*'
// the files are rewritten instead (docs/PROTOCOL.md, "Test vectors"). Regenerate only when the
// protocol itself changes: an independent implementation checks itself against these files.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sodium.h>

#include "kadnet/core/bytes.hpp"
#include "kadnet/core/identity.hpp"
#include "kadnet/core/wire/message.hpp"
#include "kadnet/core/wire/packet.hpp"

namespace kadnet::core::wire {
namespace {

const std::filesystem::path vector_dir = KADNET_SOURCE_DIR "/tests/vectors";

bool regenerating() {
  const char* v = std::getenv("KADNET_REGENERATE_VECTORS");
  return v != nullptr && std::string_view(v) == "1";
}

std::array<std::uint8_t, 32> filled(std::uint8_t b) {
  std::array<std::uint8_t, 32> a;
  a.fill(b);
  return a;
}

byte_vector text_bytes(std::string_view s) {
  byte_span b = as_bytes(s);
  return byte_vector(b.begin(), b.end());
}

const identity& alice() {
  static const identity id = identity::from_seed(filled(0x01));
  return id;
}
const identity& bob() {
  static const identity id = identity::from_seed(filled(0x02));
  return id;
}
const node_id& vector_key() {
  static const node_id key = node_id::hash_of(as_bytes("kadnet/vector/key"));
  return key;
}

const std::string alice_line =
    "# alice = identity::from_seed(32 bytes 0x01), node id " + alice().id().to_hex();
const std::string bob_line =
    "# bob = identity::from_seed(32 bytes 0x02), node id " + bob().id().to_hex();
const std::string key_line =
    "# key = BLAKE2b-256(\"kadnet/vector/key\") = " + vector_key().to_hex();

// One vector: the header lines that list its inputs, the bytes, and how to check a decoding.
struct vector_case {
  std::vector<std::string> header;
  byte_vector bytes;
  std::function<void(byte_span)> check;  // decodes the file's bytes and compares
};

vector_case message_case(std::vector<std::string> header, const message& m) {
  vector_case c;
  c.header = std::move(header);
  encode(m, c.bytes);
  c.check = [m](byte_span in) {
    message decoded;
    ASSERT_FALSE(decode(in, decoded)) << "the vector does not decode";
    EXPECT_EQ(decoded, m) << "decoded message differs from the one built from the inputs";
    byte_vector again;
    encode(decoded, again);
    EXPECT_EQ(to_hex(again), to_hex(in)) << "re-encoding is not byte-exact";
  };
  return c;
}

const std::string whisper_payload = "just for you, bob";

vector_case vector_ack() {
  byte_vector hash(32);
  crypto_generichash(hash.data(), hash.size(),
                     reinterpret_cast<const unsigned char*>(whisper_payload.data()),
                     whisper_payload.size(), nullptr, 0);
  return message_case(
      {"# ACK (opcode 0) answering the WHISPER vector",
       "# message id: 0x00000006 (the WHISPER's id)", "# request_opcode: 6 (WHISPER)",
       "# data: BLAKE2b-256(\"" + whisper_payload + "\") = " + to_hex(hash)},
      make_message(6, ack{6, hash}));
}

vector_case vector_nack() {
  const std::string text = "setting 9 is unknown \xe2\x80\x94 this node speaks 0 to 5";
  return message_case(
      {"# NACK (opcode 1) refusing a SET_CONNECTION_OPT", "# message id: 0x00000103",
       "# request_opcode: 3 (SET_CONNECTION_OPT)", "# code: 4 (option_refused)",
       "# text: \"" + text + "\" (" + std::to_string(text.size()) + " bytes of UTF-8)",
       "# data: 00 09 (the refused option and setting)"},
      make_message(0x103, nack{3, nack_code::option_refused, text, {0x00, 0x09}}));
}

vector_case vector_ping() {
  return message_case({"# PING (opcode 2)", "# message id: 0x01020304"},
                      make_message(0x01020304, ping{}));
}

vector_case vector_set_connection_opt() {
  return message_case({"# SET_CONNECTION_OPT (opcode 3)", "# message id: 0x00000003",
                       "# option: 1 (preferred compression)", "# setting: 5 (zstd)"},
                      make_message(3, set_connection_opt{1, 5}));
}

vector_case vector_shout() {
  shout s;
  s.origin = alice().id();
  s.sequence = 42;
  s.hops = 3;
  s.scope = 17;
  s.also_levels = {4, 9};
  s.payload = text_bytes("kadnet shout vector");
  s.sig = alice().sign(shout_signed_bytes(s));
  return message_case(
      {"# SHOUT (opcode 4)", "# message id: 0x00000004", alice_line, "# origin: alice",
       "# sequence: 42", "# hops: 3", "# scope: 17",
       "# also levels: 2 of them: 4, 9", "# payload: \"kadnet shout vector\" (19 bytes, ASCII)",
       "# signature: Ed25519 by alice over \"kadnet-shout-1\" || origin || sequence (u64) ||",
       "#   payload_len (u32) || payload = " + to_hex(shout_signed_bytes(s))},
      make_message(4, s));
}

vector_case vector_speak() {
  return message_case(
      {"# SPEAK (opcode 5)", "# message id: 0x00000005", alice_line, "# origin: alice",
       "# sequence: 7", "# payload: \"hello, direct peers\" (19 bytes, ASCII)"},
      make_message(5, speak{alice().id(), 7, text_bytes("hello, direct peers")}));
}

vector_case vector_whisper() {
  return message_case(
      {"# WHISPER (opcode 6)", "# message id: 0x00000006", alice_line, bob_line,
       "# sender: alice", "# target: bob", "# flags: 0 (payload not sealed)",
       "# payload: \"" + whisper_payload + "\" (17 bytes, ASCII)"},
      make_message(6, whisper{alice().id(), bob().id(), false, text_bytes(whisper_payload)}));
}

vector_case vector_find_node() {
  return message_case({"# FIND_NODE (opcode 7)", "# message id: 0x00000007", bob_line,
                       "# target: bob"},
                      make_message(7, find_node{bob().id()}));
}

vector_case vector_introduce() {
  // 198.51.100.7:40000 as an IPv4-mapped transport address.
  byte_vector address = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 7, 0x9c, 0x40};
  return message_case({"# INTRODUCE (opcode 11), the introducer to the target, PROTOCOL.md 5.14",
                       "# message id: 0x0000000b", alice_line, "# peer: alice",
                       "# address: ::ffff:198.51.100.7 port 40000 (18 bytes)"},
                      make_message(11, introduce{alice().id(), address}));
}

vector_case vector_relay_data() {
  return message_case({"# RELAY (opcode 12), data from the leg's opener, PROTOCOL.md 5.15", "# message id: 0x0000000c",
                       "# circuit: 7", "# kind: 1 (data) | 0x80 (from the opener)",
                       "# data: \"sealed bytes\" (12 bytes, ASCII)"},
                      make_message(12, relay{7, relay_kind::data, true, {}, text_bytes("sealed bytes")}));
}

vector_case vector_find_value() {
  return message_case({"# FIND_VALUE (opcode 8)", "# message id: 0x00000008", key_line},
                      make_message(8, find_value{vector_key()}));
}

vector_case vector_find_value_listen() {
  return message_case({"# FIND_VALUE (opcode 8) with a listen block, PROTOCOL.md 8.10", "# message id: 0x00000108",
                       key_line, "# lease_seconds: 180", "# known_version: 3"},
                      make_message(0x108, find_value{vector_key(), listen_request{180, 3}}));
}

vector_case vector_store_notify_diff() {
  store s;
  s.key = vector_key();
  s.version = 4;
  s.ttl_seconds = 3600;
  // The diff (PROTOCOL.md 8.5): one splice at offset 8, removing 1 byte, inserting "4".
  s.value = {0x00, 0x01, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 1, '4'};
  s.patch = true;
  s.notify = true;
  return message_case(
      {"# STORE (opcode 9), a notification to a listener carrying a diff, PROTOCOL.md 8.10",
       "# message id: 0x00000309", key_line, "# version: 4", "# ttl_seconds: 3600",
       "# flags: 12 (patch + notify)",
       "# value: a diff of version 3 \"counter=3\" into \"counter=4\": 1 splice,",
       "#   offset 8, removed 1, inserted \"4\" (15 bytes)"},
      make_message(0x309, s));
}

vector_case vector_store_plain() {
  store s;
  s.key = vector_key();
  s.version = 1;
  s.ttl_seconds = 3600;
  s.value = text_bytes("plain value");
  return message_case({"# STORE (opcode 9) without owner signature", "# message id: 0x00000009",
                       key_line, "# version: 1", "# ttl_seconds: 3600", "# flags: 0",
                       "# value: \"plain value\" (11 bytes, ASCII)"},
                      make_message(9, s));
}

vector_case vector_store_signed() {
  store s;
  s.key = vector_key();
  s.version = 2;
  s.ttl_seconds = 86400;
  s.value = text_bytes("signed value");
  store_owner o;
  o.owner = alice().id();
  o.sig = alice().sign(store_signed_bytes(s));
  s.owner = o;
  return message_case(
      {"# STORE (opcode 9) signed by its owner", "# message id: 0x00000109", alice_line,
       key_line, "# version: 2", "# ttl_seconds: 86400", "# flags: 1 (owner-signed)",
       "# owner: alice", "# value: \"signed value\" (12 bytes, ASCII)",
       "# signature: Ed25519 by alice over \"kadnet-store-1\" || key || version (u64) ||",
       "#   value_len (u32) || value = " + to_hex(store_signed_bytes(s))},
      make_message(0x109, s));
}

vector_case vector_store_cas_accept() {
  store s;
  s.key = vector_key();
  s.version = 3;
  s.ttl_seconds = 86400;
  s.value = text_bytes("counter=3");
  store_consensus c;
  c.phase = consensus_phase::accept;
  c.round = 2;
  c.proposer = alice().id();
  c.proposal.fill(0x42);
  s.consensus = c;
  return message_case(
      {"# STORE (opcode 9), compare-and-swap phase 2 (accept), PROTOCOL.md 8.6",
       "# message id: 0x00000209", alice_line, key_line, "# version: 3 (the slot being decided)",
       "# ttl_seconds: 86400", "# flags: 2 (consensus)", "# phase: 2 (accept)",
       "# ballot: round 2, proposer alice", "# proposal: 16 bytes 0x42",
       "# value: \"counter=3\" (9 bytes, ASCII)"},
      make_message(0x209, s));
}

vector_case vector_plugin_call() {
  return message_case({"# plugin RPC (opcode 64)", "# message id: 0x00000040",
                       "# payload: \"{\\\"method\\\":\\\"echo\\\"}\" (17 bytes, ASCII)"},
                      make_plugin_call(64, 0x40, text_bytes("{\"method\":\"echo\"}")));
}

// The initiator's first hello (PROTOCOL.md 3.1) inside its outer packet (section 2).
vector_case vector_packet_hello() {
  const auto scalar = filled(0x02);
  std::array<std::uint8_t, 32> eph_pk;
  EXPECT_EQ(crypto_scalarmult_base(eph_pk.data(), scalar.data()), 0);
  byte_vector payload;
  byte_writer w(payload);
  w.bytes(eph_pk);
  w.bytes(alice().id().bytes());
  w.u8(0);                     // dynamic ip
  w.bytes(filled(0x00));       // cookie
  byte_vector signed_part = text_bytes("kadnet-hello-1-i");
  signed_part.insert(signed_part.end(), payload.begin(), payload.end());
  w.bytes(alice().sign(signed_part));

  vector_case c;
  c.header = {"# outer packet: version 1, type 0 (hello), length 161; the initiator's first hello",
              alice_line,
              "# ephemeral X25519 secret: 32 bytes 0x02; public = crypto_scalarmult_base = " +
                  to_hex(eph_pk),
              "# Ed25519 public key: alice", "# dynamic ip: 0", "# cookie: 32 zero bytes",
              "# signature: Ed25519 by alice over \"kadnet-hello-1-i\" || the first 97 payload bytes"};
  append_packet(c.bytes, packet_type::hello, payload);
  c.check = [payload, eph_pk](byte_span in) {
    packet_view p;
    ASSERT_FALSE(parse_packet(in, p));
    EXPECT_EQ(p.version, 1);
    EXPECT_EQ(p.type, packet_type::hello);
    ASSERT_EQ(p.payload.size(), 161u);
    EXPECT_EQ(to_hex(p.payload.first(32)), to_hex(eph_pk));
    EXPECT_EQ(to_hex(p.payload.subspan(32, 32)), alice().id().to_hex());
    signature sig;
    std::copy(p.payload.begin() + 97, p.payload.end(), sig.begin());
    byte_vector signed_part = text_bytes("kadnet-hello-1-i");
    signed_part.insert(signed_part.end(), p.payload.begin(), p.payload.begin() + 97);
    EXPECT_TRUE(identity::verify(alice().id(), signed_part, sig));
    byte_vector again;
    append_packet(again, p.type, p.payload, p.version);
    EXPECT_EQ(to_hex(again), to_hex(in));
    EXPECT_EQ(to_hex(p.payload), to_hex(payload));
  };
  return c;
}

struct named_vector {
  const char* name;
  vector_case (*make)();
};
const named_vector all_vectors[] = {
    {"ack", vector_ack},
    {"nack", vector_nack},
    {"ping", vector_ping},
    {"set_connection_opt", vector_set_connection_opt},
    {"shout", vector_shout},
    {"speak", vector_speak},
    {"whisper", vector_whisper},
    {"find_node", vector_find_node},
    {"introduce", vector_introduce},
    {"relay_data", vector_relay_data},
    {"find_value", vector_find_value},
    {"find_value_listen", vector_find_value_listen},
    {"store_notify_diff", vector_store_notify_diff},
    {"store_plain", vector_store_plain},
    {"store_signed", vector_store_signed},
    {"store_cas_accept", vector_store_cas_accept},
    {"plugin_call", vector_plugin_call},
    {"packet_hello", vector_packet_hello},
};

// Reads the `hex:` line of a vector file.
bool read_vector_hex(const std::filesystem::path& file, byte_vector& out) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("hex: ", 0) == 0) return from_hex(line.substr(5), out);
  }
  return false;
}

class WireVectors : public ::testing::TestWithParam<named_vector> {};

TEST_P(WireVectors, FileMatchesInputs) {
  const named_vector& v = GetParam();
  vector_case c = v.make();
  const auto file = vector_dir / (std::string(v.name) + ".txt");

  // The freshly built bytes must pass the same check as the file's.
  c.check(c.bytes);

  if (regenerating()) {
    std::filesystem::create_directories(vector_dir);
    std::ofstream out(file, std::ios::trunc);
    out << "# kadnet wire test vector \"" << v.name << "\" (docs/PROTOCOL.md, \"Test vectors\")\n";
    out << "# regenerate: KADNET_REGENERATE_VECTORS=1 kadnet_wire_tests "
           "--gtest_filter='All/WireVectors.*'\n";
    for (const auto& line : c.header) out << line << '\n';
    out << "# " << c.bytes.size() << " bytes\n";
    out << "hex: " << to_hex(c.bytes) << '\n';
    ASSERT_TRUE(out.good()) << "cannot write " << file;
    return;
  }

  byte_vector from_file;
  ASSERT_TRUE(read_vector_hex(file, from_file))
      << file << " is missing or has no valid 'hex:' line; regenerate with "
      << "KADNET_REGENERATE_VECTORS=1";
  c.check(from_file);
  EXPECT_EQ(to_hex(from_file), to_hex(c.bytes))
      << "the encoder no longer produces the checked-in vector " << file;
}

INSTANTIATE_TEST_SUITE_P(All, WireVectors, ::testing::ValuesIn(all_vectors),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace kadnet::core::wire
