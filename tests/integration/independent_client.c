/* independent_client.c: a kadnet wire client written from docs/PROTOCOL.md alone.
 *
 * It proves that the protocol document suffices: it uses only libsodium and POSIX sockets,
 * and no kadnet code. Usage:
 *
 *   independent_client HOST PORT [VECTORS_DIR]
 *
 * Steps (each printed; any failure prints "FAIL [step]: why" and exits 1):
 *   1. test vectors: rebuild the documented vectors from the inputs in their headers with
 *      libsodium and compare with the bytes (also with VECTORS_DIR/<name>.txt when given);
 *   2. version refuse: send a hello with outer version 2, expect a refuse (3.5) with reason 1;
 *   3. handshake (3.1-3.3): hello, cookie challenge(s), responder hello check, session keys (3.2);
 *   4. PING (5.3) in an envelope (4.2), one fragment (4.1), sealed (3.4) in stream_data;
 *      answer the node's SET_CONNECTION_OPT requests with NACK option_refused (5.2, 5.12, 6);
 *      wait for the ACK of the PING;
 *   5. plugin opcode 64 with payload "independent"; expect ACK data "independent".
 *   6. where this CPU has AES-256-GCM: steps 3-5 again on a second connection whose hello
 *      offers it (flags bit 1, 3.1); the session seals with it if the node's hello has bit 1 too
 *      (3.4), and the client says which ("sealing with AES-256-GCM" / "...ChaCha20-Poly1305").
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- constants (PROTOCOL.md) */

enum {
  PROTO_VERSION = 1,                       /* section 2 */
  HDR = 4,                                 /* version | type | length(2) */
  PT_HELLO = 0, PT_COOKIE = 1, PT_REFUSE = 9, PT_STREAM_DATA = 10,
  HELLO_LEN = 161, HELLO_SIGNED = 97,      /* section 3.1 */
  FLAG_DYNAMIC_IP = 0x01, FLAG_AES_GCM = 0x02,
  COOKIE_LEN = 32,
  MAX_CHALLENGES = 2,                      /* section 3.3 */
  COUNTER_LEN = 8, TAG_LEN = 16,           /* section 3.4 */
  REPLAY_WINDOW = 2048,
  FIN = 0x01,                              /* section 4.1 */
  MAX_MESSAGE = 1024 * 1024 + 1024,
  ENC_NONE = 0xFF,                         /* section 4.2 */
  OP_ACK = 0, OP_NACK = 1, OP_PING = 2, OP_SET_OPT = 3, OP_SHOUT = 4, OP_SPEAK = 5,
  OP_PLUGIN_ECHO = 64,
  NACK_UNSUPPORTED_OPCODE = 1, NACK_BAD_REQUEST = 3, NACK_OPTION_REFUSED = 4,
  READ_TIMEOUT_S = 5,
};

static const char* step = "start";

static void fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FAIL [%s]: ", step);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static void info(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("[%s] ", step);
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
}

static void hex_print(const char* label, const uint8_t* p, size_t n) {
  printf("[%s] %s (%zu bytes): ", step, label, n);
  for (size_t i = 0; i < n; ++i) printf("%02x", p[i]);
  printf("\n");
  fflush(stdout);
}

static char* to_hex(const uint8_t* p, size_t n) {
  char* s = malloc(2 * n + 1);
  if (!s) fail("out of memory");
  sodium_bin2hex(s, 2 * n + 1, p, n);
  return s;
}

