#include "benchmarks/stream/options.hpp"

#include <cctype>
#include <sstream>

namespace kadnet::bench {

const char* const usage_text =
    "usage: kadnet_bench_stream [--bytes N] [--loss P] [--reorder R] [--seed S] [--timeout SECONDS]\n"
    "                           [--window U] [--json] [--only kadnet,kadnet_tcp,udt,tcp,raw]\n"
    "  Sends the same N bytes over 127.0.0.1 through one kadnet stream, UDT, kernel TCP, and\n"
    "  raw UDP datagrams (sendmmsg, GSO, and GSO with GRO), and prints each goodput.\n"
    "  --bytes N     payload size: a number with an optional suffix KiB, MiB, GiB (powers of\n"
    "                1,024) or kB, MB, GB (powers of 1,000); default 256MiB\n"
    "  --loss P      datagram loss each way, a fraction (0.05) or percent (5%); default 0\n"
    "  --reorder R   datagrams held back 1 ms (overtaken by later ones) each way; default = P\n"
    "  --seed S      seeds the impairment (S one way, S+1 the other) and the payload; default 1\n"
    "  --timeout S   each transfer fails after S seconds; default 120\n"
    "  --window U    kadnet's per-stream starting window in units of 1,090 bytes\n"
    "                (node_config.datagram.streams.window_units; default: the node's, 256;\n"
    "                a busy stream's grows to max_window_units, 1,024, or stays at U if larger)\n"
    "  --json        one JSON object instead of the table\n"
    "  --only LIST   run only these transports (e.g. --only kadnet under a profiler)\n"
    "  Exits 1 when a kadnet stream did not arrive whole and intact, or UDT's arrived altered.\n";

namespace {
std::optional<std::uint64_t> parse_size(const std::string& text) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (...) {
    return std::nullopt;
  }
  std::string suffix = text.substr(used);
  double unit = 1;
  if (suffix.empty() || suffix == "B") unit = 1;
  else if (suffix == "KiB" || suffix == "K") unit = 1024.0;
  else if (suffix == "MiB" || suffix == "M") unit = 1024.0 * 1024;
  else if (suffix == "GiB" || suffix == "G") unit = 1024.0 * 1024 * 1024;
  else if (suffix == "kB") unit = 1e3;
  else if (suffix == "MB") unit = 1e6;
  else if (suffix == "GB") unit = 1e9;
  else return std::nullopt;
  if (value <= 0 || value * unit > 1e13) return std::nullopt;
  return static_cast<std::uint64_t>(value * unit);
}

std::optional<double> parse_loss(std::string text) {
  bool percent = !text.empty() && text.back() == '%';
  if (percent) text.pop_back();
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (...) {
    return std::nullopt;
  }
  if (used != text.size()) return std::nullopt;
  if (percent) value /= 100;
  if (value < 0 || value >= 1) return std::nullopt;
  return value;
}
}  // namespace

std::optional<options> parse_options(int argc, char** argv, std::string& problem, bool& help) {
  options o;
  help = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (auto eq = arg.find('='); eq != std::string::npos) {
        std::string v = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        return v;
      }
      if (i + 1 < argc) return std::string(argv[++i]);
      return std::nullopt;
    };
    if (arg == "-h" || arg == "--help") {
      help = true;
      return o;
    }
    if (arg == "--json") {
      o.json = true;
      continue;
    }
    std::string name = arg.substr(0, arg.find('='));
    if (name != "--bytes" && name != "--loss" && name != "--reorder" && name != "--seed" && name != "--timeout" && name != "--only" &&
        name != "--window") {
      problem = "unknown argument '" + arg + "'";
      return std::nullopt;
    }
    auto v = value();
    if (!v) {
      problem = name + " needs a value";
      return std::nullopt;
    }
    if (name == "--bytes") {
      auto n = parse_size(*v);
      if (!n) {
        problem = "--bytes: '" + *v + "' is not a size (e.g. 268435456, 256MiB, 64MiB, 1GB)";
        return std::nullopt;
      }
      o.bytes = *n;
    } else if (name == "--loss" || name == "--reorder") {
      auto p = parse_loss(*v);
      if (!p) {
        problem = name + ": '" + *v + "' is not " + (name == "--loss" ? "a loss rate" : "a rate") +
                  " in [0, 1) (e.g. 0.01 or 1%)";
        return std::nullopt;
      }
      if (name == "--loss") {
        o.loss = *p;
      } else {
        o.reorder = *p;
      }
    } else if (name == "--seed") {
      try {
        o.seed = std::stoull(*v);
      } catch (...) {
        problem = "--seed: '" + *v + "' is not a number";
        return std::nullopt;
      }
    } else if (name == "--window") {
      long u = 0;
      try {
        u = std::stol(*v);
      } catch (...) {
      }
      if (u <= 0 || u > (1 << 24) - 1) {
        problem = "--window: '" + *v + "' is not a number of units in 1..16777215";
        return std::nullopt;
      }
      o.window = static_cast<std::uint32_t>(u);
    } else if (name == "--timeout") {
      long s = 0;
      try {
        s = std::stol(*v);
      } catch (...) {
      }
      if (s <= 0) {
        problem = "--timeout: '" + *v + "' is not a positive number of seconds";
        return std::nullopt;
      }
      o.time_limit = std::chrono::seconds(s);
    } else {
      std::stringstream list(*v);
      for (std::string t; std::getline(list, t, ',');) {
        if (t != "kadnet" && t != "kadnet_tcp" && t != "udt" && t != "tcp" && t != "raw") {
          problem = "--only: unknown transport '" + t + "' (kadnet, kadnet_tcp, udt, tcp, raw)";
          return std::nullopt;
        }
        o.only.insert(t);
      }
    }
  }
  return o;
}

}  // namespace kadnet::bench
