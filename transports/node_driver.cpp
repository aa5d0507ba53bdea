#include "kadnet/transports/node_driver.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

#include "kadnet/core/errors.hpp"
#include "kadnet/dht/memory_store.hpp"
#include "kadnet/transports/tcp_link.hpp"

namespace kadnet::transports {

namespace asio = boost::asio;
using asio::ip::tcp;
using core::errc;

// Accepted WebSocket connections still in their upgrade, at most: more are closed at once, so
// that idle sockets cannot pile up (each holds its buffers until the handshake timeout).
constexpr std::size_t max_opening_websockets = 1024;

std::optional<peer_ref> parse_peer_ref(std::string_view text, std::string* problem) {
  if (text.find("://") != std::string_view::npos) {
    auto u = parse_uri(text, problem);
    if (!u) return std::nullopt;
    return peer_ref(*u);
  }
  if (auto id = core::node_id::from_hex(text)) return peer_ref(*id);
  if (problem) *problem = "'" + std::string(text) + "' is neither a URI (tcp://, udp:// or ws://host:port) nor a NodeId (64 hex digits)";
  return std::nullopt;
}

static core::node_config with_dht(core::node_config config, bool dht) {
  config.serve_dht = dht;
  return config;
}

node_driver::node_driver(asio::any_io_executor ex, core::identity self, core::node_config config,
                         dht_settings dht)
    : strand_(asio::make_strand(ex)),
      self_(std::move(self)),
      engine_(self_, with_dht(std::move(config), dht.enabled)),
      timer_(strand_) {
  if (!dht.enabled) return;
  // The DHT is given steady time; its stored expiries and its shouts' dates (PROTOCOL.md 5.5)
  // are wall-clock times.
  const auto wall_offset = dht::wall_clock_offset(std::chrono::system_clock::now(), std::chrono::steady_clock::now());
  if (dht.data_dir) {
    auto sqlite = std::make_unique<dht::sqlite_store>(*dht.data_dir, dht.config.limits, wall_offset);
    sqlite_ = sqlite.get();
    store_ = std::move(sqlite);
    snapshot_interval_ = dht.snapshot_interval;
    next_snapshot_ = std::chrono::steady_clock::now() + snapshot_interval_;
  } else {
    store_ = std::make_unique<dht::memory_store>(dht.config.limits);
  }
  dht.config.broadcast.wall_offset = wall_offset;
  dht_ = std::make_unique<dht::dht_node>(self_, dht.config, *store_);
}

node_driver::~node_driver() { save_dht_snapshot(); }

uri node_driver::listen(const uri& where) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(where.host == "localhost" ? "127.0.0.1" : where.host, ec);
  if (ec) throw std::invalid_argument("cannot listen on " + where.to_string() + ": host must be an IP address");
  {
    std::lock_guard lock(acceptors_mutex_);
    if (stopped_listening_) throw std::logic_error("cannot listen on " + where.to_string() + ": the node has stopped");
  }
  if (where.scheme == "udp") return listen_udp(where, address);
  auto acceptor = std::make_shared<tcp::acceptor>(strand_);
  tcp::endpoint ep(address, where.port);
  acceptor->open(ep.protocol());
  acceptor->set_option(tcp::acceptor::reuse_address(true));
  acceptor->bind(ep, ec);
  if (ec) throw std::runtime_error("cannot listen on " + where.to_string() + ": " + ec.message());
  acceptor->listen(asio::socket_base::max_listen_connections);
  auto bound = acceptor->local_endpoint();
  const bool websocket = where.scheme == "ws";
  uri result{where.scheme, bound.address().to_string(), bound.port()};
  {
    std::lock_guard lock(acceptors_mutex_);
    if (stopped_listening_) {  // the stop ran meanwhile: it closed every acceptor but this one
      acceptor->close(ec);
      throw std::logic_error("cannot listen on " + where.to_string() + ": the node has stopped");
    }
    acceptors_.push_back(acceptor);
    bound_.push_back(result);
  }
  asio::dispatch(strand_, [self = shared_from_this(), acceptor, websocket] { self->accept_loop(acceptor, websocket); });
  // The engine belongs to the strand; listen() may be called from any thread.
  asio::dispatch(strand_, [self = shared_from_this(), text = result.to_string()] {
    self->engine_.announce_on(text);
  });
  return result;
}

