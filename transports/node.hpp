#pragma once
// kadnet::node — a peer in a kadnet network, driven by Boost.Asio.
//
// A node listens on zero or more URIs, dials peers on demand, keeps one secure session per
// peer, answers PING and SET_CONNECTION_OPT, and runs the application's plugin RPC handlers
// (opcodes 64..255). Every asynchronous operation takes any Asio completion token: a callback,
// boost::asio::use_future, or boost::asio::use_awaitable. Many nodes may share one io_context;
// each runs on its own strand, and the public functions may be called from any thread.
//
//   boost::asio::io_context io;
//   kadnet::node a(io.get_executor()), b(io.get_executor());
//   b.add_handler(64, [](const kadnet::core::node_id&, kadnet::byte_span in) {
//     return kadnet::byte_vector(in.begin(), in.end());            // echo
//   });
//   auto where = b.listen("tcp://127.0.0.1:0");
//   a.async_call(where, 64, kadnet::byte_vector{1, 2, 3},
//                [](boost::system::error_code ec, kadnet::core::reply r) { /* r.data */ });
//   io.run();
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "kadnet/core/identity.hpp"
#include "kadnet/core/node_config.hpp"
#include "kadnet/core/node_engine.hpp"
#include "kadnet/core/wire/stream_header.hpp"
#include "kadnet/transports/completion.hpp"
#include "kadnet/transports/dht_handle.hpp"
#include "kadnet/transports/node_driver.hpp"
#include "kadnet/transports/stream.hpp"
#include "kadnet/transports/uri.hpp"

namespace kadnet {


using core::node_id;
using core::reply;
using transports::message_counters;
using transports::peer_ref;
using transports::uri;

// How a WHISPER travels (PROTOCOL.md 5.7).
struct whisper_options {
  // Sealed to the target's key, so that only the target can read it (relays, captures and
  // anyone holding the session keys see ciphertext). Off: the payload goes as it is, still
  // inside the session's encryption.
  bool sealed = true;
};

// Initiations dispatch onto the node's strand (inline when already there); completions are
// always posted (transports/completion.hpp), so a handler never runs inside its initiating call.
class node {
 public:
  // A synchronous plugin handler returns the reply data; throwing sends NACK handler_failed.
  using sync_handler = std::function<byte_vector(const node_id& caller, byte_span payload)>;
  // An asynchronous one answers through `reply` later, from any thread, exactly once.
  using async_handler = core::plugin_handler;

  explicit node(boost::asio::any_io_executor ex, core::identity self = core::identity::generate(),
                core::node_config config = {}, transports::dht_settings dht = {});
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  const node_id& id() const { return driver_->identity().id(); }
  // The node's Kademlia DHT (put, get, find_node, bootstrap, buckets).
  dht_handle dht() const { return dht_handle(driver_); }
  boost::asio::any_io_executor get_executor() const { return driver_->any_executor(); }

  // Binds and starts accepting on a URI (port 0: any free port); returns the bound URI. Throws
  // std::runtime_error naming the URI when it cannot bind, std::logic_error once the node's stop
  // has run (stop() posts it to the strand).
  uri listen(const uri& where);
  // The same from text ("tcp://127.0.0.1:0"); throws std::invalid_argument saying what is wrong
  // with text that is no URI.
  uri listen(std::string_view where);
  std::vector<uri> listening() const { return driver_->listening(); }

  void add_handler(std::uint8_t opcode, sync_handler handler);
  // Receives the unreliable messages (async_send_datagram) of a plugin opcode, on the node's
  // strand. Messages with no handler are dropped.
  void add_datagram_handler(std::uint8_t opcode, std::function<void(const node_id& sender, byte_span payload)> handler);
  void add_async_handler(std::uint8_t opcode, async_handler handler);
  // Receives a line of text for each notable event (refusals, cut-off peers).
  void set_log(std::function<void(const std::string&)> log);
  // Drops, delays, reorders and duplicates what this node sends over UDP, seeded (tests and
  // benchmarks; see transports/udp_port.hpp).
  void set_udp_impairment(const transports::udp_impairment& impairment);
  // A partition, for tests: sessions with these peers are cut off now and whenever one comes up
  // again, over any transport (an empty list heals it). Completes once in force.
  template <typename Token>
  auto async_set_unreachable(std::vector<node_id> peers, Token&& token) {
    return boost::asio::async_initiate<Token, void()>(
        [d = driver_](auto handler, std::vector<node_id> peers) {
          boost::asio::dispatch(d->any_executor(), [d, peers = std::move(peers), h = std::move(handler)]() mutable {
            d->set_unreachable(std::move(peers));
            detail::complete(std::move(h), d->any_executor());
          });
        },
        token, std::move(peers));
  }

