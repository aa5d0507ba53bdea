#include "benchmarks/sim/swarm_build.hpp"

#include <chrono>

namespace kadnet::bench {

namespace {
constexpr int max_join_attempts = 3;
}

bool sim_links::take(const std::string& flag, flag_walker& args) {
  if (flag == "--loss") loss = parse_fraction(flag, args.value());
  else if (flag == "--latency-ms") latency = std::chrono::milliseconds(parse_number(flag, args.value()));
  else if (flag == "--jitter-ms") jitter = std::chrono::milliseconds(parse_number(flag, args.value()));
  else if (flag == "--seed") seed = parse_number(flag, args.value());
  else return false;
  return true;
}

void sim_links::check() const {
  if (jitter > latency) throw std::invalid_argument("--jitter-ms must not exceed --latency-ms");
}

void sim_links::apply(dht_swarm::settings& s) const {
  s.seed = seed;
  s.link.latency = latency;
  s.link.jitter = jitter;
  s.link.loss = loss;
}

std::size_t run_phase(dht_swarm& swarm, std::size_t count, sim::duration interval,
                      const std::function<void(std::size_t, std::function<void()>)>& start) {
  using namespace std::chrono_literals;
  std::size_t finished = 0;
  std::function<void(std::size_t)> launch = [&](std::size_t j) {
    start(j, [&finished] { ++finished; });
    if (j + 1 < count) swarm.network().schedule_after(interval, [&launch, j] { launch(j + 1); });
  };
  if (count > 0) launch(0);
  sim::network& net = swarm.network();
  net.run_until([&] { return finished == count; }, net.now() + interval * count + 24h);
  return finished;
}

void join_nodes(dht_swarm& swarm, std::uint32_t first, std::uint32_t last, sim::duration interval, join_tally& tally) {
  sim::network& net = swarm.network();
  auto& rng = swarm.rng();
  std::function<void(std::uint32_t, int, std::function<void()>)> join = [&](std::uint32_t i, int attempt, auto done) {
    const std::uint32_t via = tally.joined[rng() % tally.joined.size()];
    swarm.join(i, via, [&, i, attempt, done](const dht::find_node_result& r) {
      if (!r.ec && !r.closest.empty()) {
        tally.joined.push_back(i);
        done();
      } else if (attempt < max_join_attempts) {
        ++tally.retries;
        net.schedule(net.now(), [&join, i, attempt, done] { join(i, attempt + 1, done); });
      } else {
        ++tally.failed;
        done();
      }
    });
  };
  const std::size_t count = last - first;
  const std::size_t done = run_phase(swarm, count, interval, [&](std::size_t j, auto finished) {
    join(static_cast<std::uint32_t>(first + j), 1, std::move(finished));
  });
  tally.failed += count - done;
}

}  // namespace kadnet::bench
