#pragma once
// `kadnet node`: runs a node on a background thread and executes commands read from a stream.
#include <iosfwd>

#include "tools/cli_options.hpp"

namespace kadnet::tools {

// Returns the process exit code. Start-up failures (a port in use, a bad identity file) throw.
int run_node_shell(const node_options& options, std::istream& in, std::ostream& out);

}  // namespace kadnet::tools
