// `kadnet swarm`'s command line, parsed without side effects so that a bad argument is reported
// with a usage line naming the problem before anything starts.
#include <charconv>
#include <stdexcept>
#include <string>
#include <vector>

#include "tools/swarm_command.hpp"

namespace kadnet::tools {
namespace {

long long int_arg(const std::string& flag, const std::string& text, long long lo, long long hi) {
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi)
    throw std::invalid_argument(flag + ": '" + text + "' must be a number from " + std::to_string(lo) +
                                " to " + std::to_string(hi));
  return v;
}

double fraction_arg(const std::string& flag, const std::string& text) {
  double v = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0 || v >= 1)
    throw std::invalid_argument(flag + ": '" + text + "' must be a fraction from 0 to below 1 (e.g. 0.33)");
  return v;
}

}  // namespace

swarm_options parse_swarm_options(const std::vector<std::string>& args) {
  swarm_options o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw std::invalid_argument(args[i] + " needs a value");
      return args[++i];
    };
    if (args[i] == "--nodes") o.nodes = static_cast<int>(int_arg("--nodes", value(), 2, max_sim_nodes));
    else if (args[i] == "--ops") o.ops = static_cast<int>(int_arg("--ops", value(), 1, 1000000));
    else if (args[i] == "--churn") o.churn = fraction_arg("--churn", value());
    else if (args[i] == "--seed") o.seed = static_cast<std::uint64_t>(int_arg("--seed", value(), 0, 1LL << 62));
    else if (args[i] == "--transport") {
      o.transport = value();
      if (o.transport != "tcp" && o.transport != "udp" && o.transport != "ws" && o.transport != "sim")
        throw std::invalid_argument("--transport: '" + o.transport + "' must be tcp, udp, ws or sim");
    } else if (args[i] == "--json") o.json = true;
    else throw std::invalid_argument("unknown argument '" + args[i] + "'");
  }
  if (o.transport != "sim" && o.nodes > max_socket_nodes)
    throw std::invalid_argument("--nodes: " + std::to_string(o.nodes) + " real-socket nodes in one process is more than " +
                                std::to_string(max_socket_nodes) + "; use --transport sim for up to " +
                                std::to_string(max_sim_nodes));
  return o;
}

}  // namespace kadnet::tools
