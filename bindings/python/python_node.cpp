#include "bindings/python/python_node.hpp"

#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include "bindings/common/arguments.hpp"
#include "kadnet/core/errors.hpp"

namespace kadnet::python {

// A Python callable kept by C++ (a handler the node holds): whoever drops the last reference,
// on whatever thread, takes the GIL to do it.
struct held_callable {
  py::function fn;
  explicit held_callable(py::function f) : fn(std::move(f)) {}
  ~held_callable() {
    py::gil_scoped_acquire gil;
    fn = py::function();
  }
};

namespace {

namespace asio = boost::asio;
using boost::system::error_code;

py::bytes to_bytes(byte_span data) { return py::bytes(reinterpret_cast<const char*>(data.data()), data.size()); }

byte_vector from_bytes(const py::bytes& data) {
  std::string_view view = data;
  return byte_vector(view.begin(), view.end());
}

// Starts an operation with a callback and waits for its completion values with the GIL
// released: the node's thread may need it for a handler meanwhile. A signal handler that raises
// (Ctrl-C) ends the wait with its exception and cancels the operation (terminal cancellation,
// for those that take it: a call, a ping, a DHT operation); the others go on, their result
// unread (each owns everything it uses).
//   auto [ec, rtt] = outcome<error_code, microseconds>([&](auto done) { n.async_ping(to, done); });
template <typename... Values, typename Start>
std::tuple<Values...> outcome(Start start) {
  auto done = std::make_shared<std::promise<std::tuple<Values...>>>();
  auto result = done->get_future();
  // Held by the callback too: the operation may outlive this wait.
  auto cancel = std::make_shared<asio::cancellation_signal>();
  py::gil_scoped_release release;
  start(asio::bind_cancellation_slot(cancel->slot(), [done, cancel](Values... v) {
    done->set_value(std::tuple<Values...>(std::move(v)...));
  }));
  while (result.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    if (!signal_raised()) continue;
    // From this thread, like the slot's filling: kadnet's operations fill it in their initiating
    // call and touch it no more; what it holds only posts the cancellation to the node's strand.
    cancel->emit(asio::cancellation_type::terminal);
    raise_signal_error();
  }
  return result.get();
}

}  // namespace

bool signal_raised() {
  py::gil_scoped_acquire gil;
  return PyErr_CheckSignals() != 0;
}

void raise_signal_error() {
  py::gil_scoped_acquire gil;  // held while the exception is taken
  throw py::error_already_set();
}

namespace {

[[noreturn]] void fail(const error_code& ec, const std::string& detail = {}) {
  // A peer's NACK text often repeats the code's message ("unsupported opcode"): said once.
  throw error(ec.message() + (detail.empty() || detail == ec.message() ? "" : ": " + detail));
}

using bindings::node_id_of;
using bindings::plugin_opcode;
using bindings::target_of;
using bindings::uri_of;

// A DHT key: a str is hashed (BLAKE2b-256, as the CLI and DESIGN.md do); bytes are the key
// itself and must be 32 long.
node_id key_of(const py::object& key) {
  if (py::isinstance<py::str>(key)) return text_key(key.cast<std::string>());
  if (py::isinstance<py::bytes>(key)) {
    std::string_view raw = key.cast<py::bytes>();
    auto id = node_id::from_bytes(byte_span(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size()));
    if (!id) throw py::value_error("a bytes key must be 32 bytes long, not " + std::to_string(raw.size()));
    return *id;
  }
  throw py::type_error("a key is a str (hashed) or 32 bytes");
}

core::node_config config_of(const node_options& o) {
  core::node_config config;
  constexpr double longest = std::chrono::duration<double>(core::node_config::max_timeout).count();
  if (!(o.request_timeout > 0) || o.request_timeout > longest)
    throw py::value_error("request_timeout must be a number of seconds above 0 and at most " +
                          std::to_string(static_cast<long>(longest)) + " (24 hours)");
  config.request_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o.request_timeout * 1000));
  if (o.compression) {
    config.compression.clear();
    for (const auto& name : *o.compression) {
      auto codec = compression::codec_from_name(name);
      if (!codec) throw py::value_error("unknown compression method '" + name + "' (bz2, gzip, lzma, zlib, snappy, zstd; [] for none)");
      config.compression.push_back(*codec);
    }
  }
  try {
    config.validate();
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
  return config;
}

}  // namespace

