#pragma once
// Command-line options of `kadnet node`, parsed without side effects so that a bad argument is
// reported with a usage line naming the problem before anything starts.
#include <optional>
#include <string>
#include <vector>

#include "kadnet/compression/codec.hpp"
#include "kadnet/transports/uri.hpp"

namespace kadnet::tools {

struct node_options {
  std::vector<transports::uri> listen;
  std::vector<transports::uri> bootstrap;
  std::optional<std::string> identity_file;
  std::optional<std::string> data_dir;  // identity, DHT values and a routing snapshot
  std::optional<std::string> inbox;     // where offered files are accepted (none: all refused)
  std::vector<compression::codec_id> compression{compression::codec_id::zstd,
                                                 compression::codec_id::snappy,
                                                 compression::codec_id::zlib};
  bool json = false;
  int timeout_ms = 5000;
  bool help = false;
};

// Throws std::invalid_argument with a message naming the bad argument.
node_options parse_node_options(const std::vector<std::string>& args);

extern const char* const usage_text;
// The commands in two lines, printed after a usage error (the whole text would bury the error).
extern const char* const usage_synopsis;

}  // namespace kadnet::tools
