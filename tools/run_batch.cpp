#include "tools/run_batch.hpp"

#include <condition_variable>
#include <memory>
#include <mutex>

namespace kadnet::tools {
namespace {

using clock = std::chrono::steady_clock;

// Shared with the completions, which may outlive run_batch when the limit cuts a batch short.
struct batch_state {
  std::mutex m;
  std::condition_variable changed;
  std::size_t started = 0, completed = 0;
  std::size_t issuing = 0;  // calls of `issue` under way: run_batch waits for them before returning
  bool closed = false;      // run_batch has returned or is returning: start nothing more
  batch b;
};

// Ends one call of `issue`, waking run_batch only when what it waits for may have come: the
// last completion, or the last call under way once it closed the batch. Waking it for every
// completion would cost a futex and a context switch per operation, on the cores the measured
// nodes need.
void finish_issuing(batch_state& st, std::size_t count) {
  bool wake;
  {
    std::lock_guard lock(st.m);
    --st.issuing;
    wake = st.completed == count || (st.closed && st.issuing == 0);
  }
  if (wake) st.changed.notify_all();
}

// Starts the next operation, if any is left and the batch is open. The completion it hands to
// `issue` records the result and starts the next one.
void start_next(const std::shared_ptr<batch_state>& st, std::size_t count, const batch_issue& issue) {
  std::size_t k;
  {
    std::lock_guard lock(st->m);
    if (st->closed || st->started == count) return;
    k = st->started++;
    ++st->issuing;
  }
  const auto op_start = clock::now();
  // `issue` is referenced only while `issuing` is non-zero, during which run_batch keeps it alive.
  issue(k, [st, count, &issue, op_start](bool ok, int rounds) {
    bool open;
    {
      std::lock_guard lock(st->m);
      if (st->closed) return;
      if (ok) {
        ++st->b.ok;
        st->b.latency_ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - op_start).count());
        if (rounds >= 0) st->b.rounds.push_back(rounds);
      } else {
        ++st->b.failed;
      }
      ++st->completed;
      open = st->completed < count;
      ++st->issuing;  // the call below may reach `issue`
    }
    if (open) start_next(st, count, issue);
    finish_issuing(*st, count);
  });
  finish_issuing(*st, count);
}

}  // namespace

batch run_batch(std::size_t count, const batch_issue& issue, int in_flight, std::chrono::seconds limit) {
  auto st = std::make_shared<batch_state>();
  if (count == 0) return {};
  const auto t0 = clock::now();
  const double cpu0 = process_cpu_seconds();
  for (int w = 0; w < in_flight; ++w) start_next(st, count, issue);
  std::unique_lock lock(st->m);
  st->changed.wait_until(lock, t0 + limit, [&] { return st->completed == count; });
  st->closed = true;
  // A completion running right now may be inside `issue`: let it leave before `issue` goes away.
  st->changed.wait(lock, [&] { return st->issuing == 0; });
  batch b = std::move(st->b);
  b.failed += count - st->completed;
  b.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  b.cpu_seconds = process_cpu_seconds() - cpu0;
  return b;
}

}  // namespace kadnet::tools