  // --- SPEAK, WHISPER and SHOUT (PROTOCOL.md 5.5–5.7) ---
  // Handlers run on the node's strand, one message at a time; setting one replaces the last.
  //
  // A SPEAK from a direct peer, each (origin, sequence) once: `origin` wrote it, `from_peer`
  // handed it to us (the same node unless someone forwarded it). Returning true forwards it, as
  // it is, to our other direct peers; without a handler nothing is forwarded.
  using speak_handler = transports::node_driver::speak_handler;
  // A WHISPER for this node: `sender` is the session's peer (whispers are never forwarded);
  // sealed ones arrive opened. One sealed to another key, or altered, is dropped and counted
  // (async_message_stats) — after the engine ACKed it: a receipt proves arrival, not reading.
  using whisper_handler = transports::node_driver::whisper_handler;
  // A SHOUT from anywhere in the network, each once: origin, sequence, hops, payload.
  using shout_handler = transports::node_driver::shout_handler;
  void on_speak(speak_handler handler);
  void on_whisper(whisper_handler handler);
  void on_shout(shout_handler handler);

  // Sends `payload` to every direct peer (every session this node has). Completes with how many
  // ACKed; ec is clear when at least one did (errc::not_connected with no peers).
  template <typename Token>
  auto async_speak(byte_vector payload, Token&& token) {
    return initiate<boost::system::error_code, std::size_t>(
        std::forward<Token>(token), [payload = std::move(payload)](transports::node_driver& d, auto done) mutable {
          d.speak(std::move(payload), std::move(done));
        });
  }

