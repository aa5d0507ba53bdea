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
//   auto where = b.listen(*kadnet::transports::parse_uri("tcp://127.0.0.1:0"));
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

#include "core/identity.hpp"
#include "core/node_config.hpp"
#include "core/node_engine.hpp"
#include "transports/completion.hpp"
#include "transports/dht_handle.hpp"
#include "transports/node_driver.hpp"
#include "transports/stream.hpp"
#include "transports/uri.hpp"

namespace kadnet {


using core::node_id;
using core::reply;
using transports::peer_ref;
using transports::uri;

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
  // std::runtime_error naming the URI when it cannot bind.
  uri listen(const uri& where);
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

  // Dials `where` and completes with the peer's NodeId once the handshake is done. With
  // `expected` set, a peer with another key fails with errc::unexpected_identity.
  template <typename Token>
  auto async_connect(uri where, std::optional<node_id> expected, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, node_id)>(
        [d = driver_](auto handler, uri where, std::optional<node_id> expected) {
          auto work = boost::asio::make_work_guard(
              boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, where = std::move(where), expected,
                                                h = std::move(handler), work = std::move(work)]() mutable {
            d->connect(std::move(where), expected,
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
  // peer said; errc::timeout when no reply came within the request timeout.
  template <typename Token>
  auto async_call(peer_ref target, std::uint8_t opcode, byte_vector payload, Token&& token) {
    return async_request(std::move(target), opcode,
                         core::wire::plugin_call{std::move(payload)}, std::forward<Token>(token));
  }

  // Sends a plugin message (opcode 64..255, at most about 1,150 bytes) once over the peer's UDP
  // session: unacknowledged and never resent, so it may be lost, duplicated or overtaken
  // (PROTOCOL.md 9.4). Completes when it was handed to the socket, or with errc::too_large,
  // errc::not_supported (a TCP session), errc::not_connected.
  template <typename Token>
  auto async_send_datagram(peer_ref target, std::uint8_t opcode, byte_vector payload, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [d = driver_](auto handler, peer_ref target, std::uint8_t opcode, byte_vector payload) {
          auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, target = std::move(target), opcode, payload = std::move(payload),
                                                    h = std::move(handler), work = std::move(work)]() mutable {
            auto shared = std::make_shared<decltype(h)>(std::move(h));
            d->send_datagram(std::move(target), opcode, std::move(payload), [d, shared](boost::system::error_code ec) {
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
        [this](auto handler, peer_ref target) {
          auto start = std::chrono::steady_clock::now();
          async_request(std::move(target), static_cast<std::uint8_t>(core::wire::opcode::ping),
                        core::wire::ping{},
                        [this, h = std::move(handler), start](boost::system::error_code ec, reply) mutable {
                          auto rtt = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - start);
                          detail::complete(std::move(h), get_executor(), ec, rtt);
                        });
        },
        token, std::move(target));
  }

  // Any request by opcode and body (what async_call and async_ping are built on).
  template <typename Token>
  auto async_request(peer_ref target, std::uint8_t opcode, core::wire::message_body body, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, reply)>(
        [d = driver_](auto handler, peer_ref target, std::uint8_t opcode, core::wire::message_body body) {
          auto work = boost::asio::make_work_guard(
              boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, target = std::move(target), opcode,
                                                body = std::move(body), h = std::move(handler),
                                                work = std::move(work)]() mutable {
            d->request(std::move(target), opcode, std::move(body),
                       [d, h = std::move(h), work = std::move(work)](boost::system::error_code ec,
                                                                     reply r) mutable {
                         detail::complete(std::move(h), d->any_executor(), ec, std::move(r));
                       });
          });
        },
        token, std::move(target), opcode, std::move(body));
  }

  // Opens a byte stream to a peer over its UDP session (dialing udp:// URIs as needed).
  // Fails with errc::not_supported over TCP, errc::too_many beyond the session's stream limit.
  template <typename Token>
  auto async_open_stream(peer_ref target, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, stream)>(
        [d = driver_](auto handler, peer_ref target) {
          auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, target = std::move(target), h = std::move(handler),
                                                    work = std::move(work)]() mutable {
            d->open_stream(std::move(target), [d, h = std::move(h), work = std::move(work)](
                                                  boost::system::error_code ec,
                                                  std::shared_ptr<transports::stream_state> s) mutable {
              detail::complete(std::move(h), d->any_executor(), ec, s ? stream(d, std::move(s)) : stream());
            });
          });
        },
        token, std::move(target));
  }
  // Completes with the next stream a peer opens to this node.
  template <typename Token>
  auto async_accept_stream(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, stream)>(
        [d = driver_](auto handler) {
          auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler, d->any_executor()));
          boost::asio::dispatch(d->any_executor(), [d, h = std::move(handler), work = std::move(work)]() mutable {
            d->accept_stream([d, h = std::move(h), work = std::move(work)](
                                 boost::system::error_code ec, std::shared_ptr<transports::stream_state> s) mutable {
              detail::complete(std::move(h), d->any_executor(), ec, s ? stream(d, std::move(s)) : stream());
            });
          });
        },
        token);
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
  void register_handler(std::uint8_t opcode, core::plugin_handler handler);
  std::shared_ptr<transports::node_driver> driver_;
};

}  // namespace kadnet