static void put_u16(uint8_t* p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static uint16_t get_u16(const uint8_t* p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t get_u32(const uint8_t* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

/* ---------------------------------------------------------------- growable buffer */

typedef struct {
  uint8_t* p;
  size_t n, cap;
} buf;

static void buf_reserve(buf* b, size_t extra) {
  if (b->n + extra <= b->cap) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->n + extra) cap *= 2;
  uint8_t* p = realloc(b->p, cap);
  if (!p) fail("out of memory");
  b->p = p;
  b->cap = cap;
}
static void buf_add(buf* b, const void* p, size_t n) {
  buf_reserve(b, n);
  if (n) memcpy(b->p + b->n, p, n);
  b->n += n;
}
static void buf_u8(buf* b, uint8_t v) { buf_add(b, &v, 1); }
static void buf_u16(buf* b, uint16_t v) { uint8_t t[2]; put_u16(t, v); buf_add(b, t, 2); }
static void buf_u32(buf* b, uint32_t v) { uint8_t t[4]; put_u32(t, v); buf_add(b, t, 4); }
static void buf_u64(buf* b, uint64_t v) { uint8_t t[8]; put_u64(t, v); buf_add(b, t, 8); }
static void buf_free(buf* b) { free(b->p); b->p = NULL; b->n = b->cap = 0; }

/* ---------------------------------------------------------------- test vectors */

static int vector_failures = 0;

/* Compares the built bytes with the expected hex (copied from tests/vectors/NAME.txt) and,
 * when a vectors directory is given, with the hex: line of the file itself. */
static void check_vector(const char* vectors_dir, const char* name, const buf* built,
                         const char* expected_hex) {
  char* got = to_hex(built->p, built->n);
  int ok = strcmp(got, expected_hex) == 0;
  if (!ok) {
    fprintf(stderr, "vector %s: built  %s\n", name, got);
    fprintf(stderr, "vector %s: expect %s\n", name, expected_hex);
  }
  if (vectors_dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.txt", vectors_dir, name);
    FILE* f = fopen(path, "r");
    if (!f) {
      fprintf(stderr, "vector %s: cannot open %s\n", name, path);
      ok = 0;
    } else {
      char* line = NULL;
      size_t cap = 0;
      ssize_t len;
      int found = 0;
      while ((len = getline(&line, &cap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (strncmp(line, "hex: ", 5) == 0) {
          found = 1;
          if (strcmp(line + 5, got) != 0) {
            fprintf(stderr, "vector %s: file %s has %s\n", name, path, line + 5);
            ok = 0;
          }
        }
      }
      if (!found) {
        fprintf(stderr, "vector %s: no hex: line in %s\n", name, path);
        ok = 0;
      }
      free(line);
      fclose(f);
    }
  }
  printf("[%s] vector %-18s %zu bytes %s\n", step, name, built->n, ok ? "ok" : "MISMATCH");
  if (!ok) ++vector_failures;
  free(got);
}

static void check_bytes(const char* what, const uint8_t* got, size_t n, const char* expected_hex) {
  char* h = to_hex(got, n);
  if (strcmp(h, expected_hex) != 0) {
    fprintf(stderr, "%s: got %s, document says %s\n", what, h, expected_hex);
    ++vector_failures;
  } else {
    printf("[%s] %s ok\n", step, what);
  }
  free(h);
}

static void seed_identity(uint8_t byte, uint8_t pk[32], uint8_t sk[64]) {
  uint8_t seed[crypto_sign_SEEDBYTES];
  memset(seed, byte, sizeof seed);
  crypto_sign_seed_keypair(pk, sk, seed);
}

static void blake2b256(uint8_t out[32], const void* in, size_t n) {
  crypto_generichash(out, 32, in, n, NULL, 0);
}

static void check_vectors(const char* dir) {
  step = "vectors";
  uint8_t alice_pk[32], alice_sk[64], bob_pk[32], bob_sk[64];
  seed_identity(0x01, alice_pk, alice_sk);
  seed_identity(0x02, bob_pk, bob_sk);
  check_bytes("alice node id", alice_pk, 32,
              "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c");
  check_bytes("bob node id", bob_pk, 32,
              "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394");
  uint8_t key[32];
  blake2b256(key, "kadnet/vector/key", strlen("kadnet/vector/key"));
  check_bytes("BLAKE2b-256(\"kadnet/vector/key\")", key, 32,
              "182c37d2eda565b2f4eb8d4028670a2d6dee44a49e3f58e04dfb814c0e4863b0");

  /* packet_hello: outer packet with alice's first hello (3.1, 2). */
  {
    uint8_t eph_sk[32], eph_pk[32];
    memset(eph_sk, 0x02, 32);
    if (crypto_scalarmult_base(eph_pk, eph_sk) != 0) fail("crypto_scalarmult_base");
    check_bytes("vector ephemeral public key", eph_pk, 32,
                "ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d59");
    uint8_t hello[HELLO_LEN];
    memcpy(hello, eph_pk, 32);
    memcpy(hello + 32, alice_pk, 32);
    hello[64] = 0; /* dynamic ip */
    memset(hello + 65, 0, 32);
    buf signed_bytes = {0};
    buf_add(&signed_bytes, "kadnet-hello-1-i", 16);
    buf_add(&signed_bytes, hello, HELLO_SIGNED);
    crypto_sign_detached(hello + HELLO_SIGNED, NULL, signed_bytes.p, signed_bytes.n, alice_sk);
    if (crypto_sign_verify_detached(hello + HELLO_SIGNED, signed_bytes.p, signed_bytes.n,
                                    alice_pk) != 0)
      fail("own hello signature does not verify");
    buf_free(&signed_bytes);
    buf pkt = {0};
    buf_u8(&pkt, PROTO_VERSION);
    buf_u8(&pkt, PT_HELLO);
    buf_u16(&pkt, HELLO_LEN);
    buf_add(&pkt, hello, HELLO_LEN);
    check_vector(dir, "packet_hello", &pkt,
                 "010000a1ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d598a88e3dd"
                 "7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c000000000000000000000000"
                 "0000000000000000000000000000000000000000008deb3f03004e96434c62e516e18e0e222c66c4"
                 "71fffa67784845668d40cf4f57ce4bfeb1660b8c927ed4d4f3c350b365dfd6485f97ac88b86713da"
                 "0da73e4c01");
    buf_free(&pkt);
  }
  /* ping (5.3) */
  {
    buf m = {0};
    buf_u8(&m, OP_PING);
    buf_u32(&m, 0x01020304);
    check_vector(dir, "ping", &m, "0201020304");
    buf_free(&m);
  }
  /* set_connection_opt (5.4) */
  {
    buf m = {0};
    buf_u8(&m, OP_SET_OPT);
    buf_u32(&m, 3);
    buf_u8(&m, 1);
    buf_u8(&m, 5);
    check_vector(dir, "set_connection_opt", &m, "03000000030105");
    buf_free(&m);
  }
  /* nack (5.2) */
  {
    const char* text = "setting 9 is unknown \xe2\x80\x94 this node speaks 0 to 5";
    buf m = {0};
    buf_u8(&m, OP_NACK);
    buf_u32(&m, 0x103);
    buf_u8(&m, OP_SET_OPT);
    buf_u16(&m, NACK_OPTION_REFUSED);
    buf_u16(&m, (uint16_t)strlen(text));
    buf_add(&m, text, strlen(text));
    buf_u8(&m, 0);
    buf_u8(&m, 9);
    if (strlen(text) != 48) fail("nack vector text is %zu bytes, header says 48", strlen(text));
    check_vector(dir, "nack", &m,
                 "0100000103030004003073657474696e67203920697320756e6b6e6f776e20e28094207468697320"
                 "6e6f646520737065616b73203020746f20350009");
    buf_free(&m);
  }
  /* whisper (5.7) and the ack (5.1) answering it */
  {
    const char* payload = "just for you, bob";
    buf m = {0};
    buf_u8(&m, 6);
    buf_u32(&m, 6);
    buf_add(&m, alice_pk, 32);
    buf_add(&m, bob_pk, 32);
    buf_u8(&m, 0);
    buf_add(&m, payload, strlen(payload));
    check_vector(dir, "whisper", &m,
                 "06000000068a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c813977"
                 "0ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394006a75737420666f722079"
                 "6f752c20626f62");
    buf_free(&m);
    uint8_t h[32];
    blake2b256(h, payload, strlen(payload));
    buf a = {0};
    buf_u8(&a, OP_ACK);
    buf_u32(&a, 6);
    buf_u8(&a, 6);
    buf_add(&a, h, 32);
    check_vector(dir, "ack", &a,
                 "0000000006062432ec24a80dfe891634526e9657d4aa0bc5f97c6d29099d5c48d87630afb51f");
    buf_free(&a);
  }
  /* shout (5.5) */
  {
    const char* payload = "kadnet shout vector";
    uint32_t plen = (uint32_t)strlen(payload);
    buf s = {0};
    buf_add(&s, "kadnet-shout-1", 14);
    buf_add(&s, alice_pk, 32);
    buf_u64(&s, 42);
    buf_u32(&s, plen);
    buf_add(&s, payload, plen);
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, s.p, s.n, alice_sk);
    buf_free(&s);
    buf m = {0};
    buf_u8(&m, OP_SHOUT);
    buf_u32(&m, 4);
    buf_add(&m, alice_pk, 32);
    buf_u64(&m, 42);
    buf_u8(&m, 3);  /* hops */
    buf_u8(&m, 17); /* scope */
    buf_u8(&m, 2);  /* also levels: 4 and 9 */
    buf_u8(&m, 4);
    buf_u8(&m, 9);
    buf_u32(&m, plen);
    buf_add(&m, payload, plen);
    buf_add(&m, sig, 64);
    check_vector(dir, "shout", &m,
                 "04000000048a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c000000"
                 "000000002a0311020409000000136b61646e65742073686f757420766563746f72f73138ad4de9d2"
                 "d0229669e391f8cad0f1e1b23a9ffca3a181b8361165160b116f9e51c89ad6a1a99eed8a79fa87a8"
                 "ba427a337f8636cc332d48630c31ef6d01");
    buf_free(&m);
  }
  /* speak (5.6) */
  {
    const char* payload = "hello, direct peers";
    buf m = {0};
    buf_u8(&m, OP_SPEAK);
    buf_u32(&m, 5);
    buf_add(&m, alice_pk, 32);
    buf_u64(&m, 7);
    buf_add(&m, payload, strlen(payload));
    check_vector(dir, "speak", &m,
                 "05000000058a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c000000"
                 "000000000768656c6c6f2c20646972656374207065657273");
    buf_free(&m);
  }
  /* find_node (5.8), find_value (5.9) */
  {
    buf m = {0};
    buf_u8(&m, 7);
    buf_u32(&m, 7);
    buf_add(&m, bob_pk, 32);
    check_vector(dir, "find_node", &m,
                 "07000000078139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394");
    buf_free(&m);
    buf_u8(&m, 8);
    buf_u32(&m, 8);
    buf_add(&m, key, 32);
    check_vector(dir, "find_value", &m,
                 "0800000008182c37d2eda565b2f4eb8d4028670a2d6dee44a49e3f58e04dfb814c0e4863b0");
    buf_free(&m);
  }
  /* store_plain, store_signed (5.10) */
  {
    const char* value = "plain value";
    buf m = {0};
    buf_u8(&m, 9);
    buf_u32(&m, 9);
    buf_add(&m, key, 32);
    buf_u64(&m, 1);
    buf_u32(&m, 3600);
    buf_u8(&m, 0);
    buf_u32(&m, (uint32_t)strlen(value));
    buf_add(&m, value, strlen(value));
    check_vector(dir, "store_plain", &m,
                 "0900000009182c37d2eda565b2f4eb8d4028670a2d6dee44a49e3f58e04dfb814c0e4863b0000000"
                 "000000000100000e10000000000b706c61696e2076616c7565");
    buf_free(&m);

    value = "signed value";
    uint32_t vlen = (uint32_t)strlen(value);
    buf s = {0};
    buf_add(&s, "kadnet-store-1", 14);
    buf_add(&s, key, 32);
    buf_u64(&s, 2);
    buf_u32(&s, vlen);
    buf_add(&s, value, vlen);
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, s.p, s.n, alice_sk);
    buf_free(&s);
    buf_u8(&m, 9);
    buf_u32(&m, 0x109);
    buf_add(&m, key, 32);
    buf_u64(&m, 2);
    buf_u32(&m, 86400);
    buf_u8(&m, 1);
    buf_add(&m, alice_pk, 32);
    buf_add(&m, sig, 64);
    buf_u32(&m, vlen);
    buf_add(&m, value, vlen);
    check_vector(dir, "store_signed", &m,
                 "0900000109182c37d2eda565b2f4eb8d4028670a2d6dee44a49e3f58e04dfb814c0e4863b0000000"
                 "000000000200015180018a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f"
                 "6f5caa46aa4900045b22d9ed5a309c697a093d1f1097c17c02ca2af8d9aad9e8256574479a3c06ed"
                 "63c341c64cab838c2fdc139d35fd8e66942fd3489b9f4c616f030000000c7369676e65642076616c"
                 "7565");
    buf_free(&m);
  }
  /* store_cas_accept (5.10 flags bit 1, 8.6): a compare-and-swap accept */
  {
    const char* value = "counter=3";
    uint32_t vlen = (uint32_t)strlen(value);
    uint8_t proposal[16];
    memset(proposal, 0x42, sizeof proposal);
    buf m = {0};
    buf_u8(&m, 9);
    buf_u32(&m, 0x209);
    buf_add(&m, key, 32);
    buf_u64(&m, 3);
    buf_u32(&m, 86400);
    buf_u8(&m, 2);            /* flags: consensus */
    buf_u8(&m, 2);            /* phase: accept */
    buf_u64(&m, 2);           /* ballot round */
    buf_add(&m, alice_pk, 32); /* ballot proposer */
    buf_add(&m, proposal, 16);
    buf_u32(&m, vlen);
    buf_add(&m, value, vlen);
    check_vector(dir, "store_cas_accept", &m,
                 "0900000209182c37d2eda565b2f4eb8d4028670a2d6dee44a49e3f58e04dfb814c0e4863b0000000"
                 "000000000300015180020200000000000000028a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d"
                 "94121bf3748801b40f6f5c4242424242424242424242424242424200000009636f756e7465723d33");
    buf_free(&m);
  }
  /* plugin_call (5.11) */
  {
    const char* payload = "{\"method\":\"echo\"}";
    buf m = {0};
    buf_u8(&m, 64);
    buf_u32(&m, 0x40);
    buf_add(&m, payload, strlen(payload));
    check_vector(dir, "plugin_call", &m, "40000000407b226d6574686f64223a226563686f227d");
    buf_free(&m);
  }
  if (vector_failures) fail("%d test vector check(s) did not match the document", vector_failures);
  info("all test vectors match");
}

/* ---------------------------------------------------------------- socket I/O */

static int connect_to(const char* host, const char* port) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) fail("getaddrinfo(%s, %s): %s", host, port, gai_strerror(rc));
  int fd = -1;
  for (struct addrinfo* ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) continue;
    struct timeval tv = {READ_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) fail("cannot connect to %s:%s: %s", host, port, strerror(errno));
  return fd;
}

