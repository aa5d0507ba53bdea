#pragma once
// Number formatting shared by the benchmark's notes and report.
#include <cstdint>
#include <string>

namespace kadnet::bench {
inline std::string with_commas(std::uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}
}  // namespace kadnet::bench
