#pragma once
// Numeric command-line values of the benchmark programs: a bad one throws std::invalid_argument
// naming the flag and the text, which the program prints with its usage line.
#include <cstdint>
#include <stdexcept>
#include <string>

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

}  // namespace kadnet::bench