uri node_driver::listen_udp(const uri& where, const asio::ip::address& address) {
  // Runs on the caller's thread, like the TCP listener: the port is created here and only
  // handed to the strand once it is bound.
  {
    std::lock_guard lock(acceptors_mutex_);
    for (const auto& b : bound_)
      if (b.scheme == "udp") throw std::invalid_argument("cannot listen on " + where.to_string() + ": this node already has its UDP socket (" + b.to_string() + ")");
  }
  auto port = std::make_shared<udp_port>(strand_, asio::ip::udp::endpoint(address, where.port));
  auto bound = port->local_endpoint();
  uri result{"udp", bound.address().to_string(), bound.port()};
  {
    std::lock_guard lock(acceptors_mutex_);
    bound_.push_back(result);
  }
  asio::dispatch(strand_, [self = shared_from_this(), port, text = result.to_string()] {
    if (self->stopped_) return port->close();  // node::stop() was posted before this
    // Sessions dialed from an ephemeral socket before this listen() end by their idle timeout.
    if (self->udp_) self->udp_->close();
    self->udp_ = port;
    self->start_udp({});
    self->engine_.announce_on(text);
  });
  return result;
}

void node_driver::set_unreachable(std::vector<core::node_id> peers) {
  unreachable_ = std::move(peers);
  // Every session with them: two nodes that dialed each other have two.
  for (const auto& p : engine_.peers())
    if (unreachable(p.peer)) engine_.cut_off(p.connection, errc::not_connected, "partitioned");
  pump();
}

void node_driver::set_udp_impairment(const udp_impairment& impairment) {
  udp_impairment_ = impairment;
  if (udp_) udp_->set_impairment(impairment);
}

void node_driver::start_udp(const asio::ip::udp::endpoint& bind_to) {
  if (!udp_) udp_ = std::make_shared<udp_port>(strand_, bind_to);
  udp_->set_impairment(udp_impairment_);
  std::weak_ptr<node_driver> weak = shared_from_this();
  udp_->start(
      [weak](const byte_vector& source, byte_span datagram) {
        if (auto self = weak.lock(); self && !self->stopped_) {
          self->engine_.begin_datagram_batch();
          self->engine_.on_datagram(std::chrono::steady_clock::now(), source, datagram);
        }
      },
      [weak] {
        if (auto self = weak.lock(); self && !self->stopped_) {
          self->engine_.end_datagram_batch(std::chrono::steady_clock::now());
          self->pump();
        }
      },
      [weak](const byte_vector& destination) {
        if (auto self = weak.lock(); self && !self->stopped_) self->on_udp_unreachable(destination);
      });
}

void node_driver::on_udp_unreachable(const byte_vector& destination) {
  // Only our plain dials still in their handshake end here: an ICMP error is unauthenticated,
  // and one forged against a live session must not end it (its idle timeout will, if the peer
  // is gone). Nor does a punched dial: a NAT that answers hellos before the peer's punch opened
  // it may send one, and the hello resent a moment later gets through.
  std::vector<core::connection_id> refused;
  for (core::connection_id c : refusable_dials_) {
    auto peer = datagram_peers_.find(c);
    if (peer != datagram_peers_.end() && udp_port::address_bytes(peer->second) == destination) refused.push_back(c);
  }
  for (core::connection_id c : refused) {
    refusable_dials_.erase(c);
    datagram_peers_.erase(c);
    engine_.on_transport_closed(c, asio::error::connection_refused);
  }
  if (!refused.empty()) pump();
}

