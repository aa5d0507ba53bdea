// The WebSocket transport (ws://) at its edges: what a node does with visitors that are not
// kadnet peers, and with servers that are not kadnet nodes. Its ordinary behaviour (calls,
// DHT, broadcast) runs in the suites parameterised over every transport.
#include <gtest/gtest.h>

#include <future>
#include <string>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "kadnet/core/errors.hpp"
#include "tests/support/loopback_nodes.hpp"
#include "kadnet/transports/node.hpp"

namespace kadnet {
namespace {

namespace asio = boost::asio;
namespace websocket = boost::beast::websocket;
using asio::ip::tcp;
using boost::system::error_code;
using testing::loopback_nodes;
using testing::wait;
using namespace std::chrono_literals;

tcp::endpoint endpoint_of(const uri& u) { return {asio::ip::make_address(u.host), u.port}; }

error_code ping(node& from, const peer_ref& to) {
  return std::get<0>(wait<error_code, std::chrono::microseconds>([&](auto h) { from.async_ping(to, h); }));
}

// Reads until the server closes the connection; what arrived, and whether it closed within
// `limit` (a bound for the test, not a synchronisation).
struct read_outcome {
  std::string text;
  bool closed = false;
};
read_outcome read_until_closed(tcp::socket& socket, std::chrono::seconds limit) {
  auto outcome = std::async(std::launch::async, [&socket] {
    read_outcome r;
    char buffer[4096];
    for (;;) {
      error_code ec;
      std::size_t n = socket.read_some(asio::buffer(buffer), ec);
      r.text.append(buffer, n);
      if (ec) {
        r.closed = true;
        return r;
      }
    }
  });
  if (outcome.wait_for(limit) != std::future_status::ready) {
    socket.close();  // ends the read so that the future can be collected
    return {outcome.get().text, false};
  }
  return outcome.get();
}

TEST(WebSocket, APlainHttpRequestGetsUpgradeRequiredAndTheNodeServesOn) {
  loopback_nodes net("ws");
  net.add();
  asio::io_context io;
  tcp::socket browser(io);
  browser.connect(endpoint_of(net.address(0)));
  asio::write(browser, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: example\r\n\r\n")));
  auto r = read_until_closed(browser, 10s);
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.text.rfind("HTTP/1.1 426", 0), 0u) << r.text;
  EXPECT_NE(r.text.find("kadnet"), std::string::npos);
  // The visit cost the node nothing: a peer still gets in.
  auto& peer = net.add();
  EXPECT_FALSE(ping(peer, net.address(0)));
}

TEST(WebSocket, AConnectionSilentThroughTheHandshakeTimeoutIsClosed) {
  loopback_nodes net("ws");
  core::node_config config;
  config.handshake_timeout = 300ms;
  net.add(config);
  asio::io_context io;
  tcp::socket idle(io);
  idle.connect(endpoint_of(net.address(0)));
  auto r = read_until_closed(idle, 20s);
  EXPECT_TRUE(r.closed) << "the node still holds a connection that never asked for an upgrade";
  EXPECT_TRUE(r.text.empty());
}

// A WebSocket server that accepts anyone but is not a kadnet node (no "kadnet" subprotocol).
class foreign_websocket_server {
 public:
  foreign_websocket_server() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this] {
      error_code ec;
      tcp::socket socket = acceptor_.accept(ec);
      if (ec) return;
      websocket::stream<tcp::socket> ws(std::move(socket));
      ws.accept(ec);
      boost::beast::flat_buffer buffer;
      ws.read(buffer, ec);  // until the dialer gives up
    });
  }
  ~foreign_websocket_server() {
    error_code ignored;
    acceptor_.close(ignored);
    thread_.join();
  }
  uri address() const { return {"ws", "127.0.0.1", acceptor_.local_endpoint().port()}; }

 private:
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

TEST(WebSocket, AServerThatIsNotAKadnetNodeIsNotTakenForOne) {
  foreign_websocket_server foreign;
  loopback_nodes net("ws");
  auto& n = net.add();
  EXPECT_EQ(ping(n, foreign.address()), core::errc::handshake_failed);
}

// A WebSocket client that upgrades properly (asking for "kadnet"), then misbehaves.
struct websocket_visitor {
  explicit websocket_visitor(const uri& node) : ws(io) {
    asio::connect(ws.next_layer(), std::vector<tcp::endpoint>{endpoint_of(node)});
    ws.set_option(websocket::stream_base::decorator(
        [](websocket::request_type& req) { req.set(boost::beast::http::field::sec_websocket_protocol, "kadnet"); }));
    websocket::response_type response;
    ws.handshake(response, "127.0.0.1", "/");
    protocol = std::string(response[boost::beast::http::field::sec_websocket_protocol]);
  }
  // Whether the node ended the connection within the test's bound.
  bool closed_by_node() {
    auto done = std::async(std::launch::async, [this] {
      boost::beast::flat_buffer buffer;
      error_code ec;
      while (!ec) ws.read(buffer, ec);
      return true;
    });
    if (done.wait_for(20s) == std::future_status::ready) return done.get();
    error_code ignored;
    ws.next_layer().close(ignored);
    done.get();
    return false;
  }
  asio::io_context io;
  websocket::stream<tcp::socket> ws;
  std::string protocol;
};

TEST(WebSocket, ATextMessageEndsTheLink) {
  loopback_nodes net("ws");
  net.add();
  websocket_visitor visitor(net.address(0));
  EXPECT_EQ(visitor.protocol, "kadnet");
  visitor.ws.text(true);
  visitor.ws.write(asio::buffer(std::string("hello?")));
  EXPECT_TRUE(visitor.closed_by_node());
  auto& peer = net.add();
  EXPECT_FALSE(ping(peer, net.address(0)));
}

TEST(WebSocket, AMessageBeyondTheLimitEndsTheLink) {
  loopback_nodes net("ws");
  net.add();
  websocket_visitor visitor(net.address(0));
  visitor.ws.binary(true);
  std::vector<std::uint8_t> big(64 * 1024 + 1, 0x16);
  error_code ec;
  visitor.ws.write(asio::buffer(big), ec);  // the node may close while it is still being written
  EXPECT_TRUE(visitor.closed_by_node());
  auto& peer = net.add();
  EXPECT_FALSE(ping(peer, net.address(0)));
}

TEST(WebSocket, StoppingANodeEndsItsDialStillInTheUpgrade) {
  // A listener that accepts and never answers: the dial waits in its upgrade.
  asio::io_context io;
  tcp::acceptor silent(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  loopback_nodes net("ws");
  auto& n = net.add();
  auto result = std::make_shared<std::promise<error_code>>();
  n.async_ping(uri{"ws", "127.0.0.1", silent.local_endpoint().port()},
               [result](error_code ec, std::chrono::microseconds) { result->set_value(ec); });
  tcp::socket accepted = silent.accept();  // the dial is connected and has sent its upgrade
  n.async_stop(asio::use_future).get();
  auto f = result->get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready) << "the dial outlived its node's stop()";
  EXPECT_EQ(f.get(), core::errc::shutting_down);
}

}  // namespace
}  // namespace kadnet