static void write_all(int fd, const uint8_t* p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("send: %s", strerror(errno));
    }
    p += w;
    n -= (size_t)w;
  }
}

/* Returns 0 on success, -1 on orderly close before any byte (only if allow_eof). */
static int read_exact(int fd, uint8_t* p, size_t n, int allow_eof) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, p + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        fail("no data from the node within %d s (read timeout)", READ_TIMEOUT_S);
      fail("recv: %s", strerror(errno));
    }
    if (r == 0) {
      if (allow_eof && got == 0) return -1;
      fail("the node closed the connection (after %zu of %zu bytes)", got, n);
    }
    got += (size_t)r;
  }
  return 0;
}

typedef struct {
  uint8_t hdr[HDR];
  uint8_t version, type;
  uint16_t length;
  uint8_t payload[65535];
} packet;

static int read_packet(int fd, packet* pk, int allow_eof) {
  if (read_exact(fd, pk->hdr, HDR, allow_eof) < 0) return -1;
  pk->version = pk->hdr[0];
  pk->type = pk->hdr[1];
  pk->length = get_u16(pk->hdr + 2);
  read_exact(fd, pk->payload, pk->length, 0);
  return 0;
}

static void send_packet(int fd, uint8_t version, uint8_t type, const uint8_t* payload,
                        size_t n) {
  if (n > 65535) fail("packet payload of %zu bytes exceeds 65,535", n);
  uint8_t hdr[HDR] = {version, type};
  put_u16(hdr + 2, (uint16_t)n);
  buf b = {0};
  buf_add(&b, hdr, HDR);
  buf_add(&b, payload, n);
  write_all(fd, b.p, b.n);
  buf_free(&b);
}

