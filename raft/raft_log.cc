#include "raft/raft_log.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace raftkv::raft {

RaftLog::RaftLog(const LogReader* stable, uint64_t max_committed_bytes,
                 bool apply_only_durable)
    : stable_(stable),
      max_committed_bytes_(max_committed_bytes),
      apply_only_durable_(apply_only_durable) {}

absl::Status RaftLog::Init(uint64_t commit, uint64_t applied) {
  offset_ = stable_->LastIndex() + 1;
  in_progress_end_ = offset_;
  const uint64_t snap = stable_->FirstIndex() - 1;
  if (commit > stable_->LastIndex()) {
    return absl::DataLossError(absl::StrCat("commit index ", commit,
                                            " is past the last log index ",
                                            stable_->LastIndex()));
  }
  committed_ = std::max(commit, snap);
  applied_ = std::max(applied, snap);
  if (applied_ > stable_->LastIndex()) {
    return absl::DataLossError(absl::StrCat("applied index ", applied_,
                                            " is past the last log index ",
                                            stable_->LastIndex()));
  }
  // Only committed entries are applied, so the applied index proves them
  // committed. With asynchronous writes the (unsynced) commit index may
  // reach the disk after the state machine's write of the entries it covers.
  committed_ = std::max(committed_, applied_);
  return absl::OkStatus();
}

uint64_t RaftLog::FirstIndex() const {
  if (unstable_snapshot_) return unstable_snapshot_->metadata().index() + 1;
  return stable_->FirstIndex();
}

uint64_t RaftLog::LastIndex() const {
  if (!unstable_.empty()) return offset_ + unstable_.size() - 1;
  if (unstable_snapshot_) return unstable_snapshot_->metadata().index();
  return stable_->LastIndex();
}

uint64_t RaftLog::StableLastIndex() const { return offset_ - 1; }

uint64_t RaftLog::LastTerm() const {
  auto t = Term(LastIndex());
  CHECK(t.ok()) << "term of the last entry: " << t.status();
  return *t;
}

absl::StatusOr<uint64_t> RaftLog::Term(uint64_t i) const {
  if (!unstable_.empty() && i >= offset_) {
    if (i - offset_ < unstable_.size()) return unstable_[i - offset_].term();
    return absl::OutOfRangeError(absl::StrCat("no entry ", i));
  }
  if (unstable_snapshot_) {
    const auto& m = unstable_snapshot_->metadata();
    if (i == m.index()) return m.term();
    if (i < m.index()) return absl::FailedPreconditionError("compacted");
    return absl::OutOfRangeError(absl::StrCat("no entry ", i));
  }
  if (i > LastIndex()) return absl::OutOfRangeError(absl::StrCat("no entry ", i));
  return stable_->Term(i);
}

uint64_t RaftLog::TermOrZero(uint64_t i) const {
  auto t = Term(i);
  return t.ok() ? *t : 0;
}

bool RaftLog::IsUpToDate(uint64_t last_index, uint64_t term) const {
  const uint64_t our_term = LastTerm();
  return term > our_term || (term == our_term && last_index >= LastIndex());
}

std::optional<uint64_t> RaftLog::MaybeAppend(
    uint64_t index, uint64_t log_term, uint64_t leader_commit,
    const std::vector<raftpb::Entry>& entries, uint64_t* truncated_from) {
  *truncated_from = 0;
  if (!MatchTerm(index, log_term)) return std::nullopt;
  const uint64_t last_new = index + entries.size();
  // Skip the entries we already hold; truncate from the first conflict
  // (§5.3: "If an existing entry conflicts with a new one, delete it and all
  // that follow"), but never drop entries that match (a stale append).
  size_t k = 0;
  for (; k < entries.size(); ++k) {
    const auto& e = entries[k];
    if (!MatchTerm(e.index(), e.term())) break;
  }
  if (k < entries.size()) {
    const uint64_t conflict = entries[k].index();
    // Unreachable from a peer: Raft answers an append from below its commit
    // index without appending (after Step refused it if it contradicts).
    CHECK_GT(conflict, committed_) << "conflict with committed entry " << conflict;
    if (conflict <= LastIndex()) *truncated_from = conflict;
    TruncateAndAppend(entries, k);
  }
  CommitTo(std::min(leader_commit, last_new));
  return last_new;
}

uint64_t RaftLog::Append(std::vector<raftpb::Entry> entries) {
  if (entries.empty()) return LastIndex();
  CHECK_EQ(entries.front().index(), LastIndex() + 1);
  if (unstable_.empty()) offset_ = in_progress_end_ = entries.front().index();
  for (auto& e : entries) unstable_.push_back(std::move(e));
  return LastIndex();
}

void RaftLog::TruncateAndAppend(const std::vector<raftpb::Entry>& entries,
                                size_t from) {
  const uint64_t after = entries[from].index();
  if (!unstable_.empty() && after == offset_ + unstable_.size()) {
    // Directly after the tail.
  } else if (after <= offset_) {
    // Replaces the whole tail (and stable entries from `after` on).
    offset_ = after;
    unstable_.clear();
  } else if (!unstable_.empty()) {
    unstable_.resize(after - offset_);
  } else {
    CHECK_EQ(after, offset_) << "append leaves a hole";
  }
  if (unstable_.empty()) offset_ = after;
  // Entries from `after` on must be written again, even if a write of
  // their predecessors at these indexes is in flight.
  in_progress_end_ = std::max(offset_, std::min(in_progress_end_, after));
  unstable_.insert(unstable_.end(), entries.begin() + from, entries.end());
}

std::vector<raftpb::Entry> RaftLog::UnwrittenEntries() const {
  if (!HasUnwrittenEntries()) return {};
  return std::vector<raftpb::Entry>(unstable_.begin() + (in_progress_end_ - offset_),
                                    unstable_.end());
}

