#pragma once
// The WebSocket transport (ws://): a node's session over a WebSocket connection, for peers that
// can only reach it through HTTP infrastructure (proxies, browsers' origins). The session's
// byte stream is exactly TCP's, carried in binary messages (PROTOCOL.md 10): the engine cannot
// tell the two apart. Boost.Beast does the HTTP upgrade and the framing.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "kadnet/transports/link.hpp"

namespace kadnet::transports {

struct websocket_limits {
  // The opening (HTTP upgrade) and closing handshakes must end within this, or the socket closes.
  std::chrono::milliseconds handshake_timeout{10000};
  // Bytes of the session's stream one binary message carries, at most, either way; a peer's
  // larger message closes the link.
  std::size_t max_message = 64 * 1024;
};

// Called once the opening handshake ended, with the link; on success it is ready to start().
using websocket_ready = std::function<void(boost::system::error_code, std::shared_ptr<link>)>;

// The server side of an accepted socket: reads the upgrade request, answers a plain HTTP
// request with 426 Upgrade Required, and accepts a WebSocket one (echoing the "kadnet"
// subprotocol when asked for it). The link may be closed before `ready` runs (the node stops).
std::shared_ptr<link> accept_websocket(boost::asio::ip::tcp::socket socket, const websocket_limits& limits,
                                       websocket_ready ready);

// The client side of a connected socket: the upgrade request to `host` (its Host header),
// asking for the "kadnet" subprotocol; a server that does not answer with it is not a kadnet
// node (errc::handshake_failed).
std::shared_ptr<link> dial_websocket(boost::asio::ip::tcp::socket socket, const std::string& host,
                                     const websocket_limits& limits, websocket_ready ready);

}  // namespace kadnet::transports
