#pragma once
// The figures of one benchmark run, in the order they were measured, and the two ways they are
// printed: a table against the project's targets, or one JSON object on one line.
#include <optional>
#include <ostream>
#include <string>
#include <variant>
#include <vector>

namespace kadnet::bench {

class figures {
 public:
  void text(std::string name, std::string value) { entries_.push_back({std::move(name), std::move(value), 0}); }
  // `decimals` is how many the printed value keeps (0: an integer).
  void number(std::string name, double value, int decimals = 0) {
    entries_.push_back({std::move(name), value, decimals});
  }
  std::optional<double> number_of(const std::string& name) const;
  std::string text_of(const std::string& name) const;

  struct entry {
    std::string name;
    std::variant<std::string, double> value;
    int decimals;
  };
  const std::vector<entry>& entries() const { return entries_; }

 private:
  std::vector<entry> entries_;
};

// Nearest-rank percentile (p in (0, 1]) of a sample; 0 for an empty one.
double percentile(std::vector<int> sample, double p);
double percentile(std::vector<double> sample, double p);

void print_json(std::ostream& out, const figures& f);
void print_table(std::ostream& out, const figures& f);

}  // namespace kadnet::bench