void node_driver::transmit_datagrams(core::connection_id c) {
  auto it = datagram_peers_.find(c);
  if (it == datagram_peers_.end()) {
    // A session the engine accepted from a hello: its address is the hello's source.
    const byte_span address = engine_.transport_address(c);
    if (address.size() != 18 || !udp_) return;
    it = datagram_peers_.emplace(c, udp_->endpoint_of(byte_vector(address.begin(), address.end()))).first;
  }
  byte_vector packets = engine_.take_transmit(c);
  if (udp_ && !packets.empty()) udp_->send_packets(it->second, packets);
  if (engine_.wants_close(c)) {
    datagram_peers_.erase(it);
    engine_.on_transport_closed(c, {});
  }
}

void node_driver::dial_udp(const uri& where, std::optional<core::node_id> expected, const std::string& key) {
  auto self = shared_from_this();
  auto start = [self, key, expected](boost::system::error_code ec, asio::ip::udp::endpoint ep) {
    if (!ec && self->stopped_) ec = errc::shutting_down;
    if (!ec && !self->udp_) {
      try {
        self->start_udp(asio::ip::udp::endpoint(ep.address().is_v4() ? asio::ip::udp::v4() : asio::ip::udp::v6(), 0));
      } catch (const std::exception&) {
        ec = errc::not_connected;
      }
    }
    if (ec) return self->dial_finished(key, ec, 0);
    auto c = self->engine_.dial_datagram(std::chrono::steady_clock::now(), expected, udp_port::address_bytes(ep));
    self->datagram_peers_[c] = self->udp_->endpoint_of(udp_port::address_bytes(ep));
    self->refusable_dials_.insert(c);
    self->dial_finished(key, {}, c);
  };
  boost::system::error_code literal;
  auto address = asio::ip::make_address(where.host, literal);
  if (!literal) return start({}, asio::ip::udp::endpoint(address, where.port));
  auto resolver = std::make_shared<asio::ip::udp::resolver>(strand_);
  resolver->async_resolve(where.host, std::to_string(where.port),
                          [resolver, start](boost::system::error_code ec, asio::ip::udp::resolver::results_type results) {
                            if (!ec && results.empty()) ec = asio::error::host_not_found;
                            start(ec, ec ? asio::ip::udp::endpoint{} : results.begin()->endpoint());
                          });
}

std::vector<uri> node_driver::listening() const {
  std::lock_guard lock(acceptors_mutex_);
  return stopped_listening_ ? std::vector<uri>{} : bound_;
}

void node_driver::accept_loop(std::shared_ptr<tcp::acceptor> acceptor, bool websocket) {
  // Accepted sockets get the node's strand as executor: all of a node's I/O runs on it.
  acceptor->async_accept(strand_, [self = shared_from_this(), acceptor, websocket](boost::system::error_code ec,
                                                                                   tcp::socket socket) {
    if (self->stopped_ || !acceptor->is_open()) return;
    if (!ec) {
      if (websocket) {
        self->open_websocket(std::move(socket));
      } else {
        self->adopt(std::make_shared<tcp_link>(std::move(socket)), true, std::nullopt);
        self->pump();
      }
      return self->accept_loop(acceptor, websocket);
    }
    // Out of file descriptors (or another transient failure): retrying at once would spin.
    auto pause = std::make_shared<asio::steady_timer>(self->strand_, std::chrono::milliseconds(50));
    pause->async_wait([self, acceptor, pause, websocket](boost::system::error_code) {
      if (!self->stopped_) self->accept_loop(acceptor, websocket);
    });
  });
}

void node_driver::open_websocket(tcp::socket socket) {
  if (opening_inbound_ >= max_opening_websockets) {
    log("refusing a WebSocket connection: " + std::to_string(opening_inbound_) + " still in their upgrade");
    return;  // the socket closes as it goes out of scope
  }
  ++opening_inbound_;
  opening_.insert(accept_websocket(
      std::move(socket), websocket_limits{engine_.config().handshake_timeout},
      [weak = std::weak_ptr<node_driver>(shared_from_this())](boost::system::error_code ec, std::shared_ptr<link> opened) {
        auto self = weak.lock();
        if (!self) return;
        --self->opening_inbound_;
        self->opening_.erase(opened);
        if (ec || self->stopped_) return;
        self->adopt(std::move(opened), true, std::nullopt);
        self->pump();
      }));
}

