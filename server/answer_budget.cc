#include "server/answer_budget.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace raftkv::server {

absl::Status AnswerBudgetOptions::Validate() const {
  // A 1 MiB value is charged ~2 MiB: below this a few answers fill it.
  constexpr size_t kMinNode = size_t{16} << 20;
  if (node_bytes < kMinNode) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--answer_budget_bytes=", node_bytes, " is below the minimum of ", kMinNode));
  }
  if (stream_bytes == 0 || stream_bytes > node_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--stream_answer_budget_bytes=", stream_bytes,
                     " must be > 0 and at most --answer_budget_bytes=", node_bytes));
  }
  return absl::OkStatus();
}

AnswerBudget::AnswerBudget(AnswerBudgetOptions options) : options_(options) {
  CHECK(options_.Validate().ok()) << options_.Validate();
}

bool AnswerBudget::FitsLocked(size_t bytes) const {
  if (held_ == 0) return true;
  const size_t limit =
      bytes <= kSmallBytes ? options_.node_bytes : options_.node_bytes - options_.node_bytes / 8;
  return held_ + bytes <= limit;
}

bool AnswerBudget::LargeWaiterLocked() const {
  for (const Waiter& w : waiters_) {
    if (w.bytes > kSmallBytes) return true;
  }
  return false;
}

bool AnswerBudget::TryAcquire(size_t bytes) {
  absl::MutexLock l(&mu_);
  if (!FitsLocked(bytes) || (bytes > kSmallBytes && LargeWaiterLocked())) return false;
  AddLocked(bytes);
  return true;
}

void AnswerBudget::Force(size_t bytes) {
  absl::MutexLock l(&mu_);
  AddLocked(bytes);
}

bool AnswerBudget::AcquireOrWait(size_t bytes, std::function<void()> granted,
                                 uint64_t* ticket) {
  absl::MutexLock l(&mu_);
  if (FitsLocked(bytes) && (bytes <= kSmallBytes || !LargeWaiterLocked())) {
    AddLocked(bytes);
    return true;
  }
  *ticket = next_ticket_++;
  waiters_.push_back({*ticket, bytes, std::move(granted)});
  const absl::Time now = absl::Now();
  if (now - last_full_log_ > absl::Seconds(10)) {
    last_full_log_ = now;
    LOG(WARNING) << "answer budget full: " << held_ << " of --answer_budget_bytes="
                 << options_.node_bytes << " held in answers clients have not read; "
                 << waiters_.size() << " request(s) wait for them to read";
  }
  return false;
}

bool AnswerBudget::Cancel(uint64_t ticket) {
  absl::MutexLock l(&mu_);
  for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
    if (it->ticket == ticket) {
      waiters_.erase(it);
      return true;
    }
  }
  return false;
}

void AnswerBudget::Release(size_t bytes) {
  if (bytes == 0) return;
  std::vector<std::function<void()>> granted;
  {
    absl::MutexLock l(&mu_);
    CHECK_GE(held_, bytes);
    held_ -= bytes;
    // Oldest first; a large waiter that does not fit stops later large ones
    // (arrival order), small ones may pass it.
    bool large_blocked = false;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      const bool large = it->bytes > kSmallBytes;
      if ((large && large_blocked) || !FitsLocked(it->bytes)) {
        large_blocked |= large;
        ++it;
        continue;
      }
      AddLocked(it->bytes);
      granted.push_back(std::move(it->granted));
      it = waiters_.erase(it);
    }
  }
  for (auto& g : granted) g();
}

void AnswerBudget::AddLocked(size_t bytes) {
  held_ += bytes;
  peak_ = std::max(peak_, held_);
}

size_t AnswerBudget::TakeDrop() {
  absl::MutexLock l(&mu_);
  return std::exchange(peak_, held_) - held_;
}

size_t AnswerBudget::held() const {
  absl::MutexLock l(&mu_);
  return held_;
}

size_t AnswerBudget::waiters() const {
  absl::MutexLock l(&mu_);
  return waiters_.size();
}

}  // namespace raftkv::server