python_node::python_node(const node_options& o) {
  std::optional<std::filesystem::path> inbox;
  try {
    if (o.inbox) inbox = bindings::prepare_inbox(*o.inbox);  // before the node starts
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
  core::identity self = core::identity::generate();
  if (o.identity) self = core::identity::load_or_create(*o.identity);
  else if (o.data_dir) self = core::identity::in_data_dir(*o.data_dir);
  transports::dht_settings dht;
  dht.enabled = o.dht;
  if (o.data_dir) dht.data_dir = *o.data_dir;
  if (o.contacts_per_prefix) dht.config.routing.max_per_prefix = *o.contacts_per_prefix;
  node_.emplace(std::move(self), config_of(o), std::move(dht));
  acceptor_ = std::make_unique<bindings::stream_acceptor>(*node_->get());
  streams_ = std::make_shared<bindings::stream_list>(node_->thread_id());
  try {
    for (const auto& where : o.listen) listen(where);
    receive_files(std::move(inbox));
  } catch (...) {
    stop();
    throw;
  }
}

python_node::~python_node() { stop(); }

void python_node::stop() {
  if (!node_) return;
  if (node_->on_own_thread()) throw error("a node cannot be stopped from its own handler");
  py::gil_scoped_release release;  // the node's thread may be waiting for the GIL in a handler
  files_.reset();  // no file callback runs after this
  acceptor_->stop();     // streams nobody took are closed while the node runs; waiting accepts end
  streams_->stop_all();  // likewise the open ones: waiting reads and writes end
  node_->stop();
  streams_->end();  // a completion posted as the node stopped may never have run
  std::shared_ptr<held_callable> handler;  // dropped outside the lock: it may run Python code
  {
    std::lock_guard lock(on_file_mutex_);
    handler = std::exchange(on_file_, nullptr);
  }
}

void python_node::receive_files(std::optional<std::filesystem::path> inbox) {
  // On the node's thread; the receiver is destroyed (in stop) before this object.
  auto done = [this](const node_id& sender, const std::string& name, const std::string& path, const std::string& why) {
    std::shared_ptr<held_callable> fn;
    {
      std::lock_guard lock(on_file_mutex_);
      fn = on_file_;
    }
    if (!fn) return;
    py::gil_scoped_acquire gil;
    try {
      // The name is the peer's: not necessarily UTF-8.
      auto offered = py::reinterpret_steal<py::str>(PyUnicode_DecodeUTF8(name.data(), static_cast<Py_ssize_t>(name.size()), "replace"));
      fn->fn(sender.to_hex(), offered, path.empty() ? py::object(py::none()) : py::object(py::str(path)),
             why.empty() ? py::object(py::none()) : py::object(py::str(why)));
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("kadnet file handler");
    }
  };
  files_ = std::make_unique<bindings::file_inbox>(live(), std::move(inbox), std::move(done));
}

py::dict python_node::send_file(const std::string& target, const std::string& path) {
  auto to = target_of(target);
  node& from = waitable();
  try {  // a local problem, not something the peer said, is a ValueError
    bindings::check_sendable(path);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
  // Ctrl-C ends the wait; the transfer goes on until it ends or the node stops.
  auto [ec, sent] = outcome<error_code, file_send_result>(
      [&](auto done) { kadnet::async_send_file(from, to, path, {}, std::move(done)); });
  try {
    bindings::throw_if_refused_locally(path, ec);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
  if (ec) fail(ec, sent.reason.empty() ? target : sent.reason);
  py::dict out;
  out["name"] = sent.name;
  out["size"] = sent.size;
  out["sent"] = sent.bytes_sent;
  out["resumed_from"] = sent.resumed_from;
  out["blake2b"] = py::bytes(reinterpret_cast<const char*>(sent.digest.data()), sent.digest.size());
  return out;
}

void python_node::on_file(py::function handler) {
  live();
  auto fn = std::make_shared<held_callable>(std::move(handler));
  {
    std::lock_guard lock(on_file_mutex_);
    on_file_.swap(fn);
  }
  // fn, the last handler, goes here, outside the lock (its destructor may run Python code).
}

node& python_node::waitable() {
  if (node_ && node_->on_own_thread())
    throw error("a handler cannot wait for its own node (it runs on the node's thread): use another node, or reply first");
  return live();
}

node& python_node::live() {
  if (!node_ || !node_->get()) throw error("the node is stopped");
  return *node_->get();
}

std::string python_node::id() const {
  if (!node_ || !node_->get()) throw error("the node is stopped");
  return node_->get()->id().to_hex();
}

std::vector<std::string> python_node::addresses() const {
  std::vector<std::string> out;
  if (node_ && node_->get())
    for (const auto& u : node_->get()->listening()) out.push_back(u.to_string());
  return out;
}

std::optional<std::string> python_node::observed_address() {
  auto [seen] = outcome<std::optional<std::string>>([&](auto done) { waitable().async_observed_address(done); });
  return seen;
}

std::string python_node::listen(const std::string& where) {
  const uri u = uri_of(where);  // a malformed URI is a ValueError, not a failure to bind
  node& n = live();
  try {
    return n.listen(u).to_string();
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  } catch (const std::runtime_error& e) {
    throw error(e.what());  // the address cannot be bound
  }
}

std::string python_node::connect(const std::string& where, const std::optional<std::string>& expected_id) {
  std::optional<node_id> expected;
  if (expected_id) expected = node_id_of(*expected_id);
  auto u = uri_of(where);
  auto [ec, peer] = outcome<error_code, node_id>([&](auto done) { waitable().async_connect(u, expected, done); });
  if (ec) fail(ec, where);
  return peer.to_hex();
}

double python_node::ping(const std::string& target) {
  auto to = target_of(target);
  auto [ec, rtt] = outcome<error_code, std::chrono::microseconds>([&](auto done) { waitable().async_ping(to, done); });
  if (ec) fail(ec, target);
  return std::chrono::duration<double>(rtt).count();
}

py::bytes python_node::call(const std::string& target, int opcode, const py::bytes& data) {
  auto to = target_of(target);
  auto op = plugin_opcode(opcode);
  auto payload = from_bytes(data);
  auto [ec, r] = outcome<error_code, reply>([&](auto done) { waitable().async_call(to, op, std::move(payload), done); });
  if (ec) fail(ec, r.text);
  return to_bytes(r.data);
}

void python_node::add_handler(int opcode, py::function handler) {
  auto fn = std::make_shared<held_callable>(std::move(handler));
  live().add_handler(plugin_opcode(opcode), [fn](const node_id& caller, byte_span in) -> byte_vector {
    py::gil_scoped_acquire gil;
    try {
      py::object out = fn->fn(caller.to_hex(), to_bytes(in));
      if (out.is_none()) return {};
      return from_bytes(out.cast<py::bytes>());
    } catch (py::error_already_set& e) {
      // The caller gets NACK handler_failed with the exception's type and message, never the
      // traceback (it would show the caller this node's source paths); the traceback goes where
      // Python prints them.
      std::string what = "exception";
      try {
        what = py::str(e.type().attr("__name__")).cast<std::string>();
        if (std::string message = py::str(e.value()).cast<std::string>(); !message.empty()) what += ": " + message;
      } catch (py::error_already_set& unprintable) {  // its str() raised: the type name, or nothing
        unprintable.discard_as_unraisable("kadnet plugin handler's exception text");
      }
      e.discard_as_unraisable("kadnet plugin handler");
      throw std::runtime_error(what);
    } catch (const py::cast_error&) {
      throw std::runtime_error("a plugin handler must return bytes or None");
    }
  });
}

void python_node::bootstrap(const std::vector<std::string>& uris) {
  if (uris.empty()) throw py::value_error("bootstrap needs at least one URI");
  error_code last;
  std::size_t reached = 0;
  for (const auto& where : uris) {
    auto u = uri_of(where);
    auto [ec, peer] = outcome<error_code, node_id>([&](auto done) { waitable().async_connect(u, std::nullopt, done); });
    if (ec) last = ec;
    else ++reached;
  }
  if (reached == 0) fail(last, "no bootstrap node answered");
  auto [ec, r] = outcome<error_code, dht::find_node_result>([&](auto done) { waitable().dht().bootstrap(done); });
  if (ec) fail(ec, "joining the DHT");
}

std::size_t python_node::put(const py::object& key, const py::bytes& value) {
  auto k = key_of(key);
  auto v = from_bytes(value);
  const std::size_t size = v.size();
  auto [ec, r] = outcome<error_code, dht::put_outcome>([&](auto done) { waitable().dht().put(k, std::move(v), done); });
  if (ec == core::errc::too_large)
    throw py::value_error("the value is " + std::to_string(size) + " bytes; a value is at most " +
                          std::to_string(dht::default_max_value_size) + " bytes");
  if (ec) fail(ec);
  return r.replicas;
}

std::optional<py::bytes> python_node::get(const py::object& key) {
  auto k = key_of(key);
  auto [ec, r] = outcome<error_code, dht::get_result>([&](auto done) { waitable().dht().get(k, done); });
  if (ec == core::errc::not_found) return std::nullopt;
  if (ec) fail(ec);
  if (!r.value) return std::nullopt;
  return to_bytes(r.value->value);
}

py::list python_node::find_node(const std::string& id) {
  auto target = node_id_of(id);
  auto [ec, r] = outcome<error_code, dht::find_node_result>([&](auto done) { waitable().dht().find_node(target, done); });
  if (ec) fail(ec);
  py::list out;
  for (const auto& c : r.closest) out.append(py::make_tuple(c.id.to_hex(), c.addresses));
  return out;
}

py::tuple python_node::cas(const py::object& key, std::uint64_t expected_version, const py::bytes& value) {
  auto k = key_of(key);
  auto v = from_bytes(value);
  auto [ec, r] = outcome<error_code, dht::cas_outcome>(
      [&](auto done) { live().dht().cas(k, expected_version, std::move(v), done); });
  if (ec && ec != core::errc::cas_conflict) fail(ec);
  py::object current = r.value ? py::object(to_bytes(*r.value)) : py::object(py::none());
  return py::make_tuple(!ec && r.written, r.version, current);
}

namespace {
std::chrono::milliseconds lease_of(double seconds) {
  if (!(seconds >= 0.001 && seconds <= 24 * 3600)) throw py::value_error("a lease is 0.001 to 86400 seconds");
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

[[noreturn]] void lock_failed(const error_code& ec, const dht::lock_outcome& r) {
  if (ec == core::errc::locked)
    fail(ec, "held by " + r.holder.to_hex() + " for " + std::to_string(r.remaining.count()) + " ms more");
  fail(ec);
}
}  // namespace

std::uint64_t python_node::lock(const py::object& key, double lease_seconds) {
  auto k = key_of(key);
  auto lease = lease_of(lease_seconds);
  auto [ec, r] = outcome<error_code, dht::lock_outcome>([&](auto done) { waitable().dht().lock(k, lease, done); });
  if (ec) lock_failed(ec, r);
  return r.token;
}

void python_node::renew(const py::object& key, std::uint64_t token, double lease_seconds) {
  auto k = key_of(key);
  auto lease = lease_of(lease_seconds);
  auto [ec, r] = outcome<error_code, dht::lock_outcome>([&](auto done) { waitable().dht().renew(k, token, lease, done); });
  if (ec) lock_failed(ec, r);
}

void python_node::unlock(const py::object& key, std::uint64_t token) {
  auto k = key_of(key);
  auto [ec, r] = outcome<error_code, dht::lock_outcome>([&](auto done) { waitable().dht().unlock(k, token, done); });
  if (ec) lock_failed(ec, r);
}

std::unique_ptr<python_stream> python_node::open_stream(const std::string& target, const std::string& protocol) {
  auto to = target_of(target);
  // A protocol that is not valid throws std::invalid_argument: ValueError.
  auto [ec, s] = outcome<error_code, stream>([&](auto done) { waitable().async_open_stream(to, protocol, done); });
  if (ec) fail(ec, target);
  return std::make_unique<python_stream>(streams_, std::move(s));
}

std::optional<std::unique_ptr<python_stream>> python_node::accept_stream(const std::string& protocol, std::optional<double> timeout) {
  if (timeout && !(*timeout >= 0)) throw py::value_error("timeout must be a number of seconds, at least 0, or None");
  // Beyond a few years (or infinity) it is no timeout at all; the clock would overflow.
  std::optional<std::chrono::milliseconds> wait;
  if (timeout && *timeout <= 1e8) wait = std::chrono::milliseconds(static_cast<std::int64_t>(*timeout * 1000));
  waitable();
  std::optional<stream> s;
  try {
    py::gil_scoped_release release;
    // In slices, so that Ctrl-C is noticed: a stream that arrives between two is kept for the next.
    using clock = std::chrono::steady_clock;
    const auto deadline = wait ? std::optional(clock::now() + *wait) : std::nullopt;
    for (;;) {
      auto slice = std::chrono::milliseconds(100);
      if (deadline)
        slice = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - clock::now()),
                           std::chrono::milliseconds(0), slice);
      s = acceptor_->accept(protocol, slice);
      if (s || (deadline && clock::now() >= *deadline)) break;
      if (signal_raised()) raise_signal_error();
    }
  } catch (const py::error_already_set&) {
    throw;
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  } catch (const std::runtime_error& e) {
    throw error(e.what());
  }
  if (!s) return std::nullopt;  // Optional[Stream] in the signature Python shows
  return std::make_unique<python_stream>(streams_, std::move(*s));
}

void python_node::shout(const py::bytes& data) {
  auto payload = from_bytes(data);
  const std::size_t size = payload.size();
  auto [ec, r] = outcome<error_code, dht::shout_outcome>([&](auto done) { waitable().async_shout(std::move(payload), done); });
  if (ec == core::errc::too_large)
    throw py::value_error("the shout is " + std::to_string(size) + " bytes; a shout is at most " +
                          std::to_string(dht::broadcast_config{}.max_payload) + " bytes");
  if (ec) fail(ec);
}

std::size_t python_node::speak(const py::bytes& data) {
  auto payload = from_bytes(data);
  auto [ec, peers] = outcome<error_code, std::size_t>([&](auto done) { waitable().async_speak(std::move(payload), done); });
  if (ec) fail(ec);
  return peers;
}

void python_node::whisper(const std::string& target_id, const py::bytes& data, bool sealed) {
  auto target = node_id_of(target_id);
  auto payload = from_bytes(data);
  auto [ec] = outcome<error_code>([&](auto done) { waitable().async_whisper(target, std::move(payload), whisper_options{sealed}, done); });
  if (ec) fail(ec, target_id);
}

void python_node::on_shout(py::function handler) {
  auto fn = std::make_shared<held_callable>(std::move(handler));
  live().on_shout([fn](const dht::shout_delivery& s) {
    py::gil_scoped_acquire gil;
    try {
      fn->fn(s.origin.to_hex(), to_bytes(s.payload), s.hops);
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("kadnet shout handler");
    }
  });
}

void python_node::on_speak(py::function handler) {
  auto fn = std::make_shared<held_callable>(std::move(handler));
  live().on_speak([fn](const node_id& origin, const node_id& from_peer, byte_span payload) {
    py::gil_scoped_acquire gil;
    try {
      return py::cast<bool>(fn->fn(origin.to_hex(), from_peer.to_hex(), to_bytes(payload)));
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("kadnet speak handler");
    } catch (const py::cast_error&) {
    }
    return false;  // a failed handler forwards nothing
  });
}

void python_node::on_whisper(py::function handler) {
  auto fn = std::make_shared<held_callable>(std::move(handler));
  live().on_whisper([fn](const node_id& sender, byte_span plaintext, bool was_sealed) {
    py::gil_scoped_acquire gil;
    try {
      fn->fn(sender.to_hex(), to_bytes(plaintext), was_sealed);
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("kadnet whisper handler");
    }
  });
}

}  // namespace kadnet::python
