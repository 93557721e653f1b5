#include "server/mvcc_compactor.h"

#include <utility>

#include "glog/logging.h"

namespace raftkv::server {

absl::Status MvccCompactorOptions::Validate() const {
  if (records_per_step == 0) return absl::InvalidArgumentError("records_per_step must be > 0");
  if (pause < absl::ZeroDuration() || poll <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("pause must be >= 0 and poll > 0");
  }
  return absl::OkStatus();
}

MvccCompactor::MvccCompactor(mvcc::Store* store, MvccCompactorOptions options)
    : store_(store), options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

MvccCompactor::~MvccCompactor() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void MvccCompactor::Nudge() {
  absl::MutexLock l(&mu_);
  nudged_ = true;
}

absl::Status MvccCompactor::WaitRemoved(int64_t revision, absl::Time deadline) {
  absl::MutexLock l(&mu_);
  nudged_ = true;
  auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return removed_ >= revision || stop_ || failed_;
  };
  mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
  if (removed_ >= revision) return absl::OkStatus();
  if (stop_ || failed_) return absl::UnavailableError("the node is stopping");
  return absl::DeadlineExceededError("the compacted history is still being removed");
}

void MvccCompactor::Run() {
  for (;;) {
    absl::StatusOr<bool> more = store_->CompactStep(options_.records_per_step);
    if (!more.ok()) {
      LOG(ERROR) << "removing compacted history failed: " << more.status();
      {
        absl::MutexLock l(&mu_);
        failed_ = true;
      }
      if (options_.on_error) options_.on_error(more.status());
      return;
    }
    absl::MutexLock l(&mu_);
    removed_ = store_->physically_compacted();
    auto wake = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_ || nudged_; };
    // Paced while there is more; otherwise until nudged or the next poll.
    mu_.AwaitWithTimeout(absl::Condition(&wake), *more ? options_.pause : options_.poll);
    if (stop_) return;
    nudged_ = false;
  }
}

}  // namespace raftkv::server
