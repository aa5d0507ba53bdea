#include "kadnet/transports/udp_port.hpp"

#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "kadnet/core/wire/packet.hpp"

namespace kadnet::transports {

namespace asio = boost::asio;
using asio::ip::udp;

namespace {
constexpr std::size_t batch = 64;                  // datagrams per recvmmsg/sendmmsg call
constexpr std::size_t receive_buffer = 2048;       // above the 1,200-byte limit: oversize is seen
// With UDP GRO the kernel hands over a run of datagrams from one sender as one message of up to
// 64 KiB (split here by the segment size it reports): fewer, larger messages per call.
constexpr std::size_t gro_batch = 32;
constexpr std::size_t gro_receive_buffer = 65536;
constexpr int socket_buffer_bytes = 4 << 20;       // what we ask the kernel for (it may cap it)
constexpr std::size_t max_gso_segments = 64;       // the kernel's UDP_MAX_SEGMENTS
constexpr std::size_t max_gso_bytes = 65000;       // one GSO message stays below 64 KiB
}  // namespace

udp_port::udp_port(const executor& ex, const udp::endpoint& bind_to) : socket_(ex), held_timer_(ex) {
  boost::system::error_code ec;
  socket_.open(bind_to.protocol(), ec);
  if (!ec) socket_.bind(bind_to, ec);
  if (ec) throw std::runtime_error("cannot bind udp://" + bind_to.address().to_string() + ":" +
                                   std::to_string(bind_to.port()) + ": " + ec.message());
  socket_.non_blocking(true);
  socket_.set_option(asio::socket_base::receive_buffer_size(socket_buffer_bytes), ec);
  socket_.set_option(asio::socket_base::send_buffer_size(socket_buffer_bytes), ec);
  int on = 1;
  gro_ = ::setsockopt(socket_.native_handle(), SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
  // ICMP errors (port unreachable) on the error queue, naming the address sent to: a dial to a
  // port nobody listens on fails at once, as over TCP. (Both options on an IPv6 socket: its
  // IPv4-mapped traffic gets ICMPv4.)
  if (bind_to.address().is_v6()) ::setsockopt(socket_.native_handle(), SOL_IPV6, IPV6_RECVERR, &on, sizeof on);
  ::setsockopt(socket_.native_handle(), SOL_IP, IP_RECVERR, &on, sizeof on);
}

udp::endpoint udp_port::local_endpoint() const { return socket_.local_endpoint(); }

void udp_port::start(datagram_handler handler, std::function<void()> batch_done, unreachable_handler unreachable) {
  handler_ = std::move(handler);
  batch_done_ = std::move(batch_done);
  unreachable_ = std::move(unreachable);
  wait_readable();
}

void udp_port::close() {
  closed_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
  held_timer_.cancel();
  held_.clear();
}

void udp_port::set_impairment(const udp_impairment& impairment) {
  impairment_.reset();
  if (impairment.active()) impairment_ = std::make_unique<impaired>(impaired{impairment, std::mt19937_64(impairment.seed)});
}

void udp_port::wait_readable() {
  socket_.async_wait(udp::socket::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
    if (self->closed_ || ec) return;
    // A wake with nothing to read is an ICMP error on the queue (it keeps the socket signalled
    // until read); reading the queue on every wake would cost a system call per batch.
    if (!self->drain()) self->drain_errors();
    if (!self->closed_ && self->batch_done_) self->batch_done_();
    if (!self->closed_) self->wait_readable();
  });
}

void udp_port::drain_errors() {
  // Bounded, like drain(): what is left wakes the next wait at once.
  for (int round = 0; round < 64 && !closed_; ++round) {
    sockaddr_storage offender_address{};
    alignas(cmsghdr) std::array<char, 512> control{};
    std::array<std::uint8_t, 64> payload;  // the start of what we sent; not needed
    iovec iov{payload.data(), payload.size()};
    msghdr m{};
    m.msg_name = &offender_address;
    m.msg_namelen = sizeof offender_address;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control.data();
    m.msg_controllen = control.size();
    if (::recvmsg(socket_.native_handle(), &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return;
    bool refused = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      if (!((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
            (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)))
        continue;
      sock_extended_err e;
      std::memcpy(&e, CMSG_DATA(c), sizeof e);
      const bool from_icmp = e.ee_origin == SO_EE_ORIGIN_ICMP || e.ee_origin == SO_EE_ORIGIN_ICMP6;
      refused = refused || (from_icmp && e.ee_errno == ECONNREFUSED);
    }
    if (!refused || m.msg_namelen == 0) continue;  // other errors (a PMTU change, ...) say nothing here
    ++counters_.unreachable_in;
    udp::endpoint destination;
    std::memcpy(destination.data(), &offender_address, std::min<std::size_t>(m.msg_namelen, destination.capacity()));
    destination.resize(m.msg_namelen);
    if (unreachable_) unreachable_(address_bytes(destination));
  }
}

bool udp_port::drain() {
  if (gro_) return drain_batches<gro_batch, gro_receive_buffer>();
  return drain_batches<batch, receive_buffer>();
}

template <std::size_t messages_per_call, std::size_t buffer_size>
bool udp_port::drain_batches() {
  // Up to a few batches per wake-up, so that one busy socket cannot starve a node's timers.
  // The batch (buffers and headers) is the thread's, set up once: most wakes find a datagram or
  // two, and building every header, address and control buffer of the batch on each wake cost
  // more than reading them. Only the headers the last call filled are set up again. The buffers
  // are left uninitialised: a page of them costs memory only once a datagram was written into it.
  struct receive_batch {
    std::unique_ptr<std::array<std::uint8_t, buffer_size>[]> buffers{new std::array<std::uint8_t, buffer_size>[messages_per_call]};
    std::array<mmsghdr, messages_per_call> messages;
    std::array<iovec, messages_per_call> iov;
    std::array<sockaddr_storage, messages_per_call> from;
    alignas(cmsghdr) std::array<std::array<char, CMSG_SPACE(sizeof(int))>, messages_per_call> control;
    std::size_t filled = 0;  // headers the last call wrote into
    // The kernel rewrites a header's lengths and flags. Every header asks for the control
    // message, which only a socket with UDP GRO on fills.
    void prepare(std::size_t i) {
      iov[i] = {buffers[i].data(), buffers[i].size()};
      messages[i].msg_hdr = msghdr{};
      messages[i].msg_hdr.msg_iov = &iov[i];
      messages[i].msg_hdr.msg_iovlen = 1;
      messages[i].msg_hdr.msg_name = &from[i];
      messages[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      messages[i].msg_hdr.msg_control = control[i].data();
      messages[i].msg_hdr.msg_controllen = control[i].size();
    }
    receive_batch() {
      for (std::size_t i = 0; i < messages_per_call; ++i) prepare(i);
    }
  };
  static thread_local receive_batch batch_state;
  auto& [buffers, messages, iov, from, control, filled] = batch_state;
  for (int round = 0; round < 4 && !closed_; ++round) {
    for (; filled > 0; --filled) batch_state.prepare(filled - 1);
    int n = ::recvmmsg(socket_.native_handle(), messages.data(), messages_per_call, MSG_DONTWAIT, nullptr);
    if (n <= 0) return round > 0;
    filled = static_cast<std::size_t>(n);
    for (int i = 0; i < n && !closed_; ++i) {
      const std::size_t size = messages[i].msg_len;
      // The segment size of a coalesced run (every datagram of it that size, the last one at
      // most); without the control message, the message is one datagram.
      std::size_t segment = size;
      for (cmsghdr* c = CMSG_FIRSTHDR(&messages[i].msg_hdr); c; c = CMSG_NXTHDR(&messages[i].msg_hdr, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
          int gso_size = 0;
          std::memcpy(&gso_size, CMSG_DATA(c), sizeof gso_size);
          if (gso_size > 0) segment = static_cast<std::size_t>(gso_size);
        }
      }
      udp::endpoint source;
      std::memcpy(source.data(), &from[i], std::min<std::size_t>(messages[i].msg_hdr.msg_namelen, source.capacity()));
      source.resize(messages[i].msg_hdr.msg_namelen);
      const byte_vector address = address_bytes(source);  // one sender for a whole coalesced run
      const bool truncated = messages[i].msg_hdr.msg_flags & MSG_TRUNC;
      for (std::size_t offset = 0; offset < size && !closed_; offset += segment) {
        const std::size_t length = std::min(segment, size - offset);
        ++counters_.datagrams_in;
        if (segment < size) ++counters_.coalesced_in;
        if (length > core::wire::max_datagram_size || truncated) {
          ++counters_.oversized_in;  // no kadnet datagram is larger: dropped before any parsing
          continue;
        }
        handler_(address, byte_span(buffers[i].data() + offset, length));
      }
    }
    if (static_cast<std::size_t>(n) < messages_per_call) return true;
  }
  return true;
}

void udp_port::send_packets(const udp::endpoint& to, byte_span packets) {
  if (closed_) return;
  if (impairment_) return send_impaired(to, packets);
  send_now(to, packets);
}

void udp_port::send_impaired(const udp::endpoint& to, byte_span packets) {
  const auto& imp = impairment_->rule;
  auto& rng = impairment_->rng;
  auto chance = [&](double p) { return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  const auto now = std::chrono::steady_clock::now();
  take_due(to, now);  // held ones to this address that are due lead the batch
  for (std::size_t offset = 0; offset + core::wire::packet_header_size <= packets.size();) {
    std::size_t length = core::wire::packet_header_size + ((std::size_t{packets[offset + 2]} << 8) | packets[offset + 3]);
    byte_span packet = packets.subspan(offset, std::min(length, packets.size() - offset));
    offset += length;
    if (chance(imp.loss)) {
      ++counters_.impaired_lost;
      continue;
    }
    int copies = chance(imp.duplicate) ? 2 : 1;
    counters_.impaired_duplicated += copies - 1;
    for (int k = 0; k < copies; ++k) {
      auto wait = imp.delay;
      if (imp.jitter.count() > 0)
        wait += std::chrono::microseconds(std::uniform_int_distribution<long>(0, imp.jitter.count())(rng));
      if (chance(imp.reorder)) {
        ++counters_.impaired_reordered;
        wait += imp.reorder_delay;
      }
      if (wait.count() == 0) survivors_.insert(survivors_.end(), packet.begin(), packet.end());
      else held_.emplace(now + wait, std::make_pair(to, byte_vector(packet.begin(), packet.end())));
    }
  }
  // The impairment decides each datagram's fate, not how many system calls carry the rest: they
  // leave in batches as unimpaired sends do (one sendmmsg each would cost a wake-up per datagram).
  send_now(to, survivors_);
  survivors_.clear();
  release_held();
}

void udp_port::take_due(const udp::endpoint& to, std::chrono::steady_clock::time_point now) {
  for (auto it = held_.begin(); it != held_.end() && it->first <= now;) {
    if (it->second.first != to) {
      ++it;
      continue;
    }
    survivors_.insert(survivors_.end(), it->second.second.begin(), it->second.second.end());
    it = held_.erase(it);
  }
}

void udp_port::release_held() {
  const auto now = std::chrono::steady_clock::now();
  while (!held_.empty() && held_.begin()->first <= now) {
    const udp::endpoint to = held_.begin()->second.first;
    take_due(to, now);  // those due to one address leave in one batch
    send_now(to, survivors_);
    survivors_.clear();
  }
  if (held_.empty() || closed_) return;
  // Later than due by up to the slack: a send to the same address in between takes it along.
  auto next = held_.begin()->first + udp_impairment::held_release_slack;
  if (held_timer_at_ && *held_timer_at_ <= next) return;
  held_timer_at_ = next;
  held_timer_.expires_at(next);
  held_timer_.async_wait([weak = std::weak_ptr<udp_port>(shared_from_this())](boost::system::error_code ec) {
    auto self = weak.lock();
    if (!self || ec || self->closed_) return;
    self->held_timer_at_.reset();
    self->release_held();
  });
}

void udp_port::send_now(const udp::endpoint& to, byte_span packets) {
  // One sendmmsg per batch. Where the kernel has UDP GSO, a run of equal-sized packets (a
  // stream's full data units) goes as one message the kernel segments: fewer, larger copies.
  std::array<mmsghdr, batch> messages{};
  std::array<iovec, batch> iov{};
  std::array<std::size_t, batch> segments{};
  alignas(cmsghdr) std::array<std::array<char, CMSG_SPACE(sizeof(std::uint16_t))>, batch> control{};
  auto length_at = [&](std::size_t offset) {
    return core::wire::packet_header_size + ((std::size_t{packets[offset + 2]} << 8) | packets[offset + 3]);
  };
  std::size_t offset = 0;
  while (offset + core::wire::packet_header_size <= packets.size()) {
    const std::size_t batch_start = offset;
    std::size_t count = 0;
    for (; count < batch && offset + core::wire::packet_header_size <= packets.size(); ++count) {
      const std::size_t length = length_at(offset);
      std::size_t run = 1;
      while (gso_ && run < max_gso_segments && (run + 1) * length <= max_gso_bytes &&
             offset + run * length + core::wire::packet_header_size <= packets.size() &&
             length_at(offset + run * length) == length)
        ++run;
      iov[count] = {const_cast<std::uint8_t*>(packets.data() + offset), run * length};
      messages[count].msg_hdr = msghdr{};
      messages[count].msg_hdr.msg_iov = &iov[count];
      messages[count].msg_hdr.msg_iovlen = 1;
      messages[count].msg_hdr.msg_name = const_cast<sockaddr*>(to.data());
      messages[count].msg_hdr.msg_namelen = static_cast<socklen_t>(to.size());
      segments[count] = run;
      if (run > 1) {
        messages[count].msg_hdr.msg_control = control[count].data();
        messages[count].msg_hdr.msg_controllen = control[count].size();
        cmsghdr* c = CMSG_FIRSTHDR(&messages[count].msg_hdr);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
        const auto size = static_cast<std::uint16_t>(length);
        std::memcpy(CMSG_DATA(c), &size, sizeof size);
      }
      offset += run * length;
    }
    std::size_t sent = 0;
    bool retried = false;
    while (sent < count) {
      ++counters_.send_calls;
      int n = ::sendmmsg(socket_.native_handle(), messages.data() + sent, static_cast<unsigned>(count - sent), MSG_DONTWAIT);
      if (n < 0 && segments[sent] > 1 && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT)) {
        // No GSO here (an old kernel, or a device without checksum offload): send plainly.
        gso_ = false;
        offset = batch_start;
        for (std::size_t k = 0; k < sent; ++k) offset += iov[k].iov_len;
        count = sent;
        break;
      }
      if (n < 0 && errno == ECONNREFUSED && !retried) {
        // An ICMP error for an earlier datagram (to anyone) fails one call; the error is consumed.
        retried = true;
        continue;
      }
      if (n <= 0) break;  // the kernel's buffer is full (or the address is unreachable)
      sent += static_cast<std::size_t>(n);
    }
    for (std::size_t k = 0; k < count; ++k) (k < sent ? counters_.datagrams_out : counters_.send_drops) += segments[k];
  }
}

byte_vector udp_port::address_bytes(const udp::endpoint& ep) {
  auto v6 = ep.address().is_v4() ? asio::ip::make_address_v6(asio::ip::v4_mapped, ep.address().to_v4())
                                  : ep.address().to_v6();
  auto b = v6.to_bytes();
  byte_vector out(b.begin(), b.end());
  out.push_back(static_cast<std::uint8_t>(ep.port() >> 8));
  out.push_back(static_cast<std::uint8_t>(ep.port()));
  return out;
}

udp::endpoint udp_port::endpoint_of(const byte_vector& address) const {
  asio::ip::address_v6::bytes_type b{};
  std::copy_n(address.begin(), 16, b.begin());
  auto v6 = asio::ip::make_address_v6(b);
  std::uint16_t port = static_cast<std::uint16_t>((address[16] << 8) | address[17]);
  if (v6.is_v4_mapped() && socket_.local_endpoint().address().is_v4())
    return udp::endpoint(asio::ip::make_address_v4(asio::ip::v4_mapped, v6), port);
  return udp::endpoint(v6, port);
}

}  // namespace kadnet::transports
