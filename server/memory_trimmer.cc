#include "server/memory_trimmer.h"

#include <malloc.h>

#include "glog/logging.h"

namespace raftkv::server {

absl::Status MemoryTrimOptions::Validate() const {
  if (interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("memory trim interval must be > 0");
  }
  if (min_drop_bytes == 0) return absl::InvalidArgumentError("min_drop_bytes must be > 0");
  return absl::OkStatus();
}

MemoryTrimmer::MemoryTrimmer(MemoryTrimOptions options, AnswerBudget* budget)
    : options_(options), budget_(budget) {
  CHECK(options_.Validate().ok()) << options_.Validate();
  thread_ = std::thread([this] { Run(); });
}

MemoryTrimmer::~MemoryTrimmer() {
  stop_.Notify();
  thread_.join();
}

size_t MemoryTrimmer::TrimNow() {
  const size_t before = mallinfo2().fordblks;
  malloc_trim(0);
  const size_t after = mallinfo2().fordblks;
  // fordblks counts free bytes whether or not their pages are resident, so
  // this is the free memory trimmed off the top of the heaps; the pages in
  // the middle given back with madvise do not show.
  return before > after ? before - after : 0;
}

void MemoryTrimmer::Run() {
  while (!stop_.WaitForNotificationWithTimeout(options_.interval)) {
    const size_t drop = budget_->TakeDrop();
    if (drop < options_.min_drop_bytes) continue;
    const absl::Time start = absl::Now();
    TrimNow();
    LOG(INFO) << "answers held fell by " << (drop >> 20) << " MiB: returned free memory to the "
              << "system in " << absl::Now() - start;
  }
}

}  // namespace raftkv::server
