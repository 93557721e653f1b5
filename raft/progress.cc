#include "raft/progress.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace raftkv::raft {

void Inflights::Add(uint64_t last_index) {
  CHECK(!Full()) << "inflight window overflow";
  CHECK(entries_.empty() || entries_.back() <= last_index)
      << "inflights must be added in index order";
  entries_.push_back(last_index);
}

void Inflights::FreeLE(uint64_t index) {
  while (!entries_.empty() && entries_.front() <= index) entries_.pop_front();
}

const char* ProgressStateName(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe:
      return "probe";
    case ProgressState::kReplicate:
      return "replicate";
    case ProgressState::kSnapshot:
      return "snapshot";
  }
  return "?";
}

void Progress::BecomeProbe() {
  // After a snapshot, resume right after it (or after match, if further).
  if (state_ == ProgressState::kSnapshot) {
    next_ = std::max(match_ + 1, pending_snapshot_ + 1);
  } else {
    next_ = match_ + 1;
  }
  state_ = ProgressState::kProbe;
  probe_sent_ = false;
  pending_snapshot_ = 0;
  inflights_.Reset();
}

void Progress::BecomeReplicate() {
  state_ = ProgressState::kReplicate;
  next_ = match_ + 1;
  probe_sent_ = false;
  pending_snapshot_ = 0;
  inflights_.Reset();
}

void Progress::BecomeSnapshot(uint64_t snapshot_index) {
  state_ = ProgressState::kSnapshot;
  pending_snapshot_ = snapshot_index;
  probe_sent_ = false;
  inflights_.Reset();
}

bool Progress::MaybeUpdate(uint64_t n) {
  bool updated = false;
  if (match_ < n) {
    match_ = n;
    updated = true;
    probe_sent_ = false;
  }
  next_ = std::max(next_, n + 1);
  inflights_.FreeLE(n);
  return updated;
}

void Progress::SentEntries(uint64_t last, bool carried_entries) {
  switch (state_) {
    case ProgressState::kReplicate:
      if (carried_entries) {
        next_ = last + 1;
        inflights_.Add(last);
      }
      break;
    case ProgressState::kProbe:
      probe_sent_ = true;
      break;
    case ProgressState::kSnapshot:
      LOG(FATAL) << "sending entries to a follower awaiting a snapshot";
  }
}

bool Progress::MaybeDecrTo(uint64_t rejected, uint64_t hint) {
  if (state_ == ProgressState::kReplicate) {
    // Pipelined: a rejection below match is stale (a reordered response).
    if (rejected <= match_) return false;
    next_ = match_ + 1;
    return true;
  }
  // Probe: only the rejection of the append we sent (at next-1) counts.
  if (next_ == 0 || next_ - 1 != rejected) return false;
  next_ = std::max(std::min(rejected, hint + 1), match_ + 1);
  probe_sent_ = false;
  return true;
}

bool Progress::IsPaused() const {
  switch (state_) {
    case ProgressState::kProbe:
      return probe_sent_;
    case ProgressState::kReplicate:
      return inflights_.Full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

std::string Progress::DebugString() const {
  return absl::StrCat(ProgressStateName(state_), " match=", match_,
                      " next=", next_, " inflight=", inflights_.Count(),
                      state_ == ProgressState::kSnapshot
                          ? absl::StrCat(" snapshot=", pending_snapshot_)
                          : "");
}

}  // namespace raftkv::raft
