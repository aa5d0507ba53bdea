#pragma once
// Command-line arguments of the benchmark programs: walking the flags, and numeric values. A bad
// one throws std::invalid_argument naming the flag and the text, which the program prints with
// its usage line.
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <sstream>
#include <string>
#include <vector>

namespace kadnet::bench {

inline std::uint64_t parse_number(const std::string& flag, const std::string& text) {
  std::size_t used = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || text[0] == '-')
    throw std::invalid_argument(flag + ": '" + text + "' is not a whole number");
  return v;
}

inline double parse_real(const std::string& flag, const std::string& text) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || !(v >= 0))
    throw std::invalid_argument(flag + ": '" + text + "' is not a non-negative number");
  return v;
}

// Walks a program's arguments: each flag in turn, and the word after it as the flag's value
// (a missing one throws std::invalid_argument naming the flag).
class flag_walker {
 public:
  flag_walker(int argc, char** argv) : args_(argv + 1, argv + argc) {}
  // Moves to the next flag; false when there is none.
  bool next() { return ++at_ < args_.size(); }
  const std::string& flag() const { return args_[at_]; }
  const std::string& value() {
    if (at_ + 1 >= args_.size()) throw std::invalid_argument(flag() + " needs a value");
    return args_[++at_];
  }
  // For a flag the program does not take: -h or --help prints `usage` and ends the program
  // with status 0; anything else is an unknown argument (std::invalid_argument).
  [[noreturn]] void help_or_unknown(const char* usage) const {
    if (flag() == "-h" || flag() == "--help") {
      std::cout << usage;
      std::exit(0);
    }
    throw std::invalid_argument("unknown argument '" + flag() + "'");
  }

 private:
  std::vector<std::string> args_;
  std::size_t at_ = static_cast<std::size_t>(-1);
};

// Runs `parse` (the program's argument parser); a bad argument prints "program: problem" and the
// usage on standard error, and ends the program with status 2.
template <typename Parse>
auto parse_or_exit(const char* program, const char* usage, Parse parse) {
  try {
    return parse();
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n" << usage;
    std::exit(2);
  }
}

// A probability or share: a number in [0, 1).
inline double parse_fraction(const std::string& flag, const std::string& text) {
  double v = -1;
  try {
    v = parse_real(flag, text);
  } catch (const std::invalid_argument&) {
  }
  if (!(v >= 0 && v < 1)) throw std::invalid_argument(flag + ": '" + text + "' must be a fraction in [0, 1)");
  return v;
}

// A comma-separated list of whole numbers, each at least `least` ("--nodes 1000,10000").
inline std::vector<std::size_t> parse_count_list(const std::string& flag, const std::string& text, std::size_t least) {
  std::vector<std::size_t> out;
  std::stringstream list(text);
  for (std::string item; std::getline(list, item, ',');) {
    auto n = parse_number(flag, item);
    if (n < least)
      throw std::invalid_argument(flag + ": " + item + " is too few (at least " + std::to_string(least) + ")");
    out.push_back(static_cast<std::size_t>(n));
  }
  if (out.empty()) throw std::invalid_argument(flag + ": empty list");
  return out;
}

}  // namespace kadnet::bench
