#include "server/stage_trace.h"

#include <time.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace raftkv::server {

const char* StageName(Stage s) {
  switch (s) {
    case Stage::kArrived: return "arrived";
    case Stage::kProposed: return "proposed";
    case Stage::kAppendsSent: return "appends_sent";
    case Stage::kReceived: return "follower_received";
    case Stage::kStepped: return "follower_stepped";
    case Stage::kSynced: return "follower_synced";
    case Stage::kAcked: return "follower_acked";
    case Stage::kLeaderDurable: return "leader_durable";
    case Stage::kAckReceived: return "ack_received";
    case Stage::kAckStepped: return "ack_stepped";
    case Stage::kApplied: return "applied";
    case Stage::kAnswered: return "answered";
  }
  return "unknown";
}

bool IsFollowerStage(Stage s) {
  return s == Stage::kReceived || s == Stage::kStepped || s == Stage::kSynced ||
         s == Stage::kAcked;
}

uint64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

absl::StatusOr<std::unique_ptr<StageTrace>> StageTrace::Open(const std::string& path,
                                                             uint64_t every) {
  if (every == 0) return absl::InvalidArgumentError("stage trace: sample every >= 1 index");
  FILE* f = fopen(path.c_str(), "w");
  if (f == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("stage trace: cannot create ", path, ": ", strerror(errno)));
  }
  return std::unique_ptr<StageTrace>(new StageTrace(f, every));
}

StageTrace::~StageTrace() {
  absl::MutexLock l(&mu_);
  fclose(file_);
}

void StageTrace::Record(Stage stage, uint64_t index, uint64_t nanos) {
  if (!Sampled(index)) return;
  if (nanos == 0) nanos = MonotonicNanos();
  absl::MutexLock l(&mu_);
  fprintf(file_, "%s %llu %llu\n", StageName(stage), static_cast<unsigned long long>(index),
          static_cast<unsigned long long>(nanos));
}

void StageTrace::RecordRange(Stage stage, uint64_t first, uint64_t last) {
  const uint64_t from = (first + every_ - 1) / every_ * every_;
  if (from == 0 || from > last) return;
  const uint64_t now = MonotonicNanos();
  for (uint64_t i = from; i <= last; i += every_) Record(stage, i, now);
}

}  // namespace raftkv::server
