// MvccCompactor: removes the history the MVCC store's compact revision hides
// (mvcc::Store::CompactStep) on a thread of its own, a bounded number of
// records per step with a pause between steps, so the apply loop never waits
// for it and disk work stays paced. Wakes when the compact revision rises.
#ifndef RAFTKV_SERVER_MVCC_COMPACTOR_H_
#define RAFTKV_SERVER_MVCC_COMPACTOR_H_

#include <cstdint>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "mvcc/store.h"

namespace raftkv::server {

struct MvccCompactorOptions {
  size_t records_per_step = 1000;
  absl::Duration pause = absl::Milliseconds(10);  // between steps
  absl::Duration poll = absl::Milliseconds(200);  // for a new compact revision
  // Called (on the compactor's thread) if a step fails: a storage error,
  // fatal to the node. Empty: logged, and the compactor stops.
  std::function<void(const absl::Status&)> on_error;

  absl::Status Validate() const;
};

class MvccCompactor {
 public:
  // `store` is not owned and must outlive the compactor. Starts the thread.
  MvccCompactor(mvcc::Store* store, MvccCompactorOptions options);
  ~MvccCompactor();  // stops and joins the thread

  // Wakes the thread now (e.g. a Compact was applied). Any thread.
  void Nudge() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until the history below `revision` is removed from disk, or the
  // deadline passes (DeadlineExceeded) or the compactor stops (Unavailable).
  // Any thread but the compactor's.
  absl::Status WaitRemoved(int64_t revision, absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run();

  mvcc::Store* const store_;
  const MvccCompactorOptions options_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool nudged_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  int64_t removed_ ABSL_GUARDED_BY(mu_) = 0;  // physically compacted revision
  std::thread thread_;
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_MVCC_COMPACTOR_H_