void RaftLog::InProgressTo(uint64_t index) {
  CHECK(index >= in_progress_end_ && index < offset_ + unstable_.size())
      << "in progress to " << index << " outside [" << in_progress_end_ << ","
      << offset_ + unstable_.size() << ")";
  in_progress_end_ = index + 1;
}

std::pair<uint64_t, uint64_t> RaftLog::FindConflictByTerm(uint64_t index,
                                                          uint64_t term) const {
  index = std::min(index, LastIndex());
  while (true) {
    auto t = Term(index);
    if (!t.ok()) return {index, 0};
    if (*t <= term) return {index, *t};
    if (index == 0) return {0, 0};
    --index;
  }
}

absl::StatusOr<std::vector<raftpb::Entry>> RaftLog::Slice(
    uint64_t lo, uint64_t hi, uint64_t max_bytes) const {
  if (lo < FirstIndex()) return absl::FailedPreconditionError("compacted");
  if (hi > LastIndex() + 1) {
    return absl::OutOfRangeError(absl::StrCat("slice past last index ", hi));
  }
  std::vector<raftpb::Entry> out;
  if (lo >= hi) return out;
  uint64_t bytes = 0;
  if (lo < offset_) {
    auto stable = stable_->Entries(lo, std::min(hi, offset_), max_bytes);
    if (!stable.ok()) return stable.status();
    out = std::move(*stable);
    for (const auto& e : out) bytes += e.ByteSizeLong();
    if (out.empty() || out.back().index() + 1 < std::min(hi, offset_)) return out;
  }
  for (uint64_t i = std::max(lo, offset_); i < hi; ++i) {
    const auto& e = unstable_[i - offset_];
    bytes += e.ByteSizeLong();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

void RaftLog::CommitTo(uint64_t index) {
  if (index <= committed_) return;
  CHECK_LE(index, LastIndex()) << "commit past the last index";
  committed_ = index;
}

bool RaftLog::MaybeCommit(uint64_t index, uint64_t term) {
  if (index > committed_ && TermOrZero(index) == term) {
    CommitTo(index);
    return true;
  }
  return false;
}

uint64_t RaftLog::ApplicableIndex() const {
  return apply_only_durable_ ? std::min(committed_, StableLastIndex()) : committed_;
}

bool RaftLog::HasNextCommittedEntries() const { return ApplicableIndex() > applied_; }

std::vector<raftpb::Entry> RaftLog::NextCommittedEntries() const {
  if (!HasNextCommittedEntries()) return {};
  auto ents = Slice(applied_ + 1, ApplicableIndex() + 1, max_committed_bytes_);
  CHECK(ents.ok()) << "committed entries unavailable: " << ents.status();
  return std::move(*ents);
}

void RaftLog::AppliedTo(uint64_t index) {
  if (index == 0) return;
  CHECK(index <= committed_ && index >= applied_)
      << "applied " << index << " outside [" << applied_ << "," << committed_ << "]";
  applied_ = index;
}

void RaftLog::Restore(const raftpb::Snapshot& snapshot) {
  const uint64_t index = snapshot.metadata().index();
  committed_ = index;
  applied_ = index;  // the driver installs the image before applying more
  offset_ = in_progress_end_ = index + 1;
  unstable_.clear();
  unstable_snapshot_ = snapshot;
}

void RaftLog::StableTo(uint64_t index, uint64_t term) {
  if (unstable_.empty() || index < offset_) return;
  if (index - offset_ >= unstable_.size()) return;
  // Only if the entry is still the one that was persisted: a newer append
  // may have replaced it meanwhile.
  if (unstable_[index - offset_].term() != term) return;
  unstable_.erase(unstable_.begin(), unstable_.begin() + (index - offset_ + 1));
  offset_ = index + 1;
  in_progress_end_ = std::max(in_progress_end_, offset_);
}

void RaftLog::StableSnapshotTo(uint64_t index) {
  if (unstable_snapshot_ && unstable_snapshot_->metadata().index() == index) {
    unstable_snapshot_.reset();
  }
}

absl::Status RaftLog::CheckInvariants() const {
  if (applied_ > committed_) {
    return absl::InternalError(absl::StrCat("applied ", applied_, " > committed ", committed_));
  }
  if (committed_ > LastIndex()) {
    return absl::InternalError(absl::StrCat("committed ", committed_, " > last ", LastIndex()));
  }
  if (applied_ + 1 < FirstIndex()) {
    return absl::InternalError(absl::StrCat("applied ", applied_, " below first index ",
                                            FirstIndex()));
  }
  if (!unstable_snapshot_ && offset_ > stable_->LastIndex() + 1) {
    return absl::InternalError(absl::StrCat("unstable offset ", offset_,
                                            " leaves a hole after ", stable_->LastIndex()));
  }
  if (in_progress_end_ < offset_ || in_progress_end_ > offset_ + unstable_.size()) {
    return absl::InternalError(absl::StrCat("entries in progress end at ", in_progress_end_,
                                            " outside the unstable tail [", offset_, ",",
                                            offset_ + unstable_.size(), "]"));
  }
  if (apply_only_durable_ && applied_ > StableLastIndex()) {
    return absl::InternalError(absl::StrCat("applied ", applied_, " past the durable log ",
                                            StableLastIndex()));
  }
  for (size_t k = 0; k < unstable_.size(); ++k) {
    if (unstable_[k].index() != offset_ + k) {
      return absl::InternalError("unstable entries are not contiguous");
    }
    if (k > 0 && unstable_[k].term() < unstable_[k - 1].term()) {
      return absl::InternalError("terms decrease in the log");
    }
  }
  return absl::OkStatus();
}

}  // namespace raftkv::raft
