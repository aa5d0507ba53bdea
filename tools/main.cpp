// The `kadnet` command-line program: key generation and an interactive node.
#include <iostream>
#include <string>
#include <vector>

#include "kadnet/core/identity.hpp"
#include "tools/cli_options.hpp"
#include "tools/node_shell.hpp"
#include "tools/swarm_command.hpp"

int main(int argc, char** argv) {
  using namespace kadnet;
  std::vector<std::string> args(argv + 1, argv + argc);
  auto usage_error = [](const std::string& problem) {
    std::cerr << "kadnet: " << problem << "\n" << tools::usage_synopsis;
    return 2;
  };
  if (args.empty()) return usage_error("missing command (keygen, node or swarm)");
  const std::string command = args.front();
  args.erase(args.begin());
  try {
    if (command == "--help" || command == "-h" || command == "help") {
      std::cout << tools::usage_text;
      return 0;
    }
    if (command == "keygen") {
      if (args.size() != 1) return usage_error("keygen takes exactly one FILE");
      auto id = core::identity::generate();
      id.save(args[0]);
      std::cout << id.id().to_hex() << "\n";
      return 0;
    }
    if (command == "node") {
      tools::node_options options;
      try {
        options = tools::parse_node_options(args);
      } catch (const std::invalid_argument& e) {
        return usage_error(e.what());
      }
      if (options.help) {
        std::cout << tools::usage_text;
        return 0;
      }
      return tools::run_node_shell(options, std::cin, std::cout);
    }
    if (command == "swarm") {
      tools::swarm_options options;
      try {
        options = tools::parse_swarm_options(args);
      } catch (const std::invalid_argument& e) {
        return usage_error(e.what());
      }
      return tools::run_swarm(options, std::cout);
    }
    return usage_error("unknown command '" + command + "'");
  } catch (const std::exception& e) {
    std::cerr << "kadnet: " << e.what() << "\n";
    return 1;
  }
}
