/* The C API (bindings/c/kadnet.h) from plain C: calls, handlers, errors, the DHT, broadcast,
   files, byte streams. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include "kadnet.h"

static int failures = 0;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond, \
              kadnet_last_error());                                              \
      ++failures;                                                                \
    }                                                                            \
  } while (0)

/* Upper-cases what it is sent and counts its calls. */
static int shout_back(void *user, const char *caller_id, const uint8_t *data, size_t size, kadnet_bytes *reply) {
  char buffer[256];
  size_t i;
  ++*(int *)user;
  if (strlen(caller_id) != 64 || size > sizeof buffer) return 1;
  for (i = 0; i < size; ++i) buffer[i] = (char)(data[i] >= 'a' && data[i] <= 'z' ? data[i] - 32 : data[i]);
  return kadnet_bytes_set(reply, buffer, size);
}

static int refuse(void *user, const char *caller_id, const uint8_t *data, size_t size, kadnet_bytes *reply) {
  (void)user, (void)caller_id, (void)data, (void)size, (void)reply;
  return 7;
}

/* What the broadcast handlers saw, on the nodes' threads. POSIX threads rather than C11's
   <threads.h>: glibc's mtx_lock does not go through the pthread calls ThreadSanitizer watches
   (`./run.sh sanitize-thread`), which would then see every handler racing. */
typedef struct inbox {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int shouts, speaks, whispers, whisper_sealed;
  int files;
  char file_name[64], file_path[512], file_error[512];
} inbox;

static void count(inbox *b, int *counter) {
  pthread_mutex_lock(&b->lock);
  ++*counter;
  pthread_cond_broadcast(&b->changed);
  pthread_mutex_unlock(&b->lock);
}

static void heard_shout(void *user, const char *origin_id, const uint8_t *data, size_t size, unsigned hops) {
  inbox *b = user;
  (void)origin_id, (void)hops;
  if (size == 6 && memcmp(data, "to all", 6) == 0) count(b, &b->shouts);
}

static int heard_speak(void *user, const char *origin_id, const char *from_id, const uint8_t *data, size_t size) {
  inbox *b = user;
  (void)from_id;
  if (strlen(origin_id) == 64 && size == 10 && memcmp(data, "neighbours", 10) == 0) count(b, &b->speaks);
  return 0; /* not forwarded */
}

static void heard_whisper(void *user, const char *sender_id, const uint8_t *data, size_t size, int was_sealed) {
  inbox *b = user;
  (void)sender_id;
  if (size == 4 && memcmp(data, "psst", 4) == 0) {
    b->whisper_sealed = was_sealed;
    count(b, &b->whispers);
  }
}

static void heard_file(void *user, const char *sender_id, const char *name, const char *path, const char *error) {
  inbox *b = user;
  (void)sender_id;
  pthread_mutex_lock(&b->lock);
  snprintf(b->file_name, sizeof b->file_name, "%s", name);
  snprintf(b->file_path, sizeof b->file_path, "%s", path ? path : "");
  snprintf(b->file_error, sizeof b->file_error, "%s", error ? error : "");
  pthread_mutex_unlock(&b->lock);
  count(b, &b->files);
}

/* Waits until *counter reaches `want`, at most 20 s (a bound on the test, not a synchronisation). */
static int reaches(inbox *b, const int *counter, int want) {
  struct timespec until;
  int ok;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 20;
  pthread_mutex_lock(&b->lock);
  while (*counter < want)
    if (pthread_cond_timedwait(&b->changed, &b->lock, &until) != 0) break;
  ok = *counter >= want;
  pthread_mutex_unlock(&b->lock);
  return ok;
}

/* Calls back into its own node: the API refuses rather than wait forever. */
static int ping_self(void *user, const char *caller_id, const uint8_t *data, size_t size, kadnet_bytes *reply) {
  double rtt;
  kadnet_node *self = user;
  (void)caller_id, (void)data, (void)size, (void)reply;
  return kadnet_ping(self, kadnet_address(self, 0), &rtt) == KADNET_EINVAL ? 9 : 0;
}

/* A read on a stream that stays silent, in a thread of its own, until kadnet_stop ends it. */
typedef struct {
  kadnet_stream *stream;
  int rc;
} silent_read;

static void *read_until_stopped(void *arg) {
  silent_read *r = arg;
  char buffer[8];
  size_t n = 0;
  r->rc = kadnet_stream_read(r->stream, buffer, sizeof buffer, &n);
  return NULL;
}

