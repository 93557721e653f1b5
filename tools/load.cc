// load: put throughput and latency of a raftkv cluster.
//
//   tools/cluster start
//   bazel run -c opt //tools:load -- --endpoints=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
//
// For each count in --clients (default "1,32") it runs that many concurrent
// clients for --duration, each a raftkv::client::Client of its own (its own
// exactly-once session) doing back-to-back Puts of --value_bytes bytes over
// --keys keys per client, after a --warmup. It prints one line per count:
// puts/s and the p50/p99/max latency of a Put as the client library sees it
// (leader discovery, redirects and retries included). Errors are counted and
// the first few printed; the exit code is 1 if any Put failed.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "gflags/gflags.h"

DEFINE_string(endpoints, "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003",
              "The cluster's nodes, comma-separated host:port.");
DEFINE_string(clients, "1,32", "Comma-separated counts of concurrent clients; one run each.");
DEFINE_string(duration, "5s", "How long each run measures.");
DEFINE_string(warmup, "1s", "How long each run writes before measuring.");
DEFINE_int32(value_bytes, 100, "Size of each value.");
DEFINE_int32(keys, 1000, "Distinct keys per client (written round-robin).");

namespace {

using Clock = std::chrono::steady_clock;

struct Run {
  int clients = 0;
  uint64_t puts = 0;
  uint64_t errors = 0;
  double seconds = 0;
  std::vector<double> latencies_ms;  // sorted
  std::vector<std::string> first_errors;
};

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p * (sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

Run RunLoad(int clients, absl::Duration warmup, absl::Duration duration) {
  Run run;
  run.clients = clients;
  absl::Mutex mu;
  std::vector<std::unique_ptr<raftkv::client::Client>> cs;
  for (int i = 0; i < clients; ++i) {
    raftkv::client::ClientOptions o;
    o.endpoints = raftkv::client::SplitEndpoints(FLAGS_endpoints);
    auto c = raftkv::client::Client::Create(o);
    if (!c.ok()) {
      std::cerr << "load: " << c.status() << "\n";
      std::exit(2);
    }
    cs.push_back(std::move(*c));
  }
  const std::string value(FLAGS_value_bytes, 'v');
  const Clock::time_point start = Clock::now();
  const Clock::time_point measure_from = start + absl::ToChronoNanoseconds(warmup);
  const Clock::time_point end = measure_from + absl::ToChronoNanoseconds(duration);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      std::vector<double> lat;
      uint64_t errors = 0;
      std::vector<std::string> errs;
      for (uint64_t n = 0;; ++n) {
        const Clock::time_point t0 = Clock::now();
        if (t0 >= end) break;
        auto put = cs[i]->Put(absl::StrCat("load/", i, "/", n % FLAGS_keys), value);
        const Clock::time_point t1 = Clock::now();
        if (t0 < measure_from) continue;
        if (put.ok()) {
          lat.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        } else {
          ++errors;
          if (errs.size() < 3) errs.push_back(put.status().ToString());
        }
      }
      absl::MutexLock l(&mu);
      run.latencies_ms.insert(run.latencies_ms.end(), lat.begin(), lat.end());
      run.errors += errors;
      for (auto& e : errs) {
        if (run.first_errors.size() < 5) run.first_errors.push_back(std::move(e));
      }
    });
  }
  for (auto& t : threads) t.join();
  // Puts that began in the window; the last ones may end a little after it.
  run.seconds = std::chrono::duration<double>(std::max(Clock::now(), end) - measure_from).count();
  run.puts = run.latencies_ms.size();
  std::sort(run.latencies_ms.begin(), run.latencies_ms.end());
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "put throughput and latency: load --endpoints=HOST:PORT,... [--clients=1,32] "
      "[--duration=5s]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  absl::Duration duration, warmup;
  if (!absl::ParseDuration(FLAGS_duration, &duration) || duration <= absl::ZeroDuration()) {
    std::cerr << "load: bad --duration " << FLAGS_duration << "\n";
    return 2;
  }
  if (!absl::ParseDuration(FLAGS_warmup, &warmup) || warmup < absl::ZeroDuration()) {
    std::cerr << "load: bad --warmup " << FLAGS_warmup << "\n";
    return 2;
  }
  std::vector<int> counts;
  for (absl::string_view s : absl::StrSplit(FLAGS_clients, ',', absl::SkipEmpty())) {
    int n = 0;
    if (!absl::SimpleAtoi(s, &n) || n <= 0) {
      std::cerr << "load: bad --clients " << FLAGS_clients << "\n";
      return 2;
    }
    counts.push_back(n);
  }
  if (counts.empty() || FLAGS_value_bytes < 0 || FLAGS_keys <= 0) {
    std::cerr << "load: nothing to do (check --clients, --value_bytes, --keys)\n";
    return 2;
  }

  std::printf("endpoints %s, %d-byte values, %s per run after %s warmup\n",
              FLAGS_endpoints.c_str(), FLAGS_value_bytes,
              absl::FormatDuration(duration).c_str(), absl::FormatDuration(warmup).c_str());
  std::printf("%8s %10s %10s %9s %9s %9s %7s\n", "clients", "puts", "puts/s", "p50_ms",
              "p99_ms", "max_ms", "errors");
  bool failed = false;
  for (int n : counts) {
    Run r = RunLoad(n, warmup, duration);
    std::printf("%8d %10llu %10.0f %9.2f %9.2f %9.2f %7llu\n", r.clients,
                static_cast<unsigned long long>(r.puts), r.puts / r.seconds,
                Percentile(r.latencies_ms, 0.50), Percentile(r.latencies_ms, 0.99),
                r.latencies_ms.empty() ? 0.0 : r.latencies_ms.back(),
                static_cast<unsigned long long>(r.errors));
    std::fflush(stdout);
    for (const auto& e : r.first_errors) std::fprintf(stderr, "  error: %s\n", e.c_str());
    if (r.errors > 0) failed = true;
  }
  return failed ? 1 : 0;
}
