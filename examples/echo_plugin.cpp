// Two kadnet nodes in one process: one serves a plugin RPC, the other calls it.
#include <cctype>
#include <iostream>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <kadnet/kadnet.hpp>

namespace asio = boost::asio;

constexpr std::uint8_t shout_back = 64;  // plugin opcodes are 64..255

asio::awaitable<void> call_it(kadnet::node& client, kadnet::uri server, kadnet::node& server_node) {
  std::string text = "hello, kadnet";
  kadnet::reply r = co_await client.async_call(server, shout_back,
                                               kadnet::byte_vector(text.begin(), text.end()),
                                               asio::use_awaitable);
  std::cout << "reply: " << std::string(r.data.begin(), r.data.end()) << "\n";
  client.stop();
  server_node.stop();
}

int main() {
  asio::io_context io;
  kadnet::node server(io.get_executor()), client(io.get_executor());

  // A plugin: upper-cases what it is sent. Throwing here would answer NACK "handler failed".
  server.add_handler(shout_back, [](const kadnet::node_id&, kadnet::byte_span in) {
    kadnet::byte_vector out(in.begin(), in.end());
    for (auto& c : out) c = static_cast<std::uint8_t>(std::toupper(c));
    return out;
  });
  kadnet::uri where = server.listen("tcp://127.0.0.1:0");
  std::cout << "server " << server.id().to_hex() << " on " << where.to_string() << "\n";

  asio::co_spawn(io, call_it(client, where, server), asio::detached);
  io.run();
}
