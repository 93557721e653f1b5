// Automatic compaction of the MVCC history, as etcd's
// --auto-compaction-mode / --auto-compaction-retention:
//
//   revision  every 5 minutes, compact to (current revision - retention),
//             keeping the last `retention` revisions;
//   periodic  keep the history of the last `retention` period: the revision
//             is sampled every min(period, 1h)/10; once `period` has passed
//             since the start (then every min(period, 1h)), compact to the
//             revision sampled `period` ago.
//
// Only the leader compacts (through the log: every member compacts at the
// same revision); every member samples, so a new leader goes on at once.
//
// CompactionPolicy is the deterministic core (time and state passed in);
// AutoCompactor runs one on its own thread.
#ifndef RAFTKV_SERVER_ETCD_AUTO_COMPACTOR_H_
#define RAFTKV_SERVER_ETCD_AUTO_COMPACTOR_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace raftkv::server::etcd {

struct AutoCompactionOptions {
  enum class Mode { kPeriodic, kRevision };
  Mode mode = Mode::kPeriodic;
  absl::Duration period;          // kPeriodic: history kept
  int64_t revisions = 0;          // kRevision: revisions kept
  absl::Duration revision_check = absl::Minutes(5);  // kRevision: how often

  absl::Status Validate() const;
  // How often the policy wants Step() called.
  absl::Duration step_interval() const;
};

// Parses etcd's two flags: mode "periodic" or "revision"; retention "0" (or
// "") for off, else for revision a count of revisions, for periodic a
// duration ("1h", "30m", "90s") or a bare number of hours (etcd's form).
// nullopt: off. InvalidArgument naming the flag otherwise.
absl::StatusOr<std::optional<AutoCompactionOptions>> ParseAutoCompaction(
    const std::string& mode, const std::string& retention);

class CompactionPolicy {
 public:
  // REQUIRES: options.Validate().ok().
  CompactionPolicy(AutoCompactionOptions options, absl::Time start);

  // Called every step_interval() with the time, the store's revision and
  // compact revision, and whether this member leads: the revision to
  // compact to now, if any. Done() reports the outcome.
  std::optional<int64_t> Step(absl::Time now, int64_t revision, int64_t compacted, bool leader);
  void Done(absl::Time now, int64_t revision, bool ok);

 private:
  const AutoCompactionOptions options_;
  absl::Time last_success_;
  bool first_done_ = false;  // periodic: the first compaction waits a whole period
  std::deque<std::pair<absl::Time, int64_t>> samples_;  // periodic, oldest first
};

class AutoCompactor {
 public:
  struct Hooks {
    std::function<bool()> is_leader;
    std::function<int64_t()> revision;
    std::function<int64_t()> compact_revision;
    // Proposes a compaction at `revision` and waits for its outcome.
    std::function<absl::Status(int64_t revision)> compact;
  };
  // Starts the thread. REQUIRES: options.Validate().ok(), every hook set.
  AutoCompactor(AutoCompactionOptions options, Hooks hooks);
  ~AutoCompactor();  // stops and joins

 private:
  void Run();

  const AutoCompactionOptions options_;
  const Hooks hooks_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace raftkv::server::etcd

#endif  // RAFTKV_SERVER_ETCD_AUTO_COMPACTOR_H_
