#include "tools/cli_options.hpp"

#include <charconv>
#include <stdexcept>
#include <string>

#include "kadnet/core/node_config.hpp"

namespace kadnet::tools {

const char* const usage_synopsis =
    "usage: kadnet keygen FILE | kadnet node [OPTIONS] | kadnet swarm [OPTIONS]\n"
    "run 'kadnet --help' for the options and the commands of a node\n";

const char* const usage_text = R"(usage:
  kadnet keygen FILE
      Create an Ed25519 identity in FILE (mode 0600) and print its NodeId.
  kadnet node [--listen URI]... [--bootstrap URI]... [--identity FILE]
              [--data-dir DIR] [--inbox DIR] [--compression LIST] [--timeout MS] [--json]
      Run a node and read commands from standard input, one per line.
      --listen URI       accept sessions on URI, e.g. tcp://127.0.0.1:4000,
                         udp://127.0.0.1:4000 or ws://127.0.0.1:8080 (WebSocket)
                         (port 0: any; at most one udp://)
      --bootstrap URI    connect to URI at start and join the DHT through it (repeatable)
      --identity FILE    load the identity from FILE, creating it if missing
                         (default: DIR/identity.key with --data-dir, else a fresh
                         identity for this run)
      --data-dir DIR     keep the identity, the DHT values (SQLite) and a routing-table
                         snapshot in DIR (created if missing), so a restart keeps them
      --inbox DIR        accept files peers send (sendfile) into DIR (created if missing);
                         a transfer cut off resumes from DIR/NAME.part. Without it, offered
                         files are refused
      --compression LIST methods to accept and prefer, in order, comma separated:
                         bz2,gzip,lzma,zlib,snappy,zstd or none (default zstd,snappy,zlib)
      --timeout MS       request timeout in milliseconds (default 5000)
      --json             print one JSON object per line instead of text
  kadnet swarm [--nodes N] [--ops N] [--churn F] [--seed S] [--transport tcp|udp|ws|sim]
                [--json]
      Run a DHT swarm of N nodes (default 64) in this process: join, put N values
      (--ops, default 200) from random nodes, get them back, kill a share F of the
      nodes (default 0.33), get them again; print settle time, success %, latency
      median and p99 and lookup hops. tcp, udp and ws (at most 5000 nodes) run
      on loopback sockets; sim (up to 100000 nodes) runs the same full nodes on the
      simulated network in virtual time (20 ms +- 5 ms links), so its times and
      latencies are virtual, and one seed replays the same run.
  kadnet --help

commands of `kadnet node`:
  id                       this node's NodeId and listening URIs
  ping URI|ID              PING a peer and print the round-trip time (an ID without a
                           session is looked up in the DHT and dialed)
  send URI|ID OPCODE TEXT  call plugin OPCODE (64..255) with TEXT; every `kadnet node`
                           answers opcode 64 by echoing the text back
  sendfile URI|ID PATH     send the file PATH (the rest of the line) to a peer, which
                           stores it in its --inbox (over any transport). Resumes
                           what the peer holds of it already
  put KEY VALUE            store VALUE (the rest of the line, at most 65536 bytes) under
                           KEY in the DHT; KEY is text, hashed to 32 bytes with BLAKE2b-256
  get KEY                  find the value stored under KEY
  cas KEY VERSION VALUE    write VALUE as version VERSION + 1 of KEY only if KEY is at
                           VERSION now (0: holds nothing), decided by a majority of
                           its k closest nodes; a conflict prints the current version
  patch KEY VERSION OFFSET REMOVE TEXT
                           edit KEY's version VERSION: replace REMOVE bytes at byte
                           OFFSET with TEXT (the rest of the line, may be empty) and
                           store it as version VERSION + 1, sending the k closest
                           nodes only that change (a node lacking VERSION gets the
                           whole value). Reads KEY first (a get); if it is not at
                           VERSION, prints the version found and writes nothing
  lock KEY SECONDS         take KEY's lock for SECONDS (1 .. 86400): prints the fencing
                           token, or who holds it and for how much longer
  unlock KEY TOKEN         release the lock this node holds under fencing token TOKEN
  listen KEY               print every new version of KEY as it is written (first the one
                           held now), with the change when it travelled as a diff
  unlisten KEY             stop listening to KEY
  find ID                  the k nodes closest to a NodeId (64 hex digits)
  shout TEXT               broadcast TEXT to every node of the network, signed by this
                           node; each node prints it once, with the hops it took
  speak TEXT               send TEXT to this node's direct peers (its sessions) only
  whisper ID TEXT          send TEXT to the node ID alone, sealed to its key; found
                           through the DHT when not a direct peer. Done once the
                           node's receipt (a hash of what it got) matches
  buckets                  the routing table, bucket by bucket
  peers                    the sessions this node has
  stats                    counters: sessions, packets, dropped packets, requests,
                           shouts, speaks and whispers received
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
    if (name == "none")
      throw std::invalid_argument("--compression: 'none' stands alone; it cannot be listed with other methods");
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
    else if (a == "--data-dir") o.data_dir = value();
    else if (a == "--inbox") o.inbox = value();
    else if (a == "--compression") o.compression = compression_arg(value());
    else if (a == "--json") o.json = true;
    else if (a == "--help" || a == "-h") o.help = true;
    else if (a == "--timeout") {
      const std::string& v = value();
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), o.timeout_ms);
      constexpr auto longest = core::node_config::max_timeout.count();
      if (ec != std::errc() || end != v.data() + v.size() || o.timeout_ms <= 0 || o.timeout_ms > longest)
        throw std::invalid_argument("--timeout: '" + v + "' is not a number of milliseconds from 1 to " +
                                    std::to_string(longest) + " (24 hours)");
    } else {
      throw std::invalid_argument("unknown argument '" + a + "'");
    }
  }
  return o;
}

}  // namespace kadnet::tools