core::connection_id node_driver::adopt(std::shared_ptr<link> link, bool inbound,
                                       std::optional<core::node_id> expected) {
  auto now = std::chrono::steady_clock::now();
  core::connection_id c = inbound ? engine_.accept(now, link->remote_address_bytes())
                                  : engine_.dial(now, expected, link->remote_address_bytes());
  links_.emplace(c, link);
  std::weak_ptr<node_driver> weak = shared_from_this();
  link->start(link::callbacks{
      [weak, c](byte_span bytes) {
        if (auto self = weak.lock()) {
          self->engine_.on_bytes(c, std::chrono::steady_clock::now(), bytes);
          self->pump();
        }
      },
      [weak, c](boost::system::error_code ec) {
        if (auto self = weak.lock()) {
          self->links_.erase(c);
          self->engine_.on_transport_closed(c, ec);
          self->pump();
        }
      }});
  return c;
}

void node_driver::pump() {
  // Until quiet: transmissions, engine events (which may start requests), the DHT's requests
  // and results (which may queue transmissions).
  for (bool progress = true; progress;) {
    progress = false;
    for (auto c : engine_.take_dirty()) {
      progress = true;
      auto it = links_.find(c);
      if (it == links_.end()) {
        if (engine_.is_datagram(c)) transmit_datagrams(c);
        continue;
      }
      auto link = it->second;  // the link may leave links_ below
      std::size_t queued = link->send(engine_.take_transmit(c));
      if (engine_.wants_close(c)) {
        link->close_after_write();
      } else if (queued > engine_.config().max_queued_bytes_per_peer) {
        // The peer does not read what we send: it may not make us buffer without bound.
        log("cutting off " + link->remote_text() + ": it does not read its replies");
        engine_.cut_off(c, errc::peer_cut_off, "peer does not read");
        link->close(errc::peer_cut_off);
      }
    }
    while (auto ev = engine_.poll_event()) {
      progress = true;
      on_event(*ev);
    }
    if (pump_dht()) progress = true;
  }
  save_dht_snapshot_if_due();
  arm_timer();
}

void node_driver::on_event(core::node_engine::event& ev) {
  on_dht_event(ev);
  on_stream_event(ev);
  on_message_event(ev);
  on_introduction_event(ev);
  if (auto* d = std::get_if<core::node_engine::datagram_in>(&ev)) {
    auto it = datagram_handlers_.find(d->opcode);
    if (it != datagram_handlers_.end()) it->second(d->peer, d->payload);  // none: dropped, as UDP would
    return;
  }
  if (auto* up = std::get_if<core::node_engine::connected>(&ev)) {
    if (unreachable(up->peer)) {
      // Partitioned: the session ends at once, and its waiters hear of it as it goes.
      engine_.cut_off(up->connection, errc::not_connected, "partitioned");
      return;
    }
    refusable_dials_.erase(up->connection);  // established: no ICMP error ends it now
    auto waiters = std::move(waiting_[up->connection]);
    waiting_.erase(up->connection);
    for (auto& w : waiters) w({}, up->connection);
  } else if (auto* down = std::get_if<core::node_engine::disconnected>(&ev)) {
    if (!down->text.empty())
      log((down->peer ? down->peer->short_hex() : std::string("connection")) + ": " +
          down->ec.message() + " (" + down->text + ")");
    refusable_dials_.erase(down->connection);
    auto waiters = std::move(waiting_[down->connection]);
    waiting_.erase(down->connection);
    for (auto& w : waiters) w(down->ec, down->connection);
    std::erase_if(dialed_, [&](const auto& kv) { return kv.second == down->connection; });
  } else if (auto* done = std::get_if<core::node_engine::request_done>(&ev)) {
    auto it = requests_.find(done->request);
    if (it == requests_.end()) return;
    auto handler = std::move(it->second);
    requests_.erase(it);
    std::move(handler)(done->result.ec, std::move(done->result));
  }
}

