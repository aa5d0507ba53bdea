/* kadnet's plain C API: a node with its own thread, blocking calls, C callbacks as handlers.
 *
 *   kadnet_options o;
 *   kadnet_options_init(&o);
 *   const char *listen[] = {"tcp://127.0.0.1:0"};
 *   o.listen = listen;
 *   o.listen_count = 1;
 *   kadnet_node *n;
 *   if (kadnet_start(&o, &n) != KADNET_OK) fprintf(stderr, "%s\n", kadnet_last_error());
 *   ...
 *   kadnet_stop(n);
 *
 * Every function returning int returns KADNET_OK (0) or an error: KADNET_EINVAL for a bad
 * argument, KADNET_EFAILED for a failure outside kadnet's own codes (a refused connection, a
 * port in use), or one of kadnet's error codes: those below, or another number of
 * kadnet::core::errc (core/errors.hpp) for a rarer one.
 * kadnet_last_error() then says what happened, in words. Functions may be called from any
 * thread; from a handler, a call that waits for the handler's own node (it runs on that node's
 * thread) returns KADNET_EINVAL instead of waiting forever, and kadnet_stop does nothing there.
 */
#ifndef KADNET_H
#define KADNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KADNET_API __attribute__((visibility("default")))
#else
#define KADNET_API
#endif

enum {
  KADNET_OK = 0,
  KADNET_EINVAL = -1,
  KADNET_EFAILED = -2,
  KADNET_EBAD_FIELD = 7,            /* a value out of range: a NodeId that is no Ed25519 key */
  KADNET_ETOO_LARGE = 8,            /* over a size limit: a DHT value over 64 KiB, a message */
  KADNET_EUNEXPECTED_IDENTITY = 12, /* the peer's key is not the NodeId expected */
  KADNET_EHANDSHAKE_FAILED = 14,
  KADNET_ETIMEOUT = 17,             /* no reply within the request timeout */
  KADNET_ENACK = 18,                /* the peer answered NACK (its text is in kadnet_last_error) */
  KADNET_EUNSUPPORTED_OPCODE = 19,  /* the peer serves no handler for that opcode */
  KADNET_EHANDLER_FAILED = 21,      /* the peer's handler failed */
  KADNET_ENOT_CONNECTED = 22,       /* no session with that NodeId, and no address to dial */
  KADNET_ECONNECTION_CLOSED = 23,
  KADNET_ESHUTTING_DOWN = 25,
  KADNET_ENOT_FOUND = 26,           /* a DHT get found no value */
  KADNET_ESTORE_REFUSED = 27,
  KADNET_EPROTOCOL_NOT_SERVED = 37, /* the peer serves no stream of that protocol */
  KADNET_EOWN_ID = 38,              /* addressed to this node's own id */
  KADNET_EPEER_NOT_FOUND = 39,      /* no node with that NodeId was found, or none could reach it */
  KADNET_EDHT_DISABLED = 40         /* a DHT operation or shout on a node made with dht = 0 */
};

typedef struct kadnet_node kadnet_node;

typedef struct kadnet_options {
  const char *const *listen;    /* URIs to listen on: tcp://, udp:// or ws://host:port (port 0: any) */
  size_t listen_count;
  const char *identity_file;    /* a key file, loaded or created (mode 0600); NULL: a fresh identity */
  const char *data_dir;         /* keeps the identity, DHT values and a routing snapshot; NULL: memory */
  int dht;                      /* nonzero: take part in the DHT (default 1) */
  unsigned request_timeout_ms;  /* default 5000 */
  int contacts_per_prefix;      /* contacts one /24 (/64) may have in a bucket; 0: no limit
                                   (nodes all on one machine need it); -1: the default (2) */
} kadnet_options;

/* Bytes the library allocated (malloc) for the caller, or a handler's reply. */
typedef struct kadnet_bytes {
  uint8_t *data;
  size_t size;
} kadnet_bytes;

