#include "raft/memory_log.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace raftkv::raft {

MemoryLog::MemoryLog(raftpb::ConfState initial) {
  *snapshot_.mutable_metadata()->mutable_conf_state() = std::move(initial);
}

absl::StatusOr<InitialState> MemoryLog::GetInitialState() const {
  return InitialState{hard_state_, snapshot_.metadata()};
}

absl::StatusOr<std::vector<raftpb::Entry>> MemoryLog::Entries(
    uint64_t lo, uint64_t hi, uint64_t max_bytes) const {
  if (lo < FirstIndex()) return absl::FailedPreconditionError("compacted");
  if (hi > LastIndex() + 1 || lo > hi) {
    return absl::OutOfRangeError(absl::StrCat("entries [", lo, ",", hi,
                                              ") past last index ", LastIndex()));
  }
  std::vector<raftpb::Entry> out;
  uint64_t bytes = 0;
  const uint64_t base = snapshot_.metadata().index() + 1;
  for (uint64_t i = lo; i < hi; ++i) {
    const raftpb::Entry& e = entries_[i - base];
    bytes += e.ByteSizeLong();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

absl::StatusOr<uint64_t> MemoryLog::Term(uint64_t i) const {
  const uint64_t snap = snapshot_.metadata().index();
  if (i < snap) return absl::FailedPreconditionError("compacted");
  if (i == snap) return snapshot_.metadata().term();
  if (i > LastIndex()) return absl::OutOfRangeError(absl::StrCat("no entry ", i));
  return entries_[i - snap - 1].term();
}

uint64_t MemoryLog::FirstIndex() const { return snapshot_.metadata().index() + 1; }

uint64_t MemoryLog::LastIndex() const {
  return snapshot_.metadata().index() + entries_.size();
}

absl::StatusOr<raftpb::Snapshot> MemoryLog::GetSnapshot() const { return snapshot_; }

absl::Status MemoryLog::Append(const std::vector<raftpb::Entry>& entries) {
  if (entries.empty()) return absl::OkStatus();
  const uint64_t first = entries.front().index();
  if (first < FirstIndex() || first > LastIndex() + 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "append at ", first, " outside [", FirstIndex(), ",", LastIndex() + 1, "]"));
  }
  for (size_t k = 1; k < entries.size(); ++k) {
    if (entries[k].index() != first + k) {
      return absl::InvalidArgumentError("entries are not contiguous");
    }
  }
  entries_.resize(first - FirstIndex());
  entries_.insert(entries_.end(), entries.begin(), entries.end());
  return absl::OkStatus();
}

absl::Status MemoryLog::ApplySnapshot(const raftpb::Snapshot& snapshot) {
  const auto& meta = snapshot.metadata();
  if (meta.index() <= snapshot_.metadata().index()) {
    return absl::FailedPreconditionError("snapshot is not newer");
  }
  auto term = Term(meta.index());
  if (term.ok() && *term == meta.term()) {
    entries_.erase(entries_.begin(),
                   entries_.begin() + (meta.index() - snapshot_.metadata().index()));
  } else {
    entries_.clear();
  }
  snapshot_ = snapshot;
  return absl::OkStatus();
}

absl::Status MemoryLog::Compact(uint64_t index, const raftpb::ConfState& cs,
                                std::string data) {
  if (index < FirstIndex() || index > LastIndex()) {
    return absl::OutOfRangeError(absl::StrCat("compact to ", index));
  }
  auto term = Term(index);
  if (!term.ok()) return term.status();
  entries_.erase(entries_.begin(),
                 entries_.begin() + (index - snapshot_.metadata().index()));
  auto* meta = snapshot_.mutable_metadata();
  meta->set_index(index);
  meta->set_term(*term);
  *meta->mutable_conf_state() = cs;
  snapshot_.set_data(std::move(data));
  return absl::OkStatus();
}

}  // namespace raftkv::raft