/* refuse (3.5): reason | lowest | highest | text length | text */
static void show_refuse(const packet* pk, int expected) {
  const uint8_t* p = pk->payload;
  if (pk->length < 4) fail("refuse packet of %u bytes is shorter than its 4-byte header", pk->length);
  unsigned tl = p[3];
  if (pk->length != 4u + tl)
    fail("refuse packet length %u does not match text length %u", pk->length, tl);
  const char* reasons[] = {"?", "version mismatch", "overloaded", "identity"};
  printf("[%s] refuse: outer version %u, reason %u (%s), versions %u to %u, text \"%.*s\"\n",
         step, pk->version, p[0], p[0] <= 3 ? reasons[p[0]] : "unknown", p[1], p[2], (int)tl,
         (const char*)p + 4);
  fflush(stdout);
  if (!expected) fail("the node refused the session (reason %u): %.*s", p[0], (int)tl, p + 4);
}

/* ---------------------------------------------------------------- session */

typedef struct {
  int fd;
  uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
  uint64_t send_counter;
  int aes_gcm; /* both hellos had flags bit 1: AES-256-GCM, else ChaCha20-Poly1305 (3.4) */
  /* receive window (3.4) */
  int any_accepted;
  uint64_t highest;
  uint8_t seen[4096 / 8]; /* bit (counter % 4096) for counters in [highest - 2048, highest] */
  uint64_t dropped;
  /* reassembly (4.1) */
  buf partial;
  uint32_t next_id;
} session;