KADNET_API void kadnet_options_init(kadnet_options *options);
KADNET_API int kadnet_start(const kadnet_options *options, kadnet_node **node);
/* Ends every session and the node's thread, and frees the node. NULL is ignored. */
KADNET_API void kadnet_stop(kadnet_node *node);

/* This node's NodeId, 64 hex digits; valid while the node lives. */
KADNET_API const char *kadnet_id(const kadnet_node *node);
/* The URIs the node listens on (bound ports filled in); valid until the next kadnet_listen. */
KADNET_API size_t kadnet_address_count(const kadnet_node *node);
KADNET_API const char *kadnet_address(const kadnet_node *node, size_t index);
KADNET_API int kadnet_listen(kadnet_node *node, const char *uri);
/* "ip:port" as the last peer to answer this node's ANNOUNCE saw it (behind a NAT: the NAT's
   address), copied into out (NUL-terminated); KADNET_ENOT_CONNECTED before any peer did,
   KADNET_EINVAL when it does not fit. */
KADNET_API int kadnet_observed_address(kadnet_node *node, char *out, size_t size);

/* `target` is a URI to dial or the NodeId (64 hex digits) of a peer with a session. */
KADNET_API int kadnet_ping(kadnet_node *node, const char *target, double *seconds);
/* Calls plugin opcode 64..255; on success *reply holds the answer (free it with kadnet_bytes_free). */
KADNET_API int kadnet_call(kadnet_node *node, const char *target, int opcode, const void *data, size_t size,
                           kadnet_bytes *reply);

/* A plugin handler, run on the node's thread: it may fill *reply with kadnet_bytes_set and
   returns 0 to answer with it, nonzero to answer NACK handler_failed. */
typedef int (*kadnet_handler)(void *user, const char *caller_id, const uint8_t *data, size_t size,
                              kadnet_bytes *reply);
KADNET_API int kadnet_add_handler(kadnet_node *node, int opcode, kadnet_handler handler, void *user);

/* Joins the DHT through the node at `uri`. */
KADNET_API int kadnet_bootstrap(kadnet_node *node, const char *uri);
/* DHT keys are text, hashed to 32 bytes with BLAKE2b-256 as everywhere in kadnet. */
KADNET_API int kadnet_put(kadnet_node *node, const char *key, const void *value, size_t size);
KADNET_API int kadnet_get(kadnet_node *node, const char *key, kadnet_bytes *value);

/* SHOUT: every node of the network hears it once (signed by this node). */
KADNET_API int kadnet_shout(kadnet_node *node, const void *data, size_t size);
/* SPEAK: every direct peer hears it; *peers (if not NULL) gets how many took it. */
KADNET_API int kadnet_speak(kadnet_node *node, const void *data, size_t size, size_t *peers);
/* WHISPER: to one node by its NodeId, found through the DHT if need be; sealed to its key unless
   `sealed` is 0. Returns once the target's receipt matched what was sent. */
KADNET_API int kadnet_whisper(kadnet_node *node, const char *target_id, const void *data, size_t size, int sealed);

/* Sends the file at `path` to a URI or NodeId over any transport (PROTOCOL.md 9.7); returns once
   the receiver verified and stored it, resuming a transfer that was cut off. *bytes_sent (if not
   NULL) gets the bytes sent this time. KADNET_EINVAL when the file cannot be read here; a
   refusal fails with the receiver's reason in kadnet_last_error(). */
KADNET_API int kadnet_send_file(kadnet_node *node, const char *target, const char *path, uint64_t *bytes_sent);
/* Files any peer sends from now on are accepted into folder `dir` (made if missing), with the
   library's limits (16 at once, 1 TiB each); NULL: refused with a reason, as by default. */
KADNET_API int kadnet_set_inbox(kadnet_node *node, const char *dir);
/* Once per transfer a peer starts, on the node's thread: `name` as offered ("" if the stream
   ended before its offer), `path` where the file is stored, or NULL and `error` says why not.
   NULL removes the handler; once kadnet_on_file returns, the previous one is not running and
   never runs again (a handler may call kadnet_on_file itself). */
