#pragma once
// The process's resources, for the report: current resident set (/proc/self/statm) and its
// peak (getrusage ru_maxrss), both in KiB, and the CPU time it used.
namespace kadnet::bench {
long current_rss_kib();
long peak_rss_kib();
// CPU time the process used so far (user + system), seconds.
double process_cpu_seconds();
}  // namespace kadnet::bench