void node_driver::arm_timer() {
  auto next = engine_.next_deadline();
  if (dht_) {
    auto d = dht_->next_deadline();
    if (d && (!next || *d < *next)) next = d;
  }
  if (!next || stopped_) return;
  // A deadline already due (a paced send, an ack, a loss check) runs as a posted handler: the
  // kernel timer would cost two system calls to fire at once (a loaded stream meets dozens of
  // these a millisecond).
  if (*next <= std::chrono::steady_clock::now()) {
    if (timeout_posted_) return;
    timeout_posted_ = true;
    asio::post(strand_, [weak = std::weak_ptr<node_driver>(shared_from_this())] {
      auto self = weak.lock();
      if (!self) return;
      self->timeout_posted_ = false;
      if (!self->stopped_) self->run_timeouts();
    });
    return;
  }
  // Re-arm only for an earlier deadline; a later one is picked up when the timer fires.
  if (timer_expiry_ && *timer_expiry_ <= *next) return;
  timer_expiry_ = *next;
  timer_.expires_at(*next);
  timer_.async_wait([weak = std::weak_ptr<node_driver>(shared_from_this())](boost::system::error_code ec) {
    auto self = weak.lock();
    if (!self || ec == asio::error::operation_aborted) return;
    self->timer_expiry_.reset();
    self->run_timeouts();
  });
}

void node_driver::run_timeouts() {
  auto now = std::chrono::steady_clock::now();
  engine_.handle_timeout(now);
  if (dht_) {
    dht_->set_wall_offset(dht::wall_clock_offset(std::chrono::system_clock::now(), now));  // clocks step
    dht_->handle_timeout(now);
  }
  pump();
}

void node_driver::connect(uri where, std::optional<core::node_id> expected, std::uint64_t wait,
                          connect_handler handler) {
  auto shared = std::make_shared<connect_handler>(std::move(handler));
  dial(where, expected, abortable(wait, [this, shared](boost::system::error_code ec, core::connection_id c) {
    core::node_id peer;
    if (!ec) peer = engine_.peer_of(c).value_or(core::node_id{});
    std::move(*shared)(ec, peer);
  }));
}

node_driver::ready_handler node_driver::abortable(std::uint64_t wait, ready_handler then) {
  if (wait == 0) return then;
  auto shared = std::make_shared<ready_handler>(std::move(then));
  waits_.emplace(wait, shared);
  return [this, shared, wait](boost::system::error_code ec, core::connection_id c) {
    if (!*shared) return;  // cancelled
    waits_.erase(wait);
    std::exchange(*shared, nullptr)(ec, c);
  };
}

node_driver::wanted_fn node_driver::still_waiting(std::uint64_t wait) {
  if (wait == 0) return {};
  return [this, wait] { return waits_.contains(wait); };
}

void node_driver::cancel_wait(std::uint64_t wait) {
  auto it = waits_.find(wait);
  if (it == waits_.end()) return;  // its session came (or failed) already
  auto h = std::exchange(*it->second, nullptr);  // empty from now on: the session finds nothing to complete
  waits_.erase(it);
  h(boost::asio::error::operation_aborted, 0);
}

