// The C API of bindings/c/kadnet.h over bindings::threaded_node. No exception crosses it: each
// function catches, records the message for kadnet_last_error() and returns a code.
#include "bindings/c/kadnet.h"

#include <boost/asio/error.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "bindings/common/arguments.hpp"
#include "bindings/common/files.hpp"
#include "bindings/common/blocking_stream.hpp"
#include "bindings/common/stream_acceptor.hpp"
#include "bindings/common/threaded_node.hpp"
#include "kadnet/core/errors.hpp"

struct kadnet_node {
  std::optional<kadnet::bindings::threaded_node> running;
  std::shared_ptr<kadnet::bindings::stream_list> streams_open;  // closed when it stops
  std::string id;
  std::vector<std::string> addresses;
  // Held while the handler runs: kadnet_on_file returns once the old one cannot run any more
  // (recursive: a handler may replace itself). Declared before `files`, which outlives none of it.
  std::recursive_mutex file_handler_mutex;
  kadnet_file_handler file_handler = nullptr;
  void* file_handler_user = nullptr;
  std::unique_ptr<kadnet::bindings::file_inbox> files;  // destroyed before the node stops
  std::unique_ptr<kadnet::bindings::stream_acceptor> streams;  // likewise
  ~kadnet_node() {
    files.reset();
    streams.reset();
  }
};

struct kadnet_stream {
  kadnet::bindings::blocking_stream s;
};

namespace {

using boost::system::error_code;
using kadnet::byte_vector;
using kadnet::node_id;

static_assert(KADNET_EUNEXPECTED_IDENTITY == static_cast<int>(kadnet::core::errc::unexpected_identity));
static_assert(KADNET_EHANDSHAKE_FAILED == static_cast<int>(kadnet::core::errc::handshake_failed));
static_assert(KADNET_ETIMEOUT == static_cast<int>(kadnet::core::errc::timeout));
static_assert(KADNET_ENACK == static_cast<int>(kadnet::core::errc::nack));
static_assert(KADNET_EUNSUPPORTED_OPCODE == static_cast<int>(kadnet::core::errc::unsupported_opcode));
static_assert(KADNET_EHANDLER_FAILED == static_cast<int>(kadnet::core::errc::handler_failed));
static_assert(KADNET_ENOT_CONNECTED == static_cast<int>(kadnet::core::errc::not_connected));
static_assert(KADNET_ECONNECTION_CLOSED == static_cast<int>(kadnet::core::errc::connection_closed));
static_assert(KADNET_ESHUTTING_DOWN == static_cast<int>(kadnet::core::errc::shutting_down));
static_assert(KADNET_ENOT_FOUND == static_cast<int>(kadnet::core::errc::not_found));
static_assert(KADNET_ESTORE_REFUSED == static_cast<int>(kadnet::core::errc::store_refused));
static_assert(KADNET_EPROTOCOL_NOT_SERVED == static_cast<int>(kadnet::core::errc::protocol_not_served));
static_assert(KADNET_EOWN_ID == static_cast<int>(kadnet::core::errc::own_id));
static_assert(KADNET_EBAD_FIELD == static_cast<int>(kadnet::core::errc::bad_field));
static_assert(KADNET_ETOO_LARGE == static_cast<int>(kadnet::core::errc::too_large));
static_assert(KADNET_EPEER_NOT_FOUND == static_cast<int>(kadnet::core::errc::peer_not_found));
static_assert(KADNET_EDHT_DISABLED == static_cast<int>(kadnet::core::errc::dht_disabled));

thread_local std::string last_error;

// A bad argument, named (the shared parsers of bindings/common/arguments.hpp throw it too).
using invalid = std::invalid_argument;

int failed(int code, std::string message) {
  last_error = std::move(message);
  return code;
}

int code_of(const error_code& ec, const std::string& detail = {}) {
  const int code = ec.category() == kadnet::core::error_category() ? ec.value() : KADNET_EFAILED;
  // A peer's NACK text often repeats the code's message ("unsupported opcode"): said once.
  return failed(code, ec.message() + (detail.empty() || detail == ec.message() ? "" : ": " + detail));
}

// Runs `body` (which returns a code), turning exceptions into codes and messages.
template <typename Body>
int guarded(Body body) {
  try {
    last_error.clear();
    return body();
  } catch (const invalid& e) {
    return failed(KADNET_EINVAL, e.what());
  } catch (const std::exception& e) {
    return failed(KADNET_EFAILED, e.what());
  }
}

const char* required(const char* text, const char* what) {
  if (!text) throw invalid(std::string(what) + " is NULL");
  return text;
}

kadnet::node& live(kadnet_node* n) {
  if (!n || !n->running || !n->running->get()) throw invalid("the node is NULL or stopped");
  return *n->running->get();
}

// live(), for a call that blocks: a handler waiting for its own node would wait forever.
kadnet::node& waitable(kadnet_node* n) {
  kadnet::node& node = live(n);
  if (n->running->on_own_thread()) throw invalid("a handler cannot wait for its own node; use another node, or reply first");
  return node;
}

kadnet::peer_ref peer_of(const char* text) { return kadnet::bindings::target_of(required(text, "the target")); }

kadnet::uri uri_of(const char* text) { return kadnet::bindings::uri_of(required(text, "the URI")); }

byte_vector bytes_of(const void* data, std::size_t size) {
  if (size > 0 && !data) throw invalid("data is NULL with a size of " + std::to_string(size));
  const auto* p = static_cast<const std::uint8_t*>(data);
  return byte_vector(p, p + size);
}

void give(kadnet_bytes* out, const byte_vector& bytes) {
  if (kadnet_bytes_set(out, bytes.data(), bytes.size()) != KADNET_OK) throw std::bad_alloc();
}

void refresh_addresses(kadnet_node* n) {
  n->addresses.clear();
  for (const auto& u : live(n).listening()) n->addresses.push_back(u.to_string());
}

}  // namespace

