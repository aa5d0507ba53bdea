#pragma once
// The progress of one file transfer told to people: percent, MB/s, a bar for terminals, and when
// a report is due (a terminal's bar is redrawn at most every 100 ms; a log gets a line at every
// further tenth of the file). Time is a parameter.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace kadnet::tools {

class transfer_meter {
 public:
  using clock = std::chrono::steady_clock;

  transfer_meter(std::uint64_t total, clock::time_point start) : total_(total), start_(start) {}

  // Records that `done` bytes of the file are through; true when a report is due. The first
  // call sets where this transfer began (a resume starts past 0).
  bool update(std::uint64_t done, bool terminal, clock::time_point now) {
    if (!started_) {
      started_ = true;
      first_ = done;
    }
    done_ = done;
    now_ = now;
    bool due;
    if (done == total_) due = !reported_end_;
    else if (terminal) due = now - last_report_ >= std::chrono::milliseconds(100) || !reported_any_;
    else due = tenth(done) > tenth(last_done_) || !reported_any_;
    if (!due) return false;
    reported_any_ = true;
    reported_end_ = done == total_;
    last_report_ = now;
    last_done_ = done;
    return true;
  }

  std::uint64_t done() const { return done_; }
  std::uint64_t total() const { return total_; }
  double percent() const { return total_ == 0 ? 100.0 : 100.0 * static_cast<double>(done_) / static_cast<double>(total_); }
  double seconds() const { return std::chrono::duration<double>(now_ - start_).count(); }
  // Bytes moved by this transfer (not those resumed) per second, in MB (10^6 bytes).
  double mb_per_s() const {
    double s = seconds();
    return s <= 0 ? 0.0 : static_cast<double>(done_ - first_) / s / 1e6;
  }

  // "[###########.........]  55.0 %   12.3 MB/s  name"
  std::string bar(std::string_view name) const {
    constexpr std::size_t width = 30;
    auto filled = static_cast<std::size_t>(percent() / 100.0 * width);
    char numbers[64];
    std::snprintf(numbers, sizeof numbers, "] %5.1f %%  %7.1f MB/s  ", percent(), mb_per_s());
    std::string out(1, '[');
    out.append(filled, '#').append(width - filled, '.').append(numbers).append(name);
    return out;
  }
  // "sending name: 55 % (123 of 456 bytes), 12.3 MB/s"
  std::string line(std::string_view verb, std::string_view name) const {
    char numbers[128];
    std::snprintf(numbers, sizeof numbers, ": %.0f %% (%llu of %llu bytes), %.1f MB/s", percent(),
                  static_cast<unsigned long long>(done_), static_cast<unsigned long long>(total_), mb_per_s());
    std::string out(verb);
    out.append(1, ' ').append(name).append(numbers);
    return out;
  }

 private:
  std::uint64_t tenth(std::uint64_t done) const {
    return total_ == 0 ? 10 : static_cast<std::uint64_t>(10.0 * static_cast<double>(done) / static_cast<double>(total_));
  }

  std::uint64_t total_;
  clock::time_point start_, now_{start_}, last_report_{};
  std::uint64_t first_ = 0, done_ = 0, last_done_ = 0;
  bool started_ = false, reported_any_ = false, reported_end_ = false;
};

}  // namespace kadnet::tools