static void seen_set(session* s, uint64_t c, int v) {
  unsigned i = (unsigned)(c % 4096);
  if (v) s->seen[i / 8] |= (uint8_t)(1u << (i % 8));
  else s->seen[i / 8] &= (uint8_t)~(1u << (i % 8));
}
static int seen_get(const session* s, uint64_t c) {
  unsigned i = (unsigned)(c % 4096);
  return (s->seen[i / 8] >> (i % 8)) & 1;
}

static void nonce_of(uint8_t nonce[12], const uint8_t counter_be[8]) {
  memset(nonce, 0, 4);
  memcpy(nonce + 4, counter_be, 8);
}

/* Seals plaintext into a packet of type `type` (3.4) and sends it. */
static void send_sealed(session* s, uint8_t type, const uint8_t* pt, size_t n) {
  size_t len = COUNTER_LEN + n + TAG_LEN;
  if (len > 65535) fail("sealed packet too long");
  uint8_t hdr[HDR] = {PROTO_VERSION, type};
  put_u16(hdr + 2, (uint16_t)len);
  uint8_t* payload = malloc(len);
  if (!payload) fail("out of memory");
  put_u64(payload, s->send_counter);
  uint8_t nonce[12];
  nonce_of(nonce, payload);
  unsigned long long clen = 0;
  if (s->aes_gcm)
    crypto_aead_aes256gcm_encrypt(payload + COUNTER_LEN, &clen, pt, n, hdr, HDR, NULL, nonce,
                                  s->tx);
  else
    crypto_aead_chacha20poly1305_ietf_encrypt(payload + COUNTER_LEN, &clen, pt, n, hdr, HDR, NULL,
                                              nonce, s->tx);
  if (clen != n + TAG_LEN) fail("unexpected ciphertext length");
  s->send_counter++;
  buf b = {0};
  buf_add(&b, hdr, HDR);
  buf_add(&b, payload, len);
  write_all(s->fd, b.p, b.n);
  buf_free(&b);
  free(payload);
}

/* Sends one opcode message: envelope FF ‖ message (4.2), one fragment 01 ‖ envelope (4.1). */
static void send_message(session* s, const buf* msg) {
  buf frag = {0};
  buf_u8(&frag, FIN);
  buf_u8(&frag, ENC_NONE);
  buf_add(&frag, msg->p, msg->n);
  send_sealed(s, PT_STREAM_DATA, frag.p, frag.n);
  buf_free(&frag);
}

typedef struct {
  uint8_t opcode;
  uint32_t id;
  const uint8_t* fields;
  size_t fields_len;
} message;

/* Reads packets until one whole message has been reassembled; returns its bytes (the opcode
 * message, envelope removed) in *out. */
static void read_message(session* s, buf* out) {
  packet* pk = malloc(sizeof *pk);
  if (!pk) fail("out of memory");
  for (;;) {
    read_packet(s->fd, pk, 0);
    if (pk->type == PT_REFUSE) show_refuse(pk, 0);
    if (pk->version != PROTO_VERSION)
      fail("packet with outer version %u (type %u) on a version-1 session", pk->version, pk->type);
    if (pk->type != PT_STREAM_DATA) {
      hex_print("unexpected packet header", pk->hdr, HDR);
      fail("unexpected packet type %u after the handshake (TCP carries stream_data, type 10)",
           pk->type);
    }
    if (pk->length < COUNTER_LEN + TAG_LEN)
      fail("sealed packet of %u bytes is shorter than counter + tag", pk->length);
    uint64_t c = get_u64(pk->payload);
    /* replay rules (3.4), checked before and recorded only after authentication */
    if (s->any_accepted) {
      if (c <= s->highest && (s->highest - c > REPLAY_WINDOW || seen_get(s, c))) {
        info("dropped replayed packet, counter %llu (highest %llu)", (unsigned long long)c,
             (unsigned long long)s->highest);
        if (++s->dropped > 16) fail("too many replayed packets");
        continue;
      }
    }
    uint8_t nonce[12];
    nonce_of(nonce, pk->payload);
    size_t clen = pk->length - COUNTER_LEN;
    uint8_t* pt = malloc(clen);
    if (!pt) fail("out of memory");
    unsigned long long ptlen = 0;
    int rc = s->aes_gcm
                 ? crypto_aead_aes256gcm_decrypt(pt, &ptlen, NULL, pk->payload + COUNTER_LEN, clen,
                                                 pk->hdr, HDR, nonce, s->rx)
                 : crypto_aead_chacha20poly1305_ietf_decrypt(pt, &ptlen, NULL,
                                                             pk->payload + COUNTER_LEN, clen,
                                                             pk->hdr, HDR, nonce, s->rx);
    if (rc != 0) {
      hex_print("packet that fails authentication", pk->hdr, HDR);
      hex_print("its payload", pk->payload, pk->length);
      fail("sealed packet with counter %llu does not authenticate under rx "
           "(on TCP every packet should; see 3.2 and 3.4)",
           (unsigned long long)c);
    }
    if (!s->any_accepted && c != 0)
      fail("the node's first sealed packet has counter %llu, 3.4 says counters start at 0",
           (unsigned long long)c);
    if (s->any_accepted && c != s->highest + 1)
      info("note: counter %llu follows %llu (not consecutive)", (unsigned long long)c,
           (unsigned long long)s->highest);
    /* record as accepted */
    if (!s->any_accepted) {
      s->any_accepted = 1;
      s->highest = c;
      memset(s->seen, 0, sizeof s->seen);
    } else if (c > s->highest) {
      uint64_t gap = c - s->highest;
      if (gap >= 4096) memset(s->seen, 0, sizeof s->seen);
      else
        for (uint64_t k = s->highest + 1; k <= c; ++k) seen_set(s, k, 0);
      s->highest = c;
    }
    seen_set(s, c, 1);

    /* fragment (4.1) */
    if (ptlen < 1) fail("stream_data plaintext is empty (no flags byte)");
    uint8_t flags = pt[0];
    if (flags & ~FIN) {
      hex_print("plaintext", pt, (size_t)ptlen);
      fail("fragment flags 0x%02x have bits other than FIN set", flags);
    }
    if (s->partial.n + (ptlen - 1) > MAX_MESSAGE) fail("message longer than the maximum size");
    buf_add(&s->partial, pt + 1, (size_t)ptlen - 1);
    free(pt);
    if (!(flags & FIN)) continue;

    /* envelope (4.2) */
    buf env = s->partial;
    s->partial = (buf){0};
    if (env.n < 1) fail("empty envelope");
    uint8_t enc = env.p[0];
    if (enc == ENC_NONE) {
      out->n = 0;
      buf_add(out, env.p + 1, env.n - 1);
      buf_free(&env);
      free(pk);
      return;
    }
    hex_print("envelope", env.p, env.n < 64 ? env.n : 64);
    if (enc <= 5)
      fail("PROTOCOL VIOLATION: the node sent an envelope compressed with method %u, but this "
           "client ACKed no compression method (4.2, 6)",
           enc);
    fail("envelope with unknown encoding 0x%02x", enc);
  }
}

