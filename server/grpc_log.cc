#include "server/grpc_log.h"

#include <atomic>

#include "absl/synchronization/mutex.h"
#include "glog/logging.h"
#include "grpc/support/log.h"

namespace raftkv::server {
namespace {

struct Limiter {
  absl::Mutex mu;
  int burst = 20;
  absl::Duration period = absl::Seconds(10);
  absl::Time window_start ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  int passed ABSL_GUARDED_BY(mu) = 0;
  uint64_t dropped_since_last ABSL_GUARDED_BY(mu) = 0;
};

Limiter& TheLimiter() {
  static Limiter* l = new Limiter();
  return *l;
}

std::atomic<uint64_t> dropped_total{0};

void ToGlog(gpr_log_func_args* args) {
  Limiter& l = TheLimiter();
  uint64_t dropped_before = 0;
  {
    absl::MutexLock lock(&l.mu);
    const absl::Time now = absl::Now();
    if (now - l.window_start >= l.period) {
      l.window_start = now;
      l.passed = 0;
    }
    if (l.passed >= l.burst) {
      ++l.dropped_since_last;
      dropped_total.fetch_add(1);
      return;
    }
    ++l.passed;
    dropped_before = l.dropped_since_last;
    l.dropped_since_last = 0;
  }
  const char* suffix = "";
  std::string note;
  if (dropped_before > 0) {
    note = " (" + std::to_string(dropped_before) + " gRPC log lines dropped before this one)";
    suffix = note.c_str();
  }
  const int severity =
      args->severity == GPR_LOG_SEVERITY_ERROR ? google::GLOG_WARNING : google::GLOG_INFO;
  google::LogMessage(args->file, args->line, severity).stream()
      << "grpc: " << args->message << suffix;
}

}  // namespace

void RouteGrpcLogsToGlog(int burst, absl::Duration period) {
  Limiter& l = TheLimiter();
  {
    absl::MutexLock lock(&l.mu);
    l.burst = burst;
    l.period = period;
    l.window_start = absl::InfinitePast();
    l.passed = 0;
  }
  gpr_set_log_function(ToGlog);
}

uint64_t GrpcLogLinesDropped() { return dropped_total.load(); }

}  // namespace raftkv::server
