// StageTrace: timestamps of sampled writes at each step through a node, for
// seeing where a write's latency goes (docs/BENCHMARKS.md, "put-1, stage by
// stage"; tools/stage_report merges the files of all members).
//
// Every node writes one text file; a line is "<stage> <log index> <ns>",
// the time on CLOCK_MONOTONIC (shared by the processes of one machine, so
// the members' files line up). Only indexes divisible by `every` are kept,
// and only the first record of a stage per index matters to the report.
//
// Thread-safe. Off by default (the server's --stage_trace_file): the node
// then holds a null StageTrace* and skips every call.
#ifndef RAFTKV_SERVER_STAGE_TRACE_H_
#define RAFTKV_SERVER_STAGE_TRACE_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace raftkv::server {

// In the order a write passes them on a 3-member cluster.
enum class Stage {
  kArrived,           // leader: the client's write handed to the node
  kProposed,          // leader: given to the core (its index known)
  kAppendsSent,       // leader: the round's appends handed to the transport
  kReceived,          // follower: an append with the entry arrived
  kStepped,           // follower: the loop stepped it
  kSynced,            // follower: the entry is durable
  kAcked,             // follower: the ack handed to the transport
  kLeaderDurable,     // leader: its own write of the entry is durable
  kAckReceived,       // leader: an ack covering the entry arrived
  kAckStepped,        // leader: the loop stepped it
  kApplied,           // leader: the state machine applied the entry
  kAnswered,          // leader: the answers of the round were written
};
inline constexpr Stage kFirstStage = Stage::kArrived;
inline constexpr Stage kLastStage = Stage::kAnswered;
const char* StageName(Stage s);
// Recorded by a follower (the others by the leader).
bool IsFollowerStage(Stage s);
uint64_t MonotonicNanos();

class StageTrace {
 public:
  // Creates (truncates) `path`; InvalidArgument if it cannot, or if
  // `every` is 0.
  static absl::StatusOr<std::unique_ptr<StageTrace>> Open(const std::string& path,
                                                          uint64_t every);
  ~StageTrace();  // flushes and closes

  bool Sampled(uint64_t index) const { return index % every_ == 0; }
  // Records `stage` for `index` at `nanos` (0: now), if `index` is sampled.
  void Record(Stage stage, uint64_t index, uint64_t nanos = 0) ABSL_LOCKS_EXCLUDED(mu_);
  // Records `stage` now for every sampled index in [first, last].
  void RecordRange(Stage stage, uint64_t first, uint64_t last) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  StageTrace(FILE* f, uint64_t every) : file_(f), every_(every) {}

  absl::Mutex mu_;
  FILE* const file_ ABSL_PT_GUARDED_BY(mu_);
  const uint64_t every_;
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_STAGE_TRACE_H_