static void decode_message(const buf* m, message* out) {
  if (m->n < 5) fail("message of %zu bytes is shorter than the 5-byte header", m->n);
  out->opcode = m->p[0];
  out->id = get_u32(m->p + 1);
  out->fields = m->p + 5;
  out->fields_len = m->n - 5;
}

static int valid_utf8(const uint8_t* s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) { ++i; continue; }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (i + len > n) return 0;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    i += len;
  }
  return 1;
}

static void send_ack(session* s, uint32_t id, uint8_t req_op, const void* data, size_t n) {
  buf m = {0};
  buf_u8(&m, OP_ACK);
  buf_u32(&m, id);
  buf_u8(&m, req_op);
  buf_add(&m, data, n);
  send_message(s, &m);
  buf_free(&m);
}

static void send_nack(session* s, uint32_t id, uint8_t req_op, uint16_t code, const char* text,
                      const uint8_t* data, size_t dn) {
  buf m = {0};
  buf_u8(&m, OP_NACK);
  buf_u32(&m, id);
  buf_u8(&m, req_op);
  buf_u16(&m, code);
  buf_u16(&m, (uint16_t)strlen(text));
  buf_add(&m, text, strlen(text));
  buf_add(&m, data, dn);
  send_message(s, &m);
  buf_free(&m);
}

/* Handles a request from the node (sections 5, 6, 7). */
static void answer_request(session* s, const message* m, const buf* raw) {
  switch (m->opcode) {
    case OP_PING:
      if (m->fields_len != 0) {
        send_nack(s, m->id, m->opcode, NACK_BAD_REQUEST, "PING is exactly 5 bytes", NULL, 0);
        return;
      }
      info("node sent PING id %08x; answering ACK", m->id);
      send_ack(s, m->id, OP_PING, NULL, 0);
      return;
    case OP_SET_OPT: {
      if (m->fields_len != 2) {
        hex_print("malformed SET_CONNECTION_OPT", raw->p, raw->n);
        send_nack(s, m->id, m->opcode, NACK_BAD_REQUEST, "SET_CONNECTION_OPT is exactly 7 bytes",
                  NULL, 0);
        return;
      }
      uint8_t option = m->fields[0], setting = m->fields[1];
      info("node sent SET_CONNECTION_OPT id %08x option %u setting %u; answering NACK "
           "option_refused",
           m->id, option, setting);
      /* The data carries the refused option and setting, as the "nack" test vector does. */
      send_nack(s, m->id, OP_SET_OPT, NACK_OPTION_REFUSED,
                "independent client: no compression supported", m->fields, 2);
      return;
    }
    case OP_SHOUT:
      info("node sent SHOUT id %08x; answering ACK (this client forwards nothing)", m->id);
      send_ack(s, m->id, OP_SHOUT, NULL, 0);
      return;
    case OP_SPEAK:
      info("node sent SPEAK id %08x; answering ACK", m->id);
      send_ack(s, m->id, OP_SPEAK, NULL, 0);
      return;
    default:
      if (m->opcode >= 10 && m->opcode <= 63) {
        send_nack(s, m->id, m->opcode, NACK_UNSUPPORTED_OPCODE, "unsupported opcode", NULL, 0);
        return;
      }
      info("node sent request opcode %u id %08x; answering NACK unsupported_opcode", m->opcode,
           m->id);
      send_nack(s, m->id, m->opcode, NACK_UNSUPPORTED_OPCODE, "unsupported opcode", NULL, 0);
      return;
  }
}

/* Sends a request and waits for its ACK; returns the ACK data in *data. Requests from the node
 * that arrive meanwhile are answered. */