typedef void (*kadnet_file_handler)(void *user, const char *sender_id, const char *name, const char *path,
                                    const char *error);
KADNET_API int kadnet_on_file(kadnet_node *node, kadnet_file_handler handler, void *user);
/* Byte streams (PROTOCOL.md 9.6): reliable and ordered, over any transport, to a URI or NodeId.
   A stream's opener names the protocol it speaks on it (0-255 bytes of UTF-8; NULL or "" is the
   default one); the peer hands it to an acceptor of that protocol or refuses it. kadnet_stop
   closes a node's streams: reads and writes waiting on them, and later calls, fail with
   KADNET_ESHUTTING_DOWN; free each with kadnet_stream_close, before or after. One read and one
   write may wait at once (more take turns); kadnet_stream_close must not race with calls on the
   same stream, nor kadnet_stop with kadnet_open_stream or kadnet_accept_stream on its node. */
typedef struct kadnet_stream kadnet_stream;
KADNET_API int kadnet_open_stream(kadnet_node *node, const char *target, const char *protocol, kadnet_stream **stream);
/* The next stream a peer opens for `protocol`, waiting up to timeout_ms (negative: until one
   comes); KADNET_ETIMEOUT when the time ran out. From the first call on, the node serves the
   protocol (its streams wait to be accepted); a stream of a protocol never asked for is refused,
   except the default one. */
KADNET_API int kadnet_accept_stream(kadnet_node *node, const char *protocol, int timeout_ms, kadnet_stream **stream);
/* Reads up to `capacity` bytes into `buffer`, waiting for at least one; *read gets how many, 0
   once the peer ended its direction and everything was read. A refused stream's first read
   fails with KADNET_EPROTOCOL_NOT_SERVED. */
KADNET_API int kadnet_stream_read(kadnet_stream *stream, void *buffer, size_t capacity, size_t *read);
/* Writes every byte, waiting while the peer's window is full. */
KADNET_API int kadnet_stream_write(kadnet_stream *stream, const void *data, size_t size);
/* Ends this side's direction: the peer reads the end after the last byte. */
KADNET_API int kadnet_stream_shutdown(kadnet_stream *stream);
/* The peer's NodeId (64 hex digits) and the stream's protocol; valid until kadnet_stream_close. */
KADNET_API const char *kadnet_stream_peer(const kadnet_stream *stream);
KADNET_API const char *kadnet_stream_protocol(const kadnet_stream *stream);
/* Ends this side's direction, stops reading and frees the stream. NULL is ignored. */
KADNET_API void kadnet_stream_close(kadnet_stream *stream);

/* Handlers for what arrives, run on the node's thread; setting one replaces the last. */
typedef void (*kadnet_shout_handler)(void *user, const char *origin_id, const uint8_t *data, size_t size,
                                     unsigned hops);
/* Returns nonzero to forward the speak, as it is, to this node's other direct peers. */
typedef int (*kadnet_speak_handler)(void *user, const char *origin_id, const char *from_id, const uint8_t *data,
                                    size_t size);
typedef void (*kadnet_whisper_handler)(void *user, const char *sender_id, const uint8_t *data, size_t size,
                                       int was_sealed);
KADNET_API int kadnet_on_shout(kadnet_node *node, kadnet_shout_handler handler, void *user);
KADNET_API int kadnet_on_speak(kadnet_node *node, kadnet_speak_handler handler, void *user);
KADNET_API int kadnet_on_whisper(kadnet_node *node, kadnet_whisper_handler handler, void *user);

/* Replaces b's bytes with a copy of data (KADNET_EFAILED when out of memory). */
KADNET_API int kadnet_bytes_set(kadnet_bytes *b, const void *data, size_t size);
KADNET_API void kadnet_bytes_free(kadnet_bytes *b);

/* What this thread's last failed call failed with ("" if none). */
KADNET_API const char *kadnet_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* KADNET_H */