void node_driver::dial(const uri& where, std::optional<core::node_id> expected, ready_handler then) {
  if (stopped_) return then(errc::shutting_down, 0);
  if (expected) {
    // A session reused or shared with another dial of this address was not checked against
    // `expected` by its handshake: check the key that answered here.
    then = [this, expected, then = std::move(then)](boost::system::error_code ec, core::connection_id c) {
      if (!ec && engine_.peer_of(c) != expected) ec = errc::unexpected_identity;
      then(ec, c);
    };
  }
  std::string key = where.to_string();
  if (auto it = dialed_.find(key); it != dialed_.end()) {
    auto waiting = waiting_.find(it->second);
    if (waiting != waiting_.end()) waiting->second.push_back(std::move(then));
    else then({}, it->second);
    return;
  }
  auto& queue = resolving_[key];
  queue.push_back(std::move(then));
  if (queue.size() > 1) return;  // a dial to this address is already under way
  if (where.scheme == "udp") return dial_udp(where, expected, key);
  auto self = shared_from_this();
  auto on_connected = [self, key, expected, where](std::shared_ptr<tcp::socket> socket, boost::system::error_code ec) {
    self->connecting_.erase(socket);
    if (self->stopped_) return self->dial_finished(key, errc::shutting_down, 0);
    if (ec) return self->dial_finished(key, ec, 0);
    if (where.scheme != "ws")
      return self->dial_finished(key, {}, self->adopt(std::make_shared<tcp_link>(std::move(*socket)), false, expected));
    // The upgrade first; the Host header names what the caller dialed.
    self->opening_.insert(dial_websocket(
        std::move(*socket), where.authority(), websocket_limits{self->engine_.config().handshake_timeout},
        [weak = std::weak_ptr<node_driver>(self), key, expected](boost::system::error_code ec, std::shared_ptr<link> opened) {
          auto self = weak.lock();
          if (!self) return;
          self->opening_.erase(opened);
          if (!ec && self->stopped_) ec = errc::shutting_down;
          if (ec) return self->dial_finished(key, ec, 0);
          self->dial_finished(key, {}, self->adopt(std::move(opened), false, expected));
        }));
  };
  auto socket = std::make_shared<tcp::socket>(strand_);
  connecting_.insert(socket);
  boost::system::error_code literal;
  auto address = asio::ip::make_address(where.host, literal);
  if (!literal) {
    // An IP literal (what nodes announce): no resolver round trip.
    socket->async_connect(tcp::endpoint(address, where.port),
                          [socket, on_connected](boost::system::error_code ec) { on_connected(socket, ec); });
    return;
  }
  auto resolver = std::make_shared<tcp::resolver>(strand_);
  resolver->async_resolve(
      where.host, std::to_string(where.port),
      [self, resolver, socket, on_connected](boost::system::error_code ec, tcp::resolver::results_type results) {
        // Stopped while resolving: no connect (stop() found no open socket to close, and one
        // opened now would keep the node's waiters for a whole connect attempt).
        if (ec || self->stopped_) return on_connected(socket, ec);
        asio::async_connect(*socket, results, [socket, on_connected](boost::system::error_code ec, const tcp::endpoint&) {
          on_connected(socket, ec);
        });
      });
}

void node_driver::dial_any(std::vector<uri> addresses, core::node_id expected, ready_handler then, wanted_fn wanted) {
  if (addresses.empty()) return then(errc::not_connected, 0);
  if (gone(wanted)) return then(boost::asio::error::operation_aborted, 0);
  uri where = std::move(addresses.front());
  addresses.erase(addresses.begin());
  dial(where, expected, [this, rest = std::move(addresses), expected, then = std::move(then), wanted](
                            boost::system::error_code ec, core::connection_id c) mutable {
    if (!ec || rest.empty() || ec == errc::shutting_down) return then(ec, c);
    dial_any(std::move(rest), expected, std::move(then), std::move(wanted));
  });
}

void node_driver::dial_finished(const std::string& key, boost::system::error_code ec, core::connection_id c) {
  auto waiters = std::move(resolving_[key]);
  resolving_.erase(key);
  if (ec) {
    for (auto& w : waiters) w(ec, 0);
    return;
  }
  // The dial is under way: its waiters hear once the handshake is done (or failed).
  dialed_[key] = c;
  auto& queue = waiting_[c];
  for (auto& w : waiters) queue.push_back(std::move(w));
  pump();
}

void node_driver::with_connection(const peer_ref& target, ready_handler then, wanted_fn wanted) {
  if (const auto* id = std::get_if<core::node_id>(&target)) {
    if (auto c = engine_.connection_to(*id)) return then({}, *c);
    if (*id == self_.id()) return then(errc::own_id, 0);
    if (!dht_) return then(errc::not_connected, 0);  // nothing to look it up with
    return reach(*id, std::move(then), std::move(wanted));
  }
  dial(std::get<uri>(target), std::nullopt, std::move(then));
}

void node_driver::send_datagram(peer_ref target, std::uint8_t opcode, byte_vector payload, std::uint64_t wait,
                                std::function<void(boost::system::error_code)> done) {
  auto shared = std::make_shared<byte_vector>(std::move(payload));
  with_connection(target, abortable(wait, [this, shared, opcode, done = std::move(done)](boost::system::error_code ec,
                                                                                         core::connection_id c) {
    if (!ec) ec = engine_.send_unreliable(c, opcode, *shared);
    done(ec);
    pump();
  }), still_waiting(wait));
}