static void call(session* s, uint8_t opcode, const void* payload, size_t n, buf* data) {
  uint32_t id = s->next_id++;
  buf req = {0};
  buf_u8(&req, opcode);
  buf_u32(&req, id);
  buf_add(&req, payload, n);
  hex_print("request message", req.p, req.n);
  send_message(s, &req);
  buf_free(&req);
  info("sent opcode %u id %08x as counter %llu", opcode, id,
       (unsigned long long)(s->send_counter - 1));

  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  buf raw = {0};
  for (;;) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec > 3 * READ_TIMEOUT_S) fail("no reply to opcode %u in time", opcode);
    read_message(s, &raw);
    message m;
    decode_message(&raw, &m);
    hex_print("received message", raw.p, raw.n < 96 ? raw.n : 96);
    if (m.opcode == OP_ACK) {
      if (m.fields_len < 1) fail("ACK without request opcode (malformed)");
      uint8_t req_op = m.fields[0];
      if (m.id != id) {
        info("ACK for id %08x (request opcode %u) matches no request in flight; dropped", m.id,
             req_op);
        continue;
      }
      if (req_op != opcode)
        fail("ACK of id %08x names request opcode %u, the request was %u", m.id, req_op, opcode);
      data->n = 0;
      buf_add(data, m.fields + 1, m.fields_len - 1);
      buf_free(&raw);
      return;
    }
    if (m.opcode == OP_NACK) {
      if (m.fields_len < 5) fail("malformed NACK (shorter than its fixed fields)");
      uint8_t req_op = m.fields[0];
      uint16_t code = get_u16(m.fields + 1);
      uint16_t tl = get_u16(m.fields + 3);
      if (m.fields_len < 5u + tl) fail("malformed NACK: text length %u exceeds the message", tl);
      if (tl > 1024 || !valid_utf8(m.fields + 5, tl)) fail("malformed NACK text");
      if (m.id != id) {
        info("NACK for id %08x matches no request in flight; dropped", m.id);
        continue;
      }
      fail("the node answered opcode %u (request opcode %u) with NACK code %u: %.*s", opcode,
           req_op, code, (int)tl, (const char*)m.fields + 5);
    }
    answer_request(s, &m, &raw);
  }
}

/* ---------------------------------------------------------------- handshake */

static void build_hello(uint8_t hello[HELLO_LEN], const uint8_t eph_pk[32],
                        const uint8_t id_pk[32], const uint8_t id_sk[64], uint8_t flags,
                        const uint8_t cookie[32]) {
  memcpy(hello, eph_pk, 32);
  memcpy(hello + 32, id_pk, 32);
  hello[64] = flags;
  memcpy(hello + 65, cookie, 32);
  uint8_t msg[16 + HELLO_SIGNED];
  memcpy(msg, "kadnet-hello-1-i", 16);
  memcpy(msg + 16, hello, HELLO_SIGNED);
  crypto_sign_detached(hello + HELLO_SIGNED, NULL, msg, sizeof msg, id_sk);
}

static void version_refuse_check(const char* host, const char* port) {
  step = "version-refuse";
  int fd = connect_to(host, port);
  uint8_t id_pk[32], id_sk[64], eph_pk[32], eph_sk[32], zero[32] = {0};
  crypto_sign_keypair(id_pk, id_sk);
  crypto_kx_keypair(eph_pk, eph_sk);
  uint8_t hello[HELLO_LEN];
  build_hello(hello, eph_pk, id_pk, id_sk, FLAG_DYNAMIC_IP, zero);
  send_packet(fd, 2, PT_HELLO, hello, HELLO_LEN);
  info("sent a hello with outer version 2; section 2 says the node answers refuse reason 1");
  packet* pk = malloc(sizeof *pk);
  if (!pk) fail("out of memory");
  if (read_packet(fd, pk, 1) < 0) fail("the node closed the connection without a refuse");
  hex_print("received packet header", pk->hdr, HDR);
  if (pk->type != PT_REFUSE) fail("expected a refuse (type 9), got type %u", pk->type);
  show_refuse(pk, 1);
  if (pk->payload[0] != 1) fail("refuse reason %u, expected 1 (version mismatch)", pk->payload[0]);
  if (pk->payload[1] > 1 || pk->payload[2] < 1)
    fail("refuse says versions %u to %u, which excludes 1", pk->payload[1], pk->payload[2]);
  if (!valid_utf8(pk->payload + 4, pk->payload[3])) fail("refuse text is not valid UTF-8");
  uint8_t extra;
  ssize_t r = recv(fd, &extra, 1, 0);
  if (r > 0) fail("the node sent more bytes after the refuse instead of closing");
  info("refuse received and the connection %s", r == 0 ? "closed" : "ended");
  free(pk);
  close(fd);
}

