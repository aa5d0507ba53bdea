#pragma once
// A UDP relay on 127.0.0.1 that impairs what it forwards, for transports with no loss injection
// of their own (UDT). A client sends to client_port(); the relay forwards each datagram from
// another socket of its own to `server`, and what the server sends back to that socket goes to
// the client. Each direction applies the benchmark's impairment rule (transfer.hpp), the same
// rule transports::udp_port applies to a kadnet node's sends: lost with probability `loss`, else
// held back `reorder_delay` with probability `reorder`; client->server draws from a
// std::mt19937_64 seeded `seed`, server->client from one seeded `seed + 1`.
//
// One thread moves datagrams in batches (recvmmsg/sendmmsg); it costs CPU on the same cores as
// the endpoints, which is why a like-for-like comparison runs both transports through it.
#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "benchmarks/stream/transfer.hpp"

namespace kadnet::bench {

class impair_relay {
 public:
  struct direction_counters {
    std::uint64_t in = 0, lost = 0, reordered = 0, out = 0, send_drops = 0;
  };

  impair_relay(const sockaddr_in& server, const impairment& path);
  ~impair_relay();
  impair_relay(const impair_relay&) = delete;
  impair_relay& operator=(const impair_relay&) = delete;

  std::uint16_t client_port() const { return client_port_; }
  void start();
  void stop();
  // Valid once stopped.
  const direction_counters& to_server() const { return counters_[0]; }
  const direction_counters& to_client() const { return counters_[1]; }

 private:
  void run();

  impairment path_;
  sockaddr_in server_{};
  int client_side_ = -1, server_side_ = -1;  // sockets facing the client and the server
  std::uint16_t client_port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  direction_counters counters_[2];
};

}  // namespace kadnet::bench
