#include "kadnet/transports/testing/socket_swarm.hpp"

#include <condition_variable>
#include <stdexcept>

#include <boost/asio/use_future.hpp>

#include "kadnet/transports/wait_for.hpp"

namespace kadnet::testing {

socket_swarm::socket_swarm(socket_swarm_settings settings)
    : settings_(std::move(settings)), work_(boost::asio::make_work_guard(io_)), rng_(settings_.seed) {
  if (settings_.transport != "tcp" && settings_.transport != "udp" && settings_.transport != "ws")
    throw std::invalid_argument("socket_swarm: transport '" + settings_.transport + "' must be tcp, udp or ws");
  if (settings_.threads == 0) throw std::invalid_argument("socket_swarm: threads must be at least 1");
  for (unsigned t = 0; t < settings_.threads; ++t) threads_.emplace_back([this] { io_.run(); });
}

socket_swarm::~socket_swarm() {
  // Each stop completes pending operations, whose handlers may hold the node, before the
  // io_context goes away.
  for (std::size_t i = 0; i < members_.size(); ++i)
    if (alive(i)) kill(i);
  work_.reset();
  io_.stop();
  for (auto& t : threads_) t.join();
}

std::unique_ptr<node> socket_swarm::make_node(const core::identity& id) {
  return std::make_unique<node>(io_.get_executor(), id, settings_.config, settings_.dht);
}

std::size_t socket_swarm::add_node() {
  member m{core::identity::generate(), {}, nullptr};
  m.n = make_node(m.identity);
  m.address = m.n->listen(*transports::parse_uri(settings_.transport + "://" + settings_.host + ":0"));
  members_.push_back(std::move(m));
  return members_.size() - 1;
}

void socket_swarm::add_nodes(std::size_t count) {
  for (std::size_t k = 0; k < count; ++k) add_node();
}

void socket_swarm::async_join(std::size_t i, std::size_t via, join_done done) {
  node& n = (*this)[i];
  n.async_connect(address(via), std::nullopt, [&n, done](boost::system::error_code ec, node_id) {
    if (ec) return done(false, -1);
    n.dht().bootstrap([done](boost::system::error_code ec, dht::find_node_result r) {
      done(!ec, static_cast<int>(r.stats.rounds));
    });
  });
}

bool socket_swarm::join(std::size_t i, std::size_t via) {
  auto [ok, rounds] = transports::wait_for<bool, int>([&](auto done) { async_join(i, via, done); });
  return ok;
}

std::size_t socket_swarm::bootstrap_for(std::size_t i, bootstrap_strategy strategy) {
  if (i == 0) throw std::invalid_argument("socket_swarm: node 0 has no earlier node to join through");
  switch (strategy) {
    case bootstrap_strategy::first: return 0;
    case bootstrap_strategy::previous: return i - 1;
    case bootstrap_strategy::random_earlier: break;
  }
  std::lock_guard lock(rng_mutex_);
  return std::uniform_int_distribution<std::size_t>(0, i - 1)(rng_);
}

std::size_t socket_swarm::join_all(bootstrap_strategy strategy, std::size_t from, std::size_t in_flight) {
  // Issues joins in order, at most in_flight at a time; each completion starts the next.
  std::mutex m;
  std::condition_variable finished;
  std::size_t next = std::max<std::size_t>(from, 1), running = 0, joined = 0;
  std::function<void()> issue = [&] {  // called with m held
    while (running < std::max<std::size_t>(in_flight, 1) && next < size()) {
      std::size_t i = next++;
      ++running;
      async_join(i, bootstrap_for(i, strategy), [&](bool ok, int) {
        std::lock_guard lock(m);
        --running;
        if (ok) ++joined;
        issue();
        finished.notify_all();
      });
    }
  };
  std::unique_lock lock(m);
  issue();
  finished.wait(lock, [&] { return running == 0 && next >= size(); });
  return joined;
}

void socket_swarm::kill(std::size_t i) {
  member& m = members_.at(i);
  if (!m.n) return;
  m.n->async_stop(boost::asio::use_future).get();
  m.n.reset();
}

bool socket_swarm::restart(std::size_t i, std::size_t via) {
  member& m = members_.at(i);
  if (m.n) throw std::logic_error("socket_swarm: node " + std::to_string(i) + " is alive");
  m.n = make_node(m.identity);
  m.n->listen(m.address);  // the same port: the old listener is closed
  return join(i, via);
}

void socket_swarm::partition(const std::vector<std::size_t>& a, const std::vector<std::size_t>& b) {
  auto cut = [this](const std::vector<std::size_t>& side, const std::vector<std::size_t>& other) {
    std::vector<node_id> unreachable;
    for (std::size_t j : other) unreachable.push_back((*this)[j].id());
    for (std::size_t i : side) (*this)[i].async_set_unreachable(unreachable, boost::asio::use_future).get();
  };
  cut(a, b);
  cut(b, a);
}

void socket_swarm::heal() {
  for (std::size_t i = 0; i < size(); ++i)
    if (alive(i)) (*this)[i].async_set_unreachable({}, boost::asio::use_future).get();
}

}  // namespace kadnet::testing