/* With offer_aes_gcm, the hello offers AES-256-GCM (flags bit 1, 3.1). */
static void handshake(session* s, const char* host, const char* port, int offer_aes_gcm) {
  step = "connect";
  s->fd = connect_to(host, port);
  info("connected to %s:%s", host, port);

  step = "identity";
  uint8_t id_pk[32], id_sk[64], eph_pk[32], eph_sk[32];
  crypto_sign_keypair(id_pk, id_sk);
  crypto_kx_keypair(eph_pk, eph_sk);
  hex_print("own NodeId (Ed25519)", id_pk, 32);
  hex_print("own ephemeral X25519 key", eph_pk, 32);

  uint8_t cookie[COOKIE_LEN] = {0};
  uint8_t hello[HELLO_LEN];
  packet* pk = malloc(sizeof *pk);
  if (!pk) fail("out of memory");
  int challenges = 0;
  const uint8_t flags = FLAG_DYNAMIC_IP | (offer_aes_gcm ? FLAG_AES_GCM : 0);
  for (;;) {
    step = "hello";
    build_hello(hello, eph_pk, id_pk, id_sk, flags, cookie);
    send_packet(s->fd, PROTO_VERSION, PT_HELLO, hello, HELLO_LEN);
    info("sent initiator hello (161 bytes, flags 0x%02x: dynamic ip%s, %s cookie)", flags,
         offer_aes_gcm ? ", offers AES-256-GCM" : "", challenges ? "challenge" : "zero");

    step = "responder-hello";
    if (read_packet(s->fd, pk, 1) < 0) fail("the node closed the connection without answering");
    hex_print("received packet header", pk->hdr, HDR);
    if (pk->type == PT_REFUSE) show_refuse(pk, 0);
    if (pk->type == PT_COOKIE) {
      step = "cookie";
      if (pk->length != COOKIE_LEN) fail("cookie packet of %u bytes, expected 32", pk->length);
      if (sodium_is_zero(pk->payload, COOKIE_LEN)) fail("cookie challenge with an all-zero cookie");
      if (++challenges > MAX_CHALLENGES)
        fail("more than %d cookie challenges in one handshake", MAX_CHALLENGES);
      hex_print("cookie challenge", pk->payload, COOKIE_LEN);
      memcpy(cookie, pk->payload, COOKIE_LEN);
      continue;
    }
    if (pk->version != PROTO_VERSION) fail("responder hello with outer version %u", pk->version);
    if (pk->type != PT_HELLO) fail("expected hello, cookie or refuse; got packet type %u", pk->type);
    if (pk->length != HELLO_LEN) fail("responder hello of %u bytes, expected 161", pk->length);
    break;
  }
  const uint8_t* rh = pk->payload;
  hex_print("responder hello", rh, HELLO_LEN);
  if (rh[64] & ~(FLAG_DYNAMIC_IP | FLAG_AES_GCM))
    fail("responder hello flags 0x%02x have a bit other than 0 and 1 set (3.1)", rh[64]);
  if ((rh[64] & FLAG_AES_GCM) && !offer_aes_gcm)
    fail("responder hello has flags bit 1 (AES-256-GCM) though ours did not (3.1)");
  s->aes_gcm = offer_aes_gcm && (rh[64] & FLAG_AES_GCM);
  if (memcmp(rh + 65, cookie, COOKIE_LEN) != 0)
    fail("responder hello cookie field does not repeat the initiator's cookie (3.1)");

  step = "responder-signature";
  {
    uint8_t msg[16 + HELLO_LEN + HELLO_SIGNED];
    memcpy(msg, "kadnet-hello-1-r", 16);
    memcpy(msg + 16, hello, HELLO_LEN);
    memcpy(msg + 16 + HELLO_LEN, rh, HELLO_SIGNED);
    if (crypto_sign_verify_detached(rh + HELLO_SIGNED, msg, sizeof msg, rh + 32) != 0) {
      hex_print("our hello", hello, HELLO_LEN);
      hex_print("signature", rh + HELLO_SIGNED, 64);
      fail("the responder's signature does NOT verify over \"kadnet-hello-1-r\" || initiator "
           "hello (161) || responder hello[0..97) as section 3.1 documents");
    }
  }
  hex_print("responder NodeId", rh + 32, 32);
  info("responder signature verifies");

  step = "session-keys";
  if (crypto_kx_client_session_keys(s->rx, s->tx, eph_pk, eph_sk, rh) != 0)
    fail("crypto_kx_client_session_keys failed (low-order point / all-zero shared secret)");
  sodium_memzero(eph_sk, sizeof eph_sk);
  info("derived rx/tx with crypto_kx_client_session_keys");
  info("sealing with %s (3.4)", s->aes_gcm ? "AES-256-GCM" : "ChaCha20-Poly1305");
  free(pk);
}

/* Steps 3-5 on a fresh connection. */
static void ping_and_plugin(const char* host, const char* port, int offer_aes_gcm) {
  session s;
  memset(&s, 0, sizeof s);
  randombytes_buf(&s.next_id, sizeof s.next_id);
  handshake(&s, host, port, offer_aes_gcm);

  step = "ping";
  buf data = {0};
  call(&s, OP_PING, NULL, 0, &data);
  if (data.n != 0) fail("ACK of PING carries %zu data bytes, 5.3 says empty", data.n);
  info("ACK of PING received (request opcode 2, same id)");

  step = "plugin-64";
  const char* text = "independent";
  call(&s, OP_PLUGIN_ECHO, text, strlen(text), &data);
  if (data.n != strlen(text) || memcmp(data.p, text, data.n) != 0)
    fail("ACK data of opcode 64 is \"%.*s\", expected \"%s\"", (int)data.n, (const char*)data.p,
         text);
  info("ACK of opcode 64 echoes \"%s\"", text);
  buf_free(&data);

  shutdown(s.fd, SHUT_RDWR);
  close(s.fd);
  buf_free(&s.partial);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: %s HOST PORT [VECTORS_DIR]\n", argv[0]);
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (sodium_init() < 0) fail("sodium_init");
  const char* host = argv[1];
  const char* port = argv[2];

  check_vectors(argc == 4 ? argv[3] : NULL);
  version_refuse_check(host, port);

  ping_and_plugin(host, port, 0);
  step = "aes-gcm";
  if (crypto_aead_aes256gcm_is_available()) {
    info("this CPU has AES-256-GCM: a second session, offering it");
    ping_and_plugin(host, port, 1);
  } else {
    info("this CPU lacks AES-NI/PCLMUL (no AES-256-GCM in libsodium): no second session");
  }

  step = "done";
  info("success: handshake, PING and plugin 64 completed from PROTOCOL.md alone");
  return 0;
}