void node_driver::request(peer_ref target, std::uint8_t opcode, core::wire::message_body body, std::uint64_t call,
                          reply_handler handler) {
  auto shared = std::make_shared<reply_handler>(std::move(handler));
  if (call != 0) calls_.emplace(call, shared);
  auto finish = [this, shared, call](boost::system::error_code ec, core::reply r) {
    if (!*shared) return;  // cancelled
    if (call != 0) calls_.erase(call);
    auto h = std::exchange(*shared, nullptr);  // empty from now on: a cancel finds nothing to complete
    std::move(h)(ec, std::move(r));
  };
  auto shared_body = std::make_shared<core::wire::message_body>(std::move(body));
  with_connection(target, [this, shared, finish, shared_body, opcode](boost::system::error_code ec,
                                                                      core::connection_id c) {
    if (!*shared) return;  // cancelled while its session was being made: not sent
    if (ec) {
      core::reply r;
      r.ec = ec;
      return finish(ec, std::move(r));
    }
    auto id = engine_.request(std::chrono::steady_clock::now(), c, opcode, std::move(*shared_body));
    requests_.emplace(id, reply_handler(finish));
    pump();
  }, [shared] { return static_cast<bool>(*shared); });
}

void node_driver::cancel_request(std::uint64_t call) {
  auto it = calls_.find(call);
  if (it == calls_.end()) return;  // answered already
  auto h = std::exchange(*it->second, nullptr);  // empty from now on: the reply finds nothing to complete
  calls_.erase(it);
  core::reply r;
  r.ec = boost::asio::error::operation_aborted;
  std::move(h)(r.ec, std::move(r));
}

void node_driver::stop() {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(acceptors_mutex_);
    stopped_listening_ = true;
    for (auto& a : acceptors_) {
      boost::system::error_code ignored;
      a->close(ignored);
    }
  }
  timer_.cancel();
  // Dials still connecting end now (their handlers fail their waiters with shutting_down).
  for (const auto& socket : connecting_) {
    boost::system::error_code ignored;
    socket->close(ignored);
  }
  auto links = links_;
  for (auto& [c, link] : links) link->close(errc::shutting_down);
  auto opening = opening_;  // closing one fails its dial's waiters and leaves opening_
  for (auto& link : opening) link->close(errc::shutting_down);
  // Datagram sessions say farewell (so peers need not wait for their idle timeout) and end.
  for (auto c : engine_.datagram_connections()) {
    engine_.cut_off(c, errc::shutting_down, {});
    transmit_datagrams(c);
  }
  datagram_peers_.clear();
  if (udp_) udp_->close();
  // Operations still waiting for a connection fail now.
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& [c, ws] : waiting)
    for (auto& w : ws) w(errc::shutting_down, c);
  while (auto ev = engine_.poll_event()) on_event(*ev);
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [key, s] : streams) {
    s->awaiting_accept = false;  // the queues are gone with them
    fail_stream(*s, errc::shutting_down);
  }
  unaccepted_.clear();
  headers_pending_.clear();
  auto acceptors = std::move(acceptors_waiting_);
  acceptors_waiting_.clear();
  for (auto& [protocol, waiting] : acceptors)
    for (auto& a : waiting) accept_stream(protocol, a.waiter, std::move(a.handler));  // completes with shutting_down
  auto ops = std::move(dht_ops_);
  dht_ops_.clear();
  dht_calls_.clear();
  for (auto& [id, waiter] : ops) {
    dht::dht_node::operation_done failed{id, dht::get_result{errc::shutting_down, std::nullopt, {}}};
    waiter.done(failed);
  }
  save_dht_snapshot();
  // Release the data directory now, not when the last handler lets go of this driver.
  dht_.reset();
  sqlite_ = nullptr;
  store_.reset();
}

}  // namespace kadnet::transports
