// What one thread hand-off costs on this machine: two threads pass a token
// back and forth through an absl::Mutex condition, the way a gRPC thread
// hands a request to the node's loop thread (server/node.h) and the loop
// answers. Every hop of a request that changes threads pays this once.
//
//   bazel run -c opt //tools:handoff_benchmark
//
// Rows: both threads free to run on any CPU (what the server does), and both
// pinned to CPU 0 (a hand-off that never wakes another CPU). Counters:
// hand-offs per second, and the CPU time (all threads of the process) per
// hand-off. On a VM an idle CPU woken by another CPU's interrupt exits to the
// hypervisor, and that time is charged to the threads involved: the gap
// between the two rows is the price of waking a CPU.
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"

namespace {

double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

bool PinToCpu0() {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

// The token alternates between side 0 (the benchmark thread) and side 1.
class Token {
 public:
  // Waits until it is `side`'s turn, then gives the turn to the other side.
  // Returns false once stopped.
  bool Pass(int side) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    auto mine = [this, side]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return turn_ == side || stopped_;
    };
    mu_.Await(absl::Condition(&mine));
    if (stopped_) return false;
    turn_ = 1 - side;
    return true;
  }
  void Stop() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock l(&mu_);
    stopped_ = true;
  }

 private:
  absl::Mutex mu_;
  int turn_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

void BM_Handoff(benchmark::State& state) {
  const bool pinned = state.range(0) != 0;
  if (pinned && !PinToCpu0()) {
    state.SkipWithError("cannot pin to CPU 0");
    return;
  }
  Token token;
  std::thread echo([&] {
    if (pinned) PinToCpu0();
    while (token.Pass(1)) {
    }
  });
  const double cpu0 = ProcessCpuSeconds();
  for (auto _ : state) {
    token.Pass(0);  // one round trip: two hand-offs
  }
  const double cpu = ProcessCpuSeconds() - cpu0;
  token.Stop();
  echo.join();
  const double handoffs = 2.0 * static_cast<double>(state.iterations());
  state.counters["handoffs_per_second"] =
      benchmark::Counter(handoffs, benchmark::Counter::kIsRate);
  state.counters["cpu_us_per_handoff"] = 1e6 * cpu / handoffs;
}
BENCHMARK(BM_Handoff)->ArgName("pinned_to_one_cpu")->Arg(0)->Arg(1)->UseRealTime();

}  // namespace
