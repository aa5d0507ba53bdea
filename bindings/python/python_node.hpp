#pragma once
// A kadnet::node for Python, with a thread of its own (bindings::threaded_node): blocking calls
// (the GIL is released while they wait) and Python callables as handlers (run on the node's
// thread with the GIL held). module.cpp exposes it as kadnet.Node.
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <pybind11/pybind11.h>

#include "bindings/common/files.hpp"
#include "bindings/common/stream_acceptor.hpp"
#include "bindings/common/threaded_node.hpp"
#include "bindings/python/python_stream.hpp"

namespace kadnet::python {

namespace py = pybind11;

// What kadnet.Node(...) takes; every field is a keyword argument.
struct node_options {
  std::vector<std::string> listen;            // URIs to listen on at once
  std::optional<std::string> identity;        // key file: loaded, or created when missing
  std::optional<std::string> data_dir;        // SQLite store and routing snapshot (and the key)
  bool dht = true;
  double request_timeout = 5.0;               // seconds
  std::optional<std::vector<std::string>> compression;  // method names, most preferred first
  std::optional<std::size_t> contacts_per_prefix;       // per /24 (/64) per bucket; 0: no limit
  std::optional<std::string> inbox;           // files peers send are accepted into this folder
};

// A Python callable kept by C++ (python_node.cpp): it takes the GIL to let go of it.
struct held_callable;

// A failed operation: kadnet.Error, its message the error's and the peer's text.
struct error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Whether a Python signal handler raised meanwhile (Ctrl-C's KeyboardInterrupt), for a call that
// waits without the GIL: it takes the GIL to run the handlers, and leaves their exception set
// for the call to raise (py::error_already_set). Only the main thread sees signals.
bool signal_raised();
// Raises what signal_raised() found: call it, without the GIL, once that returned true.
[[noreturn]] void raise_signal_error();

class python_node {
 public:
  explicit python_node(const node_options& options);
  ~python_node();
  python_node(const python_node&) = delete;
  python_node& operator=(const python_node&) = delete;

  std::string id() const;
  std::vector<std::string> addresses() const;
  std::optional<std::string> observed_address();
  std::string listen(const std::string& where);
  std::string connect(const std::string& where, const std::optional<std::string>& expected_id);
  double ping(const std::string& target);
  py::bytes call(const std::string& target, int opcode, const py::bytes& data);
  void add_handler(int opcode, py::function handler);

  void bootstrap(const std::vector<std::string>& uris);
  std::size_t put(const py::object& key, const py::bytes& value);
  std::optional<py::bytes> get(const py::object& key);
  py::list find_node(const std::string& id);
  // Compare-and-swap: (written, the key's version now, its value or None).
  py::tuple cas(const py::object& key, std::uint64_t expected_version, const py::bytes& value);
  // A lease on key: the fencing token (kadnet.Error "locked ..." while another node holds it).
  std::uint64_t lock(const py::object& key, double lease_seconds);
  void renew(const py::object& key, std::uint64_t token, double lease_seconds);
  void unlock(const py::object& key, std::uint64_t token);

  void shout(const py::bytes& data);
  std::size_t speak(const py::bytes& data);
  void whisper(const std::string& target_id, const py::bytes& data, bool sealed);
  void on_shout(py::function handler);
  void on_speak(py::function handler);
  void on_whisper(py::function handler);

  // Sends a file (PROTOCOL.md 9.7) to a URI or NodeId over any transport; returns what was sent
  // once the receiver verified and stored it. Raises kadnet.Error with the receiver's reason.
  py::dict send_file(const std::string& target, const std::string& path);
  // handler(sender_id, name, path, error): once per transfer a peer starts (name as offered, ''
  // when it ended before its offer); path is where the file is stored (None when it was not:
  // no inbox, a refusal, a failure), error None or why not. Replaces the last handler.
  void on_file(py::function handler);

  // A byte stream to a URI or NodeId whose header names `protocol` (PROTOCOL.md 9.6).
  std::unique_ptr<python_stream> open_stream(const std::string& target, const std::string& protocol);
  // The next stream a peer opens for `protocol`, waiting up to `timeout` seconds (None: until one
  // comes); None when the time ran out. The first call makes the node serve the protocol.
  std::optional<std::unique_ptr<python_stream>> accept_stream(const std::string& protocol, std::optional<double> timeout);

  // Ends every session and the node's thread; later calls raise kadnet.Error.
  void stop();

 private:
  node& live();
  // Takes the streams peers open as file transfers: into `inbox` (prepare_inbox), or, with
  // none, refused with a reason rather than left unanswered.
  void receive_files(std::optional<std::filesystem::path> inbox);
  // live(), for a call that blocks: not from the node's own thread (its handlers).
  node& waitable();

  std::optional<bindings::threaded_node> node_;
  std::unique_ptr<bindings::file_inbox> files_;
  std::unique_ptr<bindings::stream_acceptor> acceptor_;  // stopped before the node stops
  std::shared_ptr<bindings::stream_list> streams_;           // closed likewise
  std::mutex on_file_mutex_;
  std::shared_ptr<held_callable> on_file_;
};

}  // namespace kadnet::python