extern "C" {

void kadnet_options_init(kadnet_options* o) {
  if (!o) return;
  *o = kadnet_options{};
  o->dht = 1;
  o->request_timeout_ms = 5000;
  o->contacts_per_prefix = -1;
}

int kadnet_start(const kadnet_options* o, kadnet_node** out) {
  return guarded([&]() -> int {
    if (!o || !out) throw invalid("options and node must not be NULL");
    *out = nullptr;
    if (o->listen_count > 0 && !o->listen) throw invalid("listen is NULL with a count of " + std::to_string(o->listen_count));
    kadnet::core::node_config config;
    if (o->request_timeout_ms == 0) throw invalid("request_timeout_ms must be positive");
    config.request_timeout = std::chrono::milliseconds(o->request_timeout_ms);
    config.validate();
    kadnet::transports::dht_settings dht;
    dht.enabled = o->dht != 0;
    if (o->data_dir) dht.data_dir = o->data_dir;
    if (o->contacts_per_prefix < -1) throw invalid("contacts_per_prefix must be -1 (the default) or more");
    if (o->contacts_per_prefix >= 0) dht.config.routing.max_per_prefix = static_cast<std::size_t>(o->contacts_per_prefix);
    kadnet::core::identity self = kadnet::core::identity::generate();
    if (o->identity_file) {
      self = kadnet::core::identity::load_or_create(o->identity_file);
    } else if (o->data_dir) {
      self = kadnet::core::identity::in_data_dir(o->data_dir);
    }
    std::vector<kadnet::uri> listen;
    for (std::size_t i = 0; i < o->listen_count; ++i) listen.push_back(uri_of(o->listen[i]));
    auto n = std::make_unique<kadnet_node>();
    n->running.emplace(std::move(self), std::move(config), std::move(dht));
    n->id = live(n.get()).id().to_hex();
    for (const auto& where : listen) live(n.get()).listen(where);  // throws naming the URI
    kadnet_node* self_node = n.get();
    n->files = std::make_unique<kadnet::bindings::file_inbox>(
        live(self_node), std::nullopt,
        [self_node](const node_id& sender, const std::string& name, const std::string& path, const std::string& why) {
          std::lock_guard lock(self_node->file_handler_mutex);
          if (self_node->file_handler)
            self_node->file_handler(self_node->file_handler_user, sender.to_hex().c_str(), name.c_str(),
                                    path.empty() ? nullptr : path.c_str(), why.empty() ? nullptr : why.c_str());
        });
    n->streams = std::make_unique<kadnet::bindings::stream_acceptor>(live(self_node));
    n->streams_open = std::make_shared<kadnet::bindings::stream_list>(n->running->thread_id());
    refresh_addresses(n.get());
    *out = n.release();
    return KADNET_OK;
  });
}

void kadnet_stop(kadnet_node* n) {
  if (!n) return;
  if (n->running && n->running->on_own_thread()) {
    failed(KADNET_EINVAL, "a node cannot be stopped from its own handler");
    return;
  }
  // Each step on its own: one that fails must not keep the streams from learning that the node
  // is gone (they outlive it, and would touch it).
  auto quietly = [](auto step) {
    try {
      step();
    } catch (...) {
    }
  };
  quietly([&] { n->files.reset(); });      // no file handler runs after this
  quietly([&] { n->streams->stop(); });    // streams nobody took are closed while the node runs
  quietly([&] { n->streams_open->stop_all(); });  // the open ones too: waiting calls end
  quietly([&] { n->running.reset(); });
  quietly([&] { n->streams_open->end(); });  // a completion posted at the stop may never have run
  delete n;
}

const char* kadnet_id(const kadnet_node* n) { return n ? n->id.c_str() : ""; }

size_t kadnet_address_count(const kadnet_node* n) { return n ? n->addresses.size() : 0; }

const char* kadnet_address(const kadnet_node* n, size_t index) {
  return n && index < n->addresses.size() ? n->addresses[index].c_str() : nullptr;
}

int kadnet_listen(kadnet_node* n, const char* uri) {
  return guarded([&]() -> int {
    live(n).listen(uri_of(uri));  // a port that cannot be bound throws: KADNET_EFAILED
    refresh_addresses(n);
    return KADNET_OK;
  });
}

int kadnet_observed_address(kadnet_node* n, char* out, size_t size) {
  return guarded([&]() -> int {
    if (!out) throw invalid("out is NULL");
    auto& node = waitable(n);
    auto [seen] = kadnet::bindings::wait_for<std::optional<std::string>>([&](auto done) { node.async_observed_address(done); });
    if (!seen) return failed(KADNET_ENOT_CONNECTED, "no peer has said how it sees this node yet");
    if (seen->size() + 1 > size) throw invalid("out holds " + std::to_string(size) + " bytes; the address needs " + std::to_string(seen->size() + 1));
    std::memcpy(out, seen->c_str(), seen->size() + 1);
    return KADNET_OK;
  });
}

int kadnet_ping(kadnet_node* n, const char* target, double* seconds) {
  return guarded([&]() -> int {
    auto to = peer_of(target);
    auto& node = waitable(n);
    auto [ec, rtt] = kadnet::bindings::wait_for<error_code, std::chrono::microseconds>(
        [&](auto done) { node.async_ping(to, done); });
    if (ec) return code_of(ec, target);
    if (seconds) *seconds = std::chrono::duration<double>(rtt).count();
    return KADNET_OK;
  });
}

int kadnet_call(kadnet_node* n, const char* target, int opcode, const void* data, size_t size, kadnet_bytes* reply) {
  return guarded([&]() -> int {
    auto to = peer_of(target);
    const std::uint8_t op = kadnet::bindings::plugin_opcode(opcode);
    auto payload = bytes_of(data, size);
    auto& node = waitable(n);
    auto [ec, r] = kadnet::bindings::wait_for<error_code, kadnet::reply>(
        [&](auto done) { node.async_call(to, op, std::move(payload), done); });
    if (ec) return code_of(ec, r.text);
    if (reply) give(reply, r.data);
    return KADNET_OK;
  });
}

int kadnet_add_handler(kadnet_node* n, int opcode, kadnet_handler handler, void* user) {
  return guarded([&]() -> int {
    const std::uint8_t op = kadnet::bindings::plugin_opcode(opcode);
    if (!handler) throw invalid("the handler is NULL");
    live(n).add_handler(op, [handler, user](const node_id& caller, kadnet::byte_span in) {
      kadnet_bytes out{};
      const std::string id = caller.to_hex();
      const int verdict = handler(user, id.c_str(), in.data(), in.size(), &out);
      byte_vector answer(out.data, out.data + out.size);
      kadnet_bytes_free(&out);
      if (verdict != 0) throw std::runtime_error("the C handler returned " + std::to_string(verdict));
      return answer;
    });
    return KADNET_OK;
  });
}

int kadnet_bootstrap(kadnet_node* n, const char* uri) {
  return guarded([&]() -> int {
    auto where = uri_of(uri);
    auto& node = waitable(n);
    auto [ec, peer] = kadnet::bindings::wait_for<error_code, node_id>(
        [&](auto done) { node.async_connect(where, std::nullopt, done); });
    if (ec) return code_of(ec, uri);
    auto [joined, r] = kadnet::bindings::wait_for<error_code, kadnet::dht::find_node_result>(
        [&](auto done) { node.dht().bootstrap(done); });
    if (joined) return code_of(joined, "joining the DHT");
    return KADNET_OK;
  });
}

int kadnet_put(kadnet_node* n, const char* key, const void* value, size_t size) {
  return guarded([&]() -> int {
    auto k = kadnet::text_key(required(key, "the key"));
    auto v = bytes_of(value, size);
    auto& node = waitable(n);
    auto [ec, r] = kadnet::bindings::wait_for<error_code, kadnet::dht::put_outcome>(
        [&](auto done) { node.dht().put(k, std::move(v), done); });
    return ec ? code_of(ec, key) : KADNET_OK;
  });
}

int kadnet_get(kadnet_node* n, const char* key, kadnet_bytes* value) {
  return guarded([&]() -> int {
    auto k = kadnet::text_key(required(key, "the key"));
    if (!value) throw invalid("value is NULL");
    auto& node = waitable(n);
    auto [ec, r] = kadnet::bindings::wait_for<error_code, kadnet::dht::get_result>(
        [&](auto done) { node.dht().get(k, done); });
    if (!ec && !r.value) ec = kadnet::core::errc::not_found;
    if (ec) return code_of(ec, key);
    give(value, r.value->value);
    return KADNET_OK;
  });
}

int kadnet_shout(kadnet_node* n, const void* data, size_t size) {
  return guarded([&]() -> int {
    auto payload = bytes_of(data, size);
    auto& node = waitable(n);
    auto [ec, r] = kadnet::bindings::wait_for<error_code, kadnet::dht::shout_outcome>(
        [&](auto done) { node.async_shout(std::move(payload), done); });
    return ec ? code_of(ec) : KADNET_OK;
  });
}

int kadnet_speak(kadnet_node* n, const void* data, size_t size, size_t* peers) {
  return guarded([&]() -> int {
    auto payload = bytes_of(data, size);
    auto& node = waitable(n);
    auto [ec, reached] = kadnet::bindings::wait_for<error_code, std::size_t>(
        [&](auto done) { node.async_speak(std::move(payload), done); });
    if (ec) return code_of(ec);
    if (peers) *peers = reached;
    return KADNET_OK;
  });
}

int kadnet_whisper(kadnet_node* n, const char* target_id, const void* data, size_t size, int sealed) {
  return guarded([&]() -> int {
    const node_id target = kadnet::bindings::node_id_of(required(target_id, "the target"));
    auto payload = bytes_of(data, size);
    auto& node = waitable(n);
    auto [ec] = kadnet::bindings::wait_for<error_code>([&](auto done) {
      node.async_whisper(target, std::move(payload), kadnet::whisper_options{sealed != 0}, done);
    });
    return ec ? code_of(ec, target_id) : KADNET_OK;
  });
}

int kadnet_send_file(kadnet_node* n, const char* target, const char* path, uint64_t* bytes_sent) {
  return guarded([&]() -> int {
    auto to = kadnet::bindings::target_of(required(target, "the target"));
    const std::string file = required(path, "the path");
    // A local problem throws invalid (EINVAL); what the peer said is the error.
    auto [ec, sent] = kadnet::bindings::send_file(waitable(n), to, file);
    if (ec) return code_of(ec, sent.reason.empty() ? std::string(target) : sent.reason);
    if (bytes_sent) *bytes_sent = sent.bytes_sent;
    return KADNET_OK;
  });
}

int kadnet_set_inbox(kadnet_node* n, const char* dir) {
  return guarded([&]() -> int {
    live(n);
    std::optional<std::filesystem::path> inbox;
    if (dir) inbox = kadnet::bindings::prepare_inbox(dir);
    n->files->set_directory(std::move(inbox));
    return KADNET_OK;
  });
}

int kadnet_on_file(kadnet_node* n, kadnet_file_handler handler, void* user) {
  return guarded([&]() -> int {
    live(n);
    std::lock_guard lock(n->file_handler_mutex);
    n->file_handler = handler;  // NULL: no more calls
    n->file_handler_user = user;
    return KADNET_OK;
  });
}

int kadnet_on_shout(kadnet_node* n, kadnet_shout_handler handler, void* user) {
  return guarded([&]() -> int {
    if (!handler) throw invalid("the handler is NULL");
    live(n).on_shout([handler, user](const kadnet::dht::shout_delivery& s) {
      handler(user, s.origin.to_hex().c_str(), s.payload.data(), s.payload.size(), s.hops);
    });
    return KADNET_OK;
  });
}

int kadnet_on_speak(kadnet_node* n, kadnet_speak_handler handler, void* user) {
  return guarded([&]() -> int {
    if (!handler) throw invalid("the handler is NULL");
    live(n).on_speak([handler, user](const node_id& origin, const node_id& from, kadnet::byte_span payload) {
      return handler(user, origin.to_hex().c_str(), from.to_hex().c_str(), payload.data(), payload.size()) != 0;
    });
    return KADNET_OK;
  });
}

int kadnet_on_whisper(kadnet_node* n, kadnet_whisper_handler handler, void* user) {
  return guarded([&]() -> int {
    if (!handler) throw invalid("the handler is NULL");
    live(n).on_whisper([handler, user](const node_id& sender, kadnet::byte_span plaintext, bool was_sealed) {
      handler(user, sender.to_hex().c_str(), plaintext.data(), plaintext.size(), was_sealed ? 1 : 0);
    });
    return KADNET_OK;
  });
}

int kadnet_bytes_set(kadnet_bytes* b, const void* data, size_t size) {
  if (!b || (size > 0 && !data)) return failed(KADNET_EINVAL, "kadnet_bytes_set: NULL bytes or data");
  auto* copy = static_cast<std::uint8_t*>(std::malloc(size > 0 ? size : 1));
  if (!copy) return failed(KADNET_EFAILED, "out of memory");
  if (size > 0) std::memcpy(copy, data, size);
  std::free(b->data);
  b->data = copy;
  b->size = size;
  return KADNET_OK;
}

void kadnet_bytes_free(kadnet_bytes* b) {
  if (!b) return;
  std::free(b->data);
  b->data = nullptr;
  b->size = 0;
}

int kadnet_open_stream(kadnet_node* n, const char* target, const char* protocol, kadnet_stream** out) {
  return guarded([&]() -> int {
    if (!out) throw invalid("stream must not be NULL");
    auto to = peer_of(target);
    const std::string name = protocol ? protocol : "";  // not valid: throws invalid (EINVAL)
    auto [ec, s] = kadnet::bindings::wait_for<error_code, kadnet::stream>(
        [&](auto done) { waitable(n).async_open_stream(to, name, done); });
    if (ec) return code_of(ec, target);
    *out = new kadnet_stream{{n->streams_open, std::move(s)}};
    return KADNET_OK;
  });
}

int kadnet_accept_stream(kadnet_node* n, const char* protocol, int timeout_ms, kadnet_stream** out) {
  return guarded([&]() -> int {
    if (!out) throw invalid("stream must not be NULL");
    waitable(n);
    std::optional<kadnet::stream> s;
    try {
      s = n->streams->accept(protocol ? protocol : "",
                             timeout_ms < 0 ? std::nullopt : std::optional(std::chrono::milliseconds(timeout_ms)));
    } catch (const std::runtime_error& e) {  // the node stopped meanwhile
      return failed(KADNET_ESHUTTING_DOWN, e.what());
    }
    if (!s) return failed(KADNET_ETIMEOUT, "no stream of that protocol within the timeout");
    *out = new kadnet_stream{{n->streams_open, std::move(*s)}};
    return KADNET_OK;
  });
}

int kadnet_stream_read(kadnet_stream* s, void* buffer, size_t capacity, size_t* read) {
  return guarded([&]() -> int {
    if (!s || !buffer || capacity == 0 || !read) throw invalid("stream, buffer and read must not be NULL, capacity not 0");
    auto [ec, n] = s->s.read_some(kadnet::mutable_byte_span(static_cast<std::uint8_t*>(buffer), capacity));
    *read = n;
    if (ec && ec != boost::asio::error::eof) return code_of(ec);
    return KADNET_OK;
  });
}

int kadnet_stream_write(kadnet_stream* s, const void* data, size_t size) {
  return guarded([&]() -> int {
    if (!s) throw invalid("the stream is NULL");
    auto bytes = bytes_of(data, size);
    if (auto ec = s->s.write_all(bytes)) return code_of(ec);
    return KADNET_OK;
  });
}

int kadnet_stream_shutdown(kadnet_stream* s) {
  return guarded([&]() -> int {
    if (!s) throw invalid("the stream is NULL");
    if (auto ec = s->s.shutdown()) return code_of(ec);
    return KADNET_OK;
  });
}

const char* kadnet_stream_peer(const kadnet_stream* s) { return s ? s->s.peer().c_str() : ""; }
const char* kadnet_stream_protocol(const kadnet_stream* s) { return s ? s->s.protocol().c_str() : ""; }

void kadnet_stream_close(kadnet_stream* s) {
  try {
    delete s;  // closed as it goes (by kadnet_stop already, if its node stopped)
  } catch (...) {  // nothing crosses the C API
  }
}

const char* kadnet_last_error(void) { return last_error.c_str(); }

}  // extern "C"
