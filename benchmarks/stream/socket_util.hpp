#pragma once
// Small POSIX socket helpers for the kernel baselines (TCP, raw UDP) on 127.0.0.1.
#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <optional>

namespace kadnet::bench {

sockaddr_in loopback_address(std::uint16_t port);
// A socket of `type` bound to 127.0.0.1:0; throws std::runtime_error naming the failing call.
int bound_loopback_socket(int type);
std::uint16_t local_port(int fd);
// SO_SNDTIMEO and SO_RCVTIMEO: blocking calls return (EAGAIN) at least this often.
void set_io_timeouts(int fd, std::chrono::milliseconds timeout);
void set_buffers(int fd, int bytes);
// The kernel's count of UDP datagrams dropped because a socket's receive buffer was full
// (RcvbufErrors in /proc/net/snmp; system-wide); nullopt when unreadable.
std::optional<std::uint64_t> udp_receive_buffer_drops();

// Closes a descriptor when it goes out of scope.
class fd_guard {
 public:
  explicit fd_guard(int fd = -1) : fd_(fd) {}
  ~fd_guard();
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  int get() const { return fd_; }
  void reset(int fd);

 private:
  int fd_;
};

}  // namespace kadnet::bench
