#include "benchmarks/sim/report.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <iomanip>
#include <sstream>

namespace kadnet::bench {
namespace {

std::string format(double v, int decimals) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(decimals) << v;
  return s.str();
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// The project's targets for a DHT at scale (the 100,000-node figures; smaller swarms must meet
// them too).
struct target {
  const char* figure;
  const char* label;
  const char* unit;
  const char* goal_text;
  std::function<bool(double)> met;
};
const std::vector<target>& targets() {
  static const std::vector<target> list = {
      {"build_s", "build time (wall)", "s", "<= 300 s", [](double v) { return v <= 300; }},
      // 40 KB = 40,000 bytes = 39.06 KiB.
      {"kib_per_node", "memory per node (RSS)", "KiB", "<= 39.06 KiB", [](double v) { return v * 1024 <= 40000; }},
      {"success_pct", "lookup success", "%", "100 %", [](double v) { return v >= 100; }},
      {"rounds_median", "lookup rounds, median", "", "<= 4", [](double v) { return v <= 4; }},
      {"rounds_p99", "lookup rounds, p99", "", "<= 6", [](double v) { return v <= 6; }},
  };
  return list;
}

}  // namespace

std::optional<double> figures::number_of(const std::string& name) const {
  for (const entry& e : entries_)
    if (e.name == name)
      if (const double* v = std::get_if<double>(&e.value)) return *v;
  return std::nullopt;
}

std::string figures::text_of(const std::string& name) const {
  for (const entry& e : entries_)
    if (e.name == name)
      if (const auto* v = std::get_if<std::string>(&e.value)) return *v;
  return {};
}

namespace {
template <typename T>
double nearest_rank(std::vector<T> sample, double p) {
  if (sample.empty()) return 0;
  std::sort(sample.begin(), sample.end());
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sample.size())));
  return static_cast<double>(sample[std::clamp<std::size_t>(rank, 1, sample.size()) - 1]);
}
}  // namespace

double percentile(std::vector<int> sample, double p) { return nearest_rank(std::move(sample), p); }
double percentile(std::vector<double> sample, double p) { return nearest_rank(std::move(sample), p); }

void print_json(std::ostream& out, const figures& f) {
  out << "{";
  bool first = true;
  for (const auto& e : f.entries()) {
    out << (first ? "" : ", ") << json_string(e.name) << ": ";
    first = false;
    if (const auto* s = std::get_if<std::string>(&e.value)) out << json_string(*s);
    else out << format(std::get<double>(e.value), e.decimals);
  }
  out << "}\n";
}

void print_table(std::ostream& out, const figures& f) {
  auto num = [&](const char* name) { return f.number_of(name).value_or(0); };
  out << "kadnet sim: " << format(num("nodes"), 0) << " DHT nodes, links " << format(num("latency_ms"), 0)
      << " ms +/- " << format(num("jitter_ms"), 0) << " ms, loss " << format(100 * num("loss"), 1)
      << " %, seed " << format(num("seed"), 0) << "\n";
  out << "  " << std::left << std::setw(28) << "target" << std::right << std::setw(14) << "measured"
      << std::setw(16) << "goal" << std::setw(6) << "met" << "\n";
  std::vector<std::string> shown{"bench", "nodes", "transport", "seed", "loss", "latency_ms", "jitter_ms"};
  for (const target& t : targets()) {
    shown.push_back(t.figure);
    const auto* e = &*std::find_if(f.entries().begin(), f.entries().end(),
                                   [&](const figures::entry& x) { return x.name == t.figure; });
    const double v = std::get<double>(e->value);
    std::string measured = format(v, e->decimals) + (*t.unit ? std::string(" ") + t.unit : "");
    out << "  " << std::left << std::setw(28) << t.label << std::right << std::setw(14) << measured
        << std::setw(16) << t.goal_text << std::setw(6) << (t.met(v) ? "yes" : "NO") << "\n";
  }
  out << "  other figures:\n";
  for (const auto& e : f.entries()) {
    if (std::find(shown.begin(), shown.end(), e.name) != shown.end()) continue;
    out << "    " << std::left << std::setw(26) << e.name << std::right << std::setw(14);
    if (const auto* s = std::get_if<std::string>(&e.value)) out << *s;
    else out << format(std::get<double>(e.value), e.decimals);
    out << "\n";
  }
}

}  // namespace kadnet::bench
