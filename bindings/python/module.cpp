// The `kadnet` Python module: kadnet.Node and kadnet.Error (tests/python/test_bindings.py shows
// every call; README.md has an example).
#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/python/python_node.hpp"
#include "bindings/python/python_stream.hpp"

namespace py = pybind11;
using kadnet::python::node_options;
using kadnet::python::python_node;
using kadnet::python::python_stream;

PYBIND11_MODULE(kadnet, m) {
  m.doc() = "kadnet: peer-to-peer nodes on a Kademlia DHT (Ed25519 identities, sealed sessions over tcp://, udp:// and ws://).";
  py::register_exception<kadnet::python::error>(m, "Error");

  m.def("text_key", [](const std::string& text) {
    auto key = kadnet::text_key(text).bytes();
    return py::bytes(reinterpret_cast<const char*>(key.data()), key.size());
  }, py::arg("text"), "The 32-byte DHT key of a text key: BLAKE2b-256 of its UTF-8 bytes.");

  py::class_<python_stream>(m, "Stream", R"(A reliable, ordered byte stream to a peer, over any transport.

Made by Node.open_stream and Node.accept_stream. One read and one write may wait at once (from
different threads); more wait their turn. Use it as a context manager, or call close().)")
      .def_property_readonly("peer", &python_stream::peer, "The peer's NodeId, 64 hex digits.")
      .def_property_readonly("protocol", &python_stream::protocol, "The protocol its opener named ('' is the default).")
      .def("read", &python_stream::read, py::arg("max_bytes") = 65536,
           "Up to max_bytes that arrived, waiting for at least one; b'' once the peer ended its direction\n"
           "and everything was read. kadnet.Error when the stream failed (reset, session lost, protocol not served).")
      .def("write", &python_stream::write, py::arg("data"),
           "Writes every byte, waiting while the peer's window is full.")
      .def("shutdown", &python_stream::shutdown, "Ends this side's direction: the peer reads b'' after the last byte.")
      .def("close", &python_stream::close, "shutdown(), and stops reading; a read or write waiting ends with kadnet.Error.")
      .def("__enter__", [](python_stream& s) -> python_stream& { return s; }, py::return_value_policy::reference)
      .def("__exit__", [](python_stream& s, py::args) { s.close(); });

  py::class_<python_node>(m, "Node", R"(A kadnet node with its own I/O thread.

Calls block until done (other Python threads run meanwhile). Handlers run on the node's thread,
one at a time; a plugin handler's exception answers the caller NACK handler_failed.
Use it as a context manager, or call stop().)")
      .def(py::init([](std::vector<std::string> listen, std::optional<std::string> identity,
                       std::optional<std::string> data_dir, bool dht, double request_timeout,
                       std::optional<std::vector<std::string>> compression,
                       std::optional<std::size_t> contacts_per_prefix, std::optional<std::string> inbox) {
             node_options o{std::move(listen), std::move(identity), std::move(data_dir), dht, request_timeout,
                            std::move(compression), contacts_per_prefix, std::move(inbox)};
             return std::make_unique<python_node>(o);
           }),
           py::kw_only(), py::arg("listen") = std::vector<std::string>{}, py::arg("identity") = py::none(),
           py::arg("data_dir") = py::none(), py::arg("dht") = true, py::arg("request_timeout") = 5.0,
           py::arg("compression") = py::none(), py::arg("contacts_per_prefix") = py::none(),
           py::arg("inbox") = py::none(),
           R"(listen: URIs to accept sessions on ("tcp://127.0.0.1:0", "udp://...", "ws://..."; port 0: any).
identity: a key file, loaded or created (mode 0600). data_dir: keeps the identity, the DHT's
values and a routing snapshot across restarts. dht: take part in the DHT. request_timeout: in
seconds. compression: method names, most preferred first ([] for none). contacts_per_prefix:
contacts one /24 (/64) may have in a bucket; 0 for no limit (swarms on one machine need 0).
inbox: a folder (made if missing) that accepts the files any peer sends, 16 at once and up to 1 TiB
each (see on_file); without one, offers are refused with a reason.)")
      .def_property_readonly("id", &python_node::id, "This node's NodeId: its public key, 64 hex digits.")
      .def_property_readonly("addresses", &python_node::addresses, "The URIs the node listens on.")
      .def_property_readonly("observed_address", &python_node::observed_address,
                             "'ip:port' as the last peer to answer our ANNOUNCE saw us (behind a NAT: the NAT's), or None.")
      .def("listen", &python_node::listen, py::arg("uri"), "Listens on one more URI; returns it with its port.")
      .def("connect", &python_node::connect, py::arg("uri"), py::arg("expected_id") = py::none(),
           "Opens a session; returns the peer's NodeId (Error if it is not expected_id).")
      .def("ping", &python_node::ping, py::arg("target"), "Round trip to a URI or NodeId, in seconds.")
      .def("call", &python_node::call, py::arg("target"), py::arg("opcode"), py::arg("data"),
           "Calls a plugin RPC (opcode 64..255) at a URI or NodeId; returns its reply.")
      .def("add_handler", &python_node::add_handler, py::arg("opcode"), py::arg("handler"),
           "Serves a plugin opcode: handler(caller_id, data) returns bytes (or None).")
      .def("bootstrap", &python_node::bootstrap, py::arg("uris"),
           "Joins the DHT through the nodes at these URIs.")
      .def("put", &python_node::put, py::arg("key"), py::arg("value"),
           "Stores value under key (a str is hashed, bytes are 32); returns how many replicas stored it.")
      .def("get", &python_node::get, py::arg("key"), "The value under key, or None when no node has it.")
      .def("find_node", &python_node::find_node, py::arg("id"),
           "The k closest nodes to an id that answered: [(id, [uri, ...]), ...], closest first.")
      .def("cas", &python_node::cas, py::arg("key"), py::arg("expected_version"), py::arg("value"),
           "Compare-and-swap: writes value as version expected_version + 1 if the key is at expected_version\n"
           "(0: nothing stored), decided by a majority of its replicas. Returns (written, version, value): the\n"
           "key's version and value now, ours or the one that won.")
      .def("lock", &python_node::lock, py::arg("key"), py::arg("lease_seconds"),
           "Takes a lease on key; returns its fencing token. Error 'locked ...' while another node holds it.")
      .def("renew", &python_node::renew, py::arg("key"), py::arg("token"), py::arg("lease_seconds"),
           "Starts the lease of grant `token` again.")
      .def("unlock", &python_node::unlock, py::arg("key"), py::arg("token"), "Releases grant `token`.")
      .def("shout", &python_node::shout, py::arg("data"), "Broadcasts to every node of the network (signed).")
      .def("speak", &python_node::speak, py::arg("data"), "Sends to every direct peer; returns how many took it.")
      .def("whisper", &python_node::whisper, py::arg("target_id"), py::arg("data"), py::arg("sealed") = true,
           "Sends to one node, found through the DHT if need be; sealed to its key unless sealed=False.")
      .def("on_shout", &python_node::on_shout, py::arg("handler"), "handler(origin_id, data, hops) for each shout.")
      .def("on_speak", &python_node::on_speak, py::arg("handler"),
           "handler(origin_id, from_id, data) for each speak; returning True forwards it to our other peers.")
      .def("on_whisper", &python_node::on_whisper, py::arg("handler"), "handler(sender_id, data, was_sealed).")
      .def("send_file", &python_node::send_file, py::arg("target"), py::arg("path"),
           "Sends a file to a URI or NodeId (any transport); returns {name, size, sent, resumed_from, blake2b}\n"
           "once the receiver verified and stored it, which resumes a transfer cut off before.")
      .def("on_file", &python_node::on_file, py::arg("handler"),
           "handler(sender_id, name, path, error) once per transfer a peer starts: name as offered ('' when\n"
           "it ended before its offer), path where the file is stored, or None and error saying why not\n"
           "(a node without an inbox refuses every offer). Replaces the last handler.")
      .def("open_stream", &python_node::open_stream, py::arg("target"), py::arg("protocol") = "",
           py::keep_alive<0, 1>(),
           "Opens a byte stream to a URI or NodeId for `protocol` (0-255 bytes of UTF-8); the peer hands it to\n"
           "an acceptor of that protocol, or refuses it and the first read raises kadnet.Error.")
      .def("accept_stream", &python_node::accept_stream, py::arg("protocol") = "", py::arg("timeout") = py::none(),
           py::keep_alive<0, 1>(),
           "The next stream a peer opens for `protocol`, waiting up to `timeout` seconds (None: until one\n"
           "comes); None when the time ran out. From the first call on, this node serves the protocol: its\n"
           "streams wait to be accepted, while a stream of a protocol never asked for is refused ('' is\n"
           "always served). File transfers use their own protocol and never show up here.")
      .def("stop", &python_node::stop, "Ends every session and the node's thread.")
      .def("__enter__", [](python_node& n) -> python_node& { return n; }, py::return_value_policy::reference)
      .def("__exit__", [](python_node& n, py::args) { n.stop(); });
}