static kadnet_node *start(const char *uri) {
  kadnet_options o;
  const char *listen[1];
  kadnet_node *n = NULL;
  kadnet_options_init(&o);
  listen[0] = uri;
  o.listen = listen;
  o.listen_count = uri ? 1 : 0;
  o.contacts_per_prefix = 0; /* every node here is on 127.0.0.1 */
  CHECK(kadnet_start(&o, &n) == KADNET_OK);
  return n;
}

int main(void) {
  int calls = 0;
  double rtt = -1;
  size_t peers = 0;
  inbox heard = {0};
  kadnet_bytes reply = {0};
  kadnet_node *server = start("tcp://127.0.0.1:0");
  kadnet_node *client = start("ws://127.0.0.1:0");
  kadnet_node *nodes[6];
  size_t i;
  if (!server || !client) return 1;

  CHECK(strlen(kadnet_id(server)) == 64);
  CHECK(kadnet_address_count(server) == 1);
  CHECK(strncmp(kadnet_address(server, 0), "tcp://127.0.0.1:", 16) == 0);
  CHECK(strncmp(kadnet_address(client, 0), "ws://127.0.0.1:", 15) == 0);
  CHECK(kadnet_address(server, 1) == NULL);

  /* A C handler answers calls, by URI and then by NodeId over the same session. */
  CHECK(kadnet_add_handler(server, 64, shout_back, &calls) == KADNET_OK);
  CHECK(kadnet_call(client, kadnet_address(server, 0), 64, "hello", 5, &reply) == KADNET_OK);
  CHECK(reply.size == 5 && memcmp(reply.data, "HELLO", 5) == 0);
  CHECK(kadnet_call(client, kadnet_id(server), 64, "again", 5, &reply) == KADNET_OK);
  CHECK(reply.size == 5 && memcmp(reply.data, "AGAIN", 5) == 0);
  CHECK(calls == 2);
  kadnet_bytes_free(&reply);
  CHECK(reply.data == NULL && reply.size == 0);
  CHECK(kadnet_ping(client, kadnet_id(server), &rtt) == KADNET_OK && rtt >= 0);
  {
    char seen[64];
    CHECK(kadnet_observed_address(client, seen, sizeof seen) == KADNET_OK);
    CHECK(strncmp(seen, "127.0.0.1:", 10) == 0);
    CHECK(kadnet_observed_address(client, seen, 4) == KADNET_EINVAL);
  }

  /* Failures come back as codes with words. */
  CHECK(kadnet_add_handler(server, 65, refuse, NULL) == KADNET_OK);
  CHECK(kadnet_call(client, kadnet_id(server), 65, "x", 1, &reply) == KADNET_EHANDLER_FAILED);
  CHECK(kadnet_call(client, kadnet_id(server), 66, "x", 1, &reply) == KADNET_EUNSUPPORTED_OPCODE);
  CHECK(kadnet_add_handler(server, 67, ping_self, server) == KADNET_OK);
  CHECK(kadnet_call(client, kadnet_id(server), 67, "x", 1, &reply) == KADNET_EHANDLER_FAILED);
  CHECK(kadnet_call(client, kadnet_id(server), 10, "x", 1, &reply) == KADNET_EINVAL);
  CHECK(strstr(kadnet_last_error(), "64..255") != NULL);
  CHECK(kadnet_call(client, kadnet_id(client), 64, "x", 1, &reply) == KADNET_EOWN_ID);
  CHECK(kadnet_ping(client, "abababababababababababababababababababababababababababababababab", &rtt) ==
        KADNET_EPEER_NOT_FOUND);
  CHECK(strstr(kadnet_last_error(), "no node with that id") != NULL);
  CHECK(kadnet_ping(client, "quic://127.0.0.1:1", &rtt) == KADNET_EINVAL);
  CHECK(strstr(kadnet_last_error(), "quic") != NULL);
  CHECK(kadnet_ping(client, "ab", &rtt) == KADNET_EINVAL);
  CHECK(kadnet_listen(client, kadnet_address(server, 0)) == KADNET_EFAILED); /* the port is taken */
  CHECK(kadnet_ping(NULL, "tcp://127.0.0.1:1", &rtt) == KADNET_EINVAL);
  CHECK(kadnet_listen(client, "udp://127.0.0.1:0") == KADNET_OK);
  CHECK(kadnet_address_count(client) == 2);

  /* The DHT: a value put through one node is found from every other. */
  nodes[0] = server;
  for (i = 1; i < 6; ++i) {
    nodes[i] = start("tcp://127.0.0.1:0");
    CHECK(nodes[i] && kadnet_bootstrap(nodes[i], kadnet_address(server, 0)) == KADNET_OK);
  }
  CHECK(kadnet_put(nodes[2], "greeting", "hi there", 8) == KADNET_OK);
  {
    char *big = calloc(65537, 1);
    CHECK(big && kadnet_put(nodes[2], "big", big, 65537) == KADNET_ETOO_LARGE);
    free(big);
  }
  for (i = 0; i < 6; ++i) {
    CHECK(kadnet_get(nodes[i], "greeting", &reply) == KADNET_OK);
    CHECK(reply.size == 8 && memcmp(reply.data, "hi there", 8) == 0);
    kadnet_bytes_free(&reply);
  }
  CHECK(kadnet_get(nodes[4], "nobody stored this", &reply) == KADNET_ENOT_FOUND);

  /* SHOUT to all, WHISPER to one, SPEAK to the direct peers. */
  CHECK(pthread_mutex_init(&heard.lock, NULL) == 0 && pthread_cond_init(&heard.changed, NULL) == 0);
  for (i = 0; i < 6; ++i) CHECK(kadnet_on_shout(nodes[i], heard_shout, &heard) == KADNET_OK);
  CHECK(kadnet_shout(nodes[1], "to all", 6) == KADNET_OK);
  CHECK(reaches(&heard, &heard.shouts, 5));
  CHECK(kadnet_on_whisper(nodes[4], heard_whisper, &heard) == KADNET_OK);
  CHECK(kadnet_whisper(nodes[2], kadnet_id(nodes[4]), "psst", 4, 1) == KADNET_OK);
  CHECK(reaches(&heard, &heard.whispers, 1) && heard.whisper_sealed == 1);
  CHECK(kadnet_whisper(nodes[2], "not-an-id", "psst", 4, 1) == KADNET_EINVAL);
  CHECK(kadnet_on_speak(server, heard_speak, &heard) == KADNET_OK);
  CHECK(kadnet_speak(nodes[3], "neighbours", 10, &peers) == KADNET_OK && peers >= 1);
  CHECK(reaches(&heard, &heard.speaks, 1));

  /* Files: into an inbox over any transport; a node without one refuses, with its reason. */
  {
    char root[] = "/tmp/kadnet-c-files-XXXXXX", src[128], inbox_dir[64], got[16] = {0};
    kadnet_node *receiver = start("udp://127.0.0.1:0");
    uint64_t sent = 0;
    FILE *f;
    CHECK(mkdtemp(root) != NULL);
    snprintf(src, sizeof src, "%s/note.txt", root);
    snprintf(inbox_dir, sizeof inbox_dir, "%s/inbox", root);
    f = fopen(src, "wb");
    CHECK(f != NULL);
    if (f) {
      fputs("a C file", f);
      fclose(f);
    }
    CHECK(kadnet_set_inbox(receiver, inbox_dir) == KADNET_OK);
    CHECK(kadnet_set_inbox(receiver, src) == KADNET_EINVAL); /* a file, not a folder */
    CHECK(strstr(kadnet_last_error(), "note.txt") != NULL);
    CHECK(kadnet_on_file(receiver, heard_file, &heard) == KADNET_OK);
    CHECK(kadnet_send_file(client, kadnet_address(receiver, 0), src, &sent) == KADNET_OK && sent == 8);
    CHECK(reaches(&heard, &heard.files, 1));
    CHECK(strcmp(heard.file_name, "note.txt") == 0 && heard.file_error[0] == 0);
    f = fopen(heard.file_path, "rb");
    CHECK(f != NULL);
    if (f) {
      CHECK(fread(got, 1, sizeof got, f) == 8 && memcmp(got, "a C file", 8) == 0);
      fclose(f);
    }
    CHECK(kadnet_send_file(client, kadnet_id(receiver), src, &sent) == KADNET_EFAILED); /* it exists now */
    CHECK(strstr(kadnet_last_error(), "exists") != NULL);
    CHECK(kadnet_on_file(server, heard_file, &heard) == KADNET_OK);
    CHECK(kadnet_send_file(client, kadnet_address(server, 0), src, &sent) == KADNET_EFAILED);
    CHECK(strstr(kadnet_last_error(), "inbox") != NULL);
    CHECK(reaches(&heard, &heard.files, 3) && heard.file_path[0] == 0);
    CHECK(kadnet_send_file(client, kadnet_id(server), "/nonexistent/kadnet.txt", &sent) == KADNET_EINVAL);
    CHECK(strstr(kadnet_last_error(), "/nonexistent/kadnet.txt") != NULL);
    CHECK(kadnet_send_file(client, kadnet_id(server), root, &sent) == KADNET_EINVAL); /* a folder */
    /* No handler: nothing is called, and the inbox goes on. */
    CHECK(kadnet_on_file(receiver, NULL, NULL) == KADNET_OK);
    CHECK(kadnet_set_inbox(receiver, NULL) == KADNET_OK);
    CHECK(kadnet_send_file(client, kadnet_id(receiver), src, &sent) == KADNET_EFAILED);
    CHECK(strstr(kadnet_last_error(), "inbox") != NULL);
    kadnet_stop(receiver);
    remove(src);
    snprintf(src, sizeof src, "%s/note.txt", inbox_dir);
    remove(src);
    remove(inbox_dir);
    remove(root);
  }

  { /* Byte streams: one of protocol "upper/1" both ways, and one of a protocol nobody serves. */
    kadnet_stream *out = NULL, *in = NULL, *refused = NULL;
    char got[64] = {0};
    size_t n = 0, total = 0;
    CHECK(kadnet_accept_stream(server, "upper/1", 0, &in) == KADNET_ETIMEOUT); /* serves it from now on */
    CHECK(kadnet_open_stream(client, kadnet_address(server, 0), "upper/1", &out) == KADNET_OK);
    CHECK(kadnet_stream_write(out, "stream me", 9) == KADNET_OK);
    CHECK(kadnet_stream_shutdown(out) == KADNET_OK);
    CHECK(kadnet_accept_stream(server, "upper/1", 20000, &in) == KADNET_OK);
    if (in && out) {
      CHECK(strcmp(kadnet_stream_protocol(in), "upper/1") == 0);
      CHECK(strcmp(kadnet_stream_peer(in), kadnet_id(client)) == 0);
      CHECK(strcmp(kadnet_stream_peer(out), kadnet_id(server)) == 0);
      do { /* until the end: n is 0 */
        CHECK(kadnet_stream_read(in, got + total, sizeof got - 1 - total, &n) == KADNET_OK);
        total += n;
      } while (n > 0 && total < sizeof got - 1);
      CHECK(total == 9 && memcmp(got, "stream me", 9) == 0);
      CHECK(kadnet_stream_write(in, "STREAM ME", 9) == KADNET_OK);
      CHECK(kadnet_stream_shutdown(in) == KADNET_OK);
      total = 0;
      do {
        CHECK(kadnet_stream_read(out, got + total, sizeof got - 1 - total, &n) == KADNET_OK);
        total += n;
      } while (n > 0 && total < sizeof got - 1);
      CHECK(total == 9 && memcmp(got, "STREAM ME", 9) == 0);
    }
    kadnet_stream_close(in);
    kadnet_stream_close(out);
    CHECK(kadnet_open_stream(client, kadnet_id(server), "nobody/1", &refused) == KADNET_OK);
    if (refused) CHECK(kadnet_stream_read(refused, got, sizeof got, &n) == KADNET_EPROTOCOL_NOT_SERVED);
    kadnet_stream_close(refused);
    CHECK(kadnet_open_stream(client, kadnet_id(server), "bad\nname", &refused) == KADNET_EINVAL);
    kadnet_stream_close(NULL);
  }
  kadnet_stream *outlives = NULL; /* closed by kadnet_stop below, freed after it */
  CHECK(kadnet_open_stream(client, kadnet_id(server), NULL, &outlives) == KADNET_OK);

  silent_read waiting = {NULL, 0};
  pthread_t reader;
  CHECK(kadnet_accept_stream(server, NULL, 20000, &waiting.stream) == KADNET_OK); /* outlives's other end */
  if (waiting.stream) CHECK(pthread_create(&reader, NULL, read_until_stopped, &waiting) == 0);
  kadnet_stop(server); /* ends the read waiting in `reader` */
  if (waiting.stream) {
    pthread_join(reader, NULL);
    CHECK(waiting.rc == KADNET_ESHUTTING_DOWN);
    kadnet_stream_close(waiting.stream);
  }

  for (i = 1; i < 6; ++i) kadnet_stop(nodes[i]);
  kadnet_stop(client);
  if (outlives) CHECK(kadnet_stream_write(outlives, "x", 1) == KADNET_ESHUTTING_DOWN);
  kadnet_stream_close(outlives);
  kadnet_stop(NULL);
  pthread_mutex_destroy(&heard.lock);
  pthread_cond_destroy(&heard.changed);
  if (failures) fprintf(stderr, "%d checks failed\n", failures);
  else printf("all C API checks passed\n");
  return failures ? 1 : 0;
}
