#include "tools/cli_options.hpp"

#include <charconv>
#include <stdexcept>

namespace kadnet::tools {

const char* const usage_text = R"(usage:
  kadnet keygen FILE
      Create an Ed25519 identity in FILE (mode 0600) and print its NodeId.
  kadnet node [--listen URI]... [--bootstrap URI]... [--identity FILE]
              [--compression LIST] [--timeout MS] [--json]
      Run a node and read commands from standard input, one per line.
      --listen URI       accept sessions on URI, e.g. tcp://127.0.0.1:4000 (port 0: any)
      --bootstrap URI    connect to URI at start (repeatable)
      --identity FILE    load the identity from FILE, creating it if missing
                         (default: a fresh identity for this run)
      --compression LIST methods to accept and prefer, in order, comma separated:
                         bz2,gzip,lzma,zlib,snappy,zstd or none (default zstd,snappy,zlib)
      --timeout MS       request timeout in milliseconds (default 5000)
      --json             print one JSON object per line instead of text
  kadnet swarm [--nodes N] [--calls N] [--json]
      Run N nodes (default 16) on loopback in this process; each calls a plugin on
      random others --calls times (default 32); print success and latency. (The DHT
      swarm with puts, gets and churn arrives with the DHT.)
  kadnet --help

commands of `kadnet node`:
  id                       this node's NodeId and listening URIs
  ping URI|ID              PING a peer and print the round-trip time
  send URI|ID OPCODE TEXT  call plugin OPCODE (64..255) with TEXT; every kadnet node
                           answers opcode 64 by echoing the text back
  peers                    the sessions this node has
  stats                    counters: sessions, packets, dropped packets, requests
  help                     this list
  quit                     stop the node (end of input does the same)
)";

namespace {

transports::uri uri_arg(const std::string& flag, const std::string& text) {
  std::string problem;
  auto u = transports::parse_uri(text, &problem);
  if (!u) throw std::invalid_argument(flag + ": " + problem);
  return *u;
}

std::vector<compression::codec_id> compression_arg(const std::string& text) {
  std::vector<compression::codec_id> out;
  if (text == "none") return out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    std::string name = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto id = compression::codec_from_name(name);
    if (!id)
      throw std::invalid_argument("--compression: unknown method '" + name +
                                  "' (use bz2, gzip, lzma, zlib, snappy, zstd or none)");
    for (auto seen : out)
      if (seen == *id) throw std::invalid_argument("--compression: '" + name + "' listed twice");
    out.push_back(*id);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

node_options parse_node_options(const std::vector<std::string>& args) {
  node_options o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string& {
      if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
      return args[++i];
    };
    if (a == "--listen") o.listen.push_back(uri_arg(a, value()));
    else if (a == "--bootstrap") o.bootstrap.push_back(uri_arg(a, value()));
    else if (a == "--identity") o.identity_file = value();
    else if (a == "--compression") o.compression = compression_arg(value());
    else if (a == "--json") o.json = true;
    else if (a == "--help" || a == "-h") o.help = true;
    else if (a == "--timeout") {
      const std::string& v = value();
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), o.timeout_ms);
      if (ec != std::errc() || end != v.data() + v.size() || o.timeout_ms <= 0)
        throw std::invalid_argument("--timeout: '" + v + "' is not a positive number of milliseconds");
    } else {
      throw std::invalid_argument("unknown argument '" + a + "'");
    }
  }
  return o;
}

}  // namespace kadnet::tools