  // Sends `payload` to the node `target` alone, over the session with it or, without one, at an
  // address a DHT lookup finds for it (the answering key must be `target`'s). Completes once the
  // target's receipt matched the bytes sent: errc::receipt_mismatch if not, errc::peer_not_found
  // when the lookup does not find the target (or nobody can reach it), errc::own_id for our own
  // id, errc::bad_field for an id that is no Ed25519 key (nothing can be sealed to it, and no
  // node holds it).
  // Cancellable as async_call is (terminal and partial): a whisper cancelled before its session
  // came was never sent; one cancelled later may still be delivered.
  template <typename Token>
  auto async_whisper(node_id target, byte_vector payload, whisper_options options, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [d = driver_](auto handler, node_id target, byte_vector payload, whisper_options options) {
          const std::uint64_t call = cancellable_request(handler, d);
          auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, target, payload = std::move(payload), options, call,
                                                    h = std::move(handler), work = std::move(work)]() mutable {
            auto shared = std::make_shared<decltype(h)>(std::move(h));
            d->whisper(target, std::move(payload), options.sealed, call, [d, shared, work](boost::system::error_code ec) {
              detail::complete(std::move(*shared), d->any_executor(), ec);
            });
          });
        },
        token, target, std::move(payload), options);
  }
  template <typename Token>
  auto async_whisper(node_id target, byte_vector payload, Token&& token) {
    return async_whisper(target, std::move(payload), whisper_options{}, std::forward<Token>(token));
  }

  // Broadcasts `payload` to every node of the network, signed by this node (node.dht().shout).
  // Completes once the nodes it handed the shout to took it; the outcome names the shout's
  // sequence. errc::too_large beyond dht::broadcast_config::max_payload (16 KiB by default).
  template <typename Token>
  auto async_shout(byte_vector payload, Token&& token) {
    return dht().shout(std::move(payload), std::forward<Token>(token));
  }

  // Dials `where` and completes with the peer's NodeId once the handshake is done. With
  // `expected` set, a peer with another key fails with errc::unexpected_identity.
  template <typename Token>
  auto async_connect(uri where, std::optional<node_id> expected, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, node_id)>(
        [d = driver_](auto handler, uri where, std::optional<node_id> expected) {
          const std::uint64_t wait = cancellable_wait(handler, d);
          auto work = boost::asio::make_work_guard(
              boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, where = std::move(where), expected,
                                                h = std::move(handler), work = std::move(work), wait]() mutable {
            d->connect(std::move(where), expected, wait,
                       [d, h = std::move(h), work = std::move(work)](boost::system::error_code ec,
                                                                     node_id peer) mutable {
                         detail::complete(std::move(h), d->any_executor(), ec, peer);
                       });
          });
        },
        token, std::move(where), expected);
  }

  // Calls plugin RPC `opcode` (64..255) on a peer. Completes with the peer's reply: on ACK
  // ec is clear and reply.data holds the handler's answer; on NACK ec says why
  // (errc::unsupported_opcode, errc::handler_failed, errc::nack) and reply.code/.text what the
  // peer said; errc::timeout when no reply came within the request timeout. Throws
  // std::invalid_argument for an opcode below 64 (kadnet's own).
  template <typename Token>
  auto async_call(peer_ref target, std::uint8_t opcode, byte_vector payload, Token&& token) {
    check_plugin_opcode(opcode);  // throws here, not on the strand
    return async_request(std::move(target), opcode,
                         core::wire::plugin_call{std::move(payload)}, std::forward<Token>(token));
  }

  // Sends a plugin message (opcode 64..255, at most about 1,150 bytes) once over the peer's UDP
  // session: unacknowledged and never resent, so it may be lost, duplicated or overtaken
  // (PROTOCOL.md 9.4). Completes when it was handed to the socket, or with errc::too_large,
  // errc::not_supported (a TCP session), errc::not_connected.
  template <typename Token>
  auto async_send_datagram(peer_ref target, std::uint8_t opcode, byte_vector payload, Token&& token) {
    check_plugin_opcode(opcode);  // throws here, not on the strand
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [d = driver_](auto handler, peer_ref target, std::uint8_t opcode, byte_vector payload) {
          const std::uint64_t wait = cancellable_wait(handler, d);
          auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, target = std::move(target), opcode, payload = std::move(payload),
                                                    h = std::move(handler), work = std::move(work), wait]() mutable {
            auto shared = std::make_shared<decltype(h)>(std::move(h));
            d->send_datagram(std::move(target), opcode, std::move(payload), wait, [d, shared, work](boost::system::error_code ec) {
              detail::complete(std::move(*shared), d->any_executor(), ec);
            });
          });
        },
        token, std::move(target), opcode, std::move(payload));
  }

  // PING: completes with the round-trip time.
  template <typename Token>
  auto async_ping(peer_ref target, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::chrono::microseconds)>(
        [d = driver_](auto handler, peer_ref target) {
          // Holds the driver, not the node: the node may be gone when the reply comes.
          const std::uint64_t call = cancellable_request(handler, d);
          auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, d->any_executor()));
          auto start = std::chrono::steady_clock::now();
          boost::asio::dispatch(d->any_executor(), [d, target = std::move(target), h = std::move(handler),
                                                work = std::move(work), start, call]() mutable {
            d->request(std::move(target), static_cast<std::uint8_t>(core::wire::opcode::ping), core::wire::ping{}, call,
                       [d, h = std::move(h), work = std::move(work), start](boost::system::error_code ec, reply) mutable {
                         auto rtt = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::steady_clock::now() - start);
                         detail::complete(std::move(h), d->any_executor(), ec, rtt);
                       });
          });
        },
        token, std::move(target));
  }

  // Any request by opcode and body (what async_call and async_ping are built on).
  template <typename Token>
  auto async_request(peer_ref target, std::uint8_t opcode, core::wire::message_body body, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, reply)>(
        [d = driver_](auto handler, peer_ref target, std::uint8_t opcode, core::wire::message_body body) {
          const std::uint64_t call = cancellable_request(handler, d);
          auto work = boost::asio::make_work_guard(
              boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, target = std::move(target), opcode,
                                                body = std::move(body), h = std::move(handler),
                                                work = std::move(work), call]() mutable {
            d->request(std::move(target), opcode, std::move(body), call,
                       [d, h = std::move(h), work = std::move(work)](boost::system::error_code ec,
                                                                     reply r) mutable {
                         detail::complete(std::move(h), d->any_executor(), ec, std::move(r));
                       });
          });
        },
        token, std::move(target), opcode, std::move(body));
  }

  // Opens a byte stream to a peer over the session with it, on any transport (dialing the URI,
  // or reaching a NodeId as async_call does). Its header names `protocol` (PROTOCOL.md 9.6): the
  // peer hands the stream to an acceptor of that protocol, or refuses it, and then the stream's
  // reads fail with errc::protocol_not_served (writes the stream took before the refusal came
  // complete; later ones fail too). Fails with errc::too_many beyond the session's stream limit,
  // or with why no session could be had (as async_call: errc::timeout, errc::not_connected,
  // errc::shutting_down, ...). Throws std::invalid_argument for a protocol that is not 0–255
  // bytes of UTF-8 without control characters.
  template <typename Token>
  auto async_open_stream(peer_ref target, std::string protocol, Token&& token) {
    core::wire::check_stream_protocol(protocol);  // throws here, not on the strand
    return boost::asio::async_initiate<Token, void(boost::system::error_code, stream)>(
        [d = driver_](auto handler, peer_ref target, std::string protocol) {
          const std::uint64_t wait = cancellable_wait(handler, d);
          auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, target = std::move(target), protocol = std::move(protocol),
                                                    h = std::move(handler), work = std::move(work), wait]() mutable {
            d->open_stream(std::move(target), std::move(protocol), wait,
                           [d, h = std::move(h), work = std::move(work)](
                               boost::system::error_code ec, std::shared_ptr<transports::stream_state> s) mutable {
                             detail::complete(std::move(h), d->any_executor(), ec,
                                              s ? stream(d, std::move(s)) : stream());
                           });
          });
        },
        token, std::move(target), std::move(protocol));
  }
  // A stream of the default protocol, "".
  template <typename Token>
  auto async_open_stream(peer_ref target, Token&& token) {
    return async_open_stream(std::move(target), std::string(), std::forward<Token>(token));
  }
  // Completes with the next stream a peer opens for `protocol`. From the first call on, this
  // node serves the protocol: streams of it wait for an acceptor (up to a backlog of 256 per
  // protocol). A stream of a protocol nobody asked for is refused, except the default one, "",
  // which every node serves. Throws std::invalid_argument for a protocol that is not valid.
  template <typename Token>
  auto async_accept_stream(std::string protocol, Token&& token) {
    core::wire::check_stream_protocol(protocol);  // throws here, not on the strand
    return boost::asio::async_initiate<Token, void(boost::system::error_code, stream)>(
        [d = driver_](auto handler, std::string protocol) {
          const std::uint64_t waiter =
              d->cancellable(handler, [](transports::node_driver& n, std::uint64_t id) { n.cancel_accept(id); });
          auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, protocol = std::move(protocol), waiter, h = std::move(handler),
                                                    work = std::move(work)]() mutable {
            d->accept_stream(std::move(protocol), waiter, [d, h = std::move(h), work = std::move(work)](
                                                      boost::system::error_code ec,
                                                      std::shared_ptr<transports::stream_state> s) mutable {
              detail::complete(std::move(h), d->any_executor(), ec, s ? stream(d, std::move(s)) : stream());
            });
          });
        },
        token, std::move(protocol));
  }
  // A stream of the default protocol, "".
  template <typename Token>
  auto async_accept_stream(Token&& token) {
    return async_accept_stream(std::string(), std::forward<Token>(token));
  }

  // A snapshot of the node's sessions and counters, taken on its strand.
  template <typename Token>
  auto async_peers(Token&& token) {
    return boost::asio::async_initiate<Token, void(std::vector<core::node_engine::peer_info>)>(
        [d = driver_](auto handler) {
          boost::asio::dispatch(d->any_executor(), [d, h = std::move(handler)]() mutable {
            detail::complete(std::move(h), d->any_executor(), d->engine().peers());
          });
        },
        token);
  }
  // What became of the speaks, whispers and shouts that reached the node.
  template <typename Token>
  auto async_message_stats(Token&& token) {
    return boost::asio::async_initiate<Token, void(message_counters)>(
        [d = driver_](auto handler) {
          boost::asio::dispatch(d->any_executor(), [d, h = std::move(handler)]() mutable {
            detail::complete(std::move(h), d->any_executor(), d->message_stats());
          });
        },
        token);
  }
  template <typename Token>
  auto async_stats(Token&& token) {
    return boost::asio::async_initiate<Token, void(core::engine_counters)>(
        [d = driver_](auto handler) {
          boost::asio::dispatch(d->any_executor(), [d, h = std::move(handler)]() mutable {
            detail::complete(std::move(h), d->any_executor(), d->engine().stats());
          });
        },
        token);
  }

  // How the latest peer to answer this node's ANNOUNCE saw it, "ip:port" ("[ip]:port" for IPv6):
  // behind a NAT, the NAT's public address (STUN-like, PROTOCOL.md 5.13); nullopt before any did.
  template <typename Token>
  auto async_observed_address(Token&& token) {
    return boost::asio::async_initiate<Token, void(std::optional<std::string>)>(
        [d = driver_](auto handler) {
          boost::asio::dispatch(d->any_executor(), [d, h = std::move(handler)]() mutable {
            detail::complete(std::move(h), d->any_executor(), d->engine().observed_address());
          });
        },
        token);
  }

  // Closes listeners and sessions; pending operations fail with errc::shutting_down; with a
  // data directory the routing-table snapshot is saved. Also done by the destructor, which only
  // posts it: keep the io_context running until it has run (or await async_stop), since a
  // pending stream read or accept holds the node until it completes.
  void stop();
  // stop(), completing once it has run (e.g. before reopening the same data directory).
  template <typename Token>
  auto async_stop(Token&& token) {
    return boost::asio::async_initiate<Token, void()>(
        [d = driver_](auto handler) {
          boost::asio::dispatch(d->any_executor(), [d, h = std::move(handler)]() mutable {
            d->stop();
            detail::complete(std::move(h), d->any_executor());
          });
        },
        token);
  }

 private:
  // Runs `start(driver, done)` on the strand; calling `done(values...)` completes the operation
  // on the handler's executor.
  template <typename... Values, typename Token, typename Start>
  auto initiate(Token&& token, Start start) {
    return boost::asio::async_initiate<Token, void(Values...)>(
        [d = driver_, start = std::move(start)](auto handler) mutable {
          auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, start = std::move(start), h = std::move(handler),
                                                    work = std::move(work)]() mutable {
            auto shared = std::make_shared<decltype(h)>(std::move(h));
            start(*d, std::function<void(Values...)>([d, shared, work](Values... values) {
                    detail::complete(std::move(*shared), d->any_executor(), std::move(values)...);
                  }));
          });
        },
        token);
  }
  void register_handler(std::uint8_t opcode, core::plugin_handler handler);
  // Throws std::invalid_argument unless `opcode` is a plugin's (64..255).
  static void check_plugin_opcode(std::uint8_t opcode);
  // A request's id for cancel_request (node_driver::cancellable): terminal and partial
  // cancellation only, since the request may have run at the peer by then.
  template <typename Handler>
  static std::uint64_t cancellable_request(const Handler& handler, const std::shared_ptr<transports::node_driver>& d) {
    return d->cancellable(
        handler, [](transports::node_driver& n, std::uint64_t id) { n.cancel_request(id); },
        boost::asio::cancellation_type::terminal | boost::asio::cancellation_type::partial);
  }
  // An operation's id for cancel_wait: every cancellation type, since nothing of it has been
  // sent while it waits for its session (and once it has, it is complete).
  template <typename Handler>
  static std::uint64_t cancellable_wait(const Handler& handler, const std::shared_ptr<transports::node_driver>& d) {
    return d->cancellable(handler, [](transports::node_driver& n, std::uint64_t id) { n.cancel_wait(id); });
  }
  std::shared_ptr<transports::node_driver> driver_;
};

}  // namespace kadnet
