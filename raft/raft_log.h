// RaftLog: the core's view of the log: the stable part (a LogReader) plus
// the unstable tail the driver has not persisted yet, and the commit and
// applied indices.
//
// Invariants (checked by CheckInvariants):
//   FirstIndex()-1 <= applied <= committed <= LastIndex()
//   unstable.offset <= stable.LastIndex() + 1 (the tail starts inside or
//   right after the stable log; stable entries at >= offset are stale and
//   will be overwritten when the tail is persisted).
//   offset <= in_progress_end <= LastIndex() + 1: entries [offset,
//   in_progress_end) were handed to the driver's writer and are not known to
//   be durable yet (asynchronous writes only; empty in the synchronous mode).
#ifndef RAFTKV_RAFT_RAFT_LOG_H_
#define RAFTKV_RAFT_RAFT_LOG_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/log_reader.h"

namespace raftkv::raft {

class RaftLog {
 public:
  // `stable` is not owned and must outlive this object.
  // With `apply_only_durable`, committed entries are handed out for applying
  // only once this node has made them durable too (asynchronous writes: the
  // state machine never runs ahead of the local log, so a crash cannot leave
  // an applied index past the last entry).
  RaftLog(const LogReader* stable, uint64_t max_committed_bytes,
          bool apply_only_durable = false);

  // Loads commit/applied from the stable log. `applied` is what the state
  // machine already holds (raised to the snapshot index).
  absl::Status Init(uint64_t commit, uint64_t applied);

  uint64_t FirstIndex() const;
  uint64_t LastIndex() const;
  uint64_t LastTerm() const;
  uint64_t committed() const { return committed_; }
  uint64_t applied() const { return applied_; }

  // Term of entry i. FailedPrecondition("compacted") below FirstIndex()-1,
  // OutOfRange past LastIndex().
  absl::StatusOr<uint64_t> Term(uint64_t i) const;
  // Term(i), or 0 when the entry is compacted or missing.
  uint64_t TermOrZero(uint64_t i) const;
  // Whether we hold entry i and it has `term`: false for a missing or
  // compacted entry even if `term` is 0 (only index 0 has term 0).
  bool MatchTerm(uint64_t i, uint64_t term) const {
    absl::StatusOr<uint64_t> t = Term(i);
    return t.ok() && *t == term;
  }
  // Whether entry i is known (held, readable) and has a term other than
  // `term`.
  bool KnownToDiffer(uint64_t i, uint64_t term) const {
    absl::StatusOr<uint64_t> t = Term(i);
    return t.ok() && *t != term;
  }

  // §5.4.1: a candidate's log is at least as up to date as ours.
  bool IsUpToDate(uint64_t last_index, uint64_t term) const;

  // Follower side of AppendEntries (§5.3): if our entry at `index` has
  // `log_term`, appends `entries` (truncating a conflicting suffix), commits
  // up to min(leader_commit, last new index) and returns the last new index.
  // Returns nullopt when the terms do not match (the append is rejected).
  std::optional<uint64_t> MaybeAppend(uint64_t index, uint64_t log_term,
                                      uint64_t leader_commit,
                                      const std::vector<raftpb::Entry>& entries,
                                      uint64_t* truncated_from);

  // Leader side: appends entries after LastIndex(). Returns the last index.
  uint64_t Append(std::vector<raftpb::Entry> entries);

  // For a rejection hint (§5.3 optimization): the largest index <= index
  // whose term is <= term, with that term.
  std::pair<uint64_t, uint64_t> FindConflictByTerm(uint64_t index,
                                                   uint64_t term) const;

  // Entries in [lo, hi) up to max_bytes (at least one if lo < hi).
  absl::StatusOr<std::vector<raftpb::Entry>> Slice(uint64_t lo, uint64_t hi,
                                                   uint64_t max_bytes) const;

  void CommitTo(uint64_t index);
  // Commits `index` if it is past the commit index and has `term` (§5.4.2).
  bool MaybeCommit(uint64_t index, uint64_t term);

  // Committed entries not yet handed out for applying (byte-capped).
  bool HasNextCommittedEntries() const;
  // The highest index that may be applied: the commit index, capped at the
  // durable log with apply_only_durable.
  uint64_t ApplicableIndex() const;
  std::vector<raftpb::Entry> NextCommittedEntries() const;
  void AppliedTo(uint64_t index);

  // Replaces the log by a snapshot received from the leader.
  void Restore(const raftpb::Snapshot& snapshot);

  // The unstable tail that was not handed to the driver yet: what it must
  // persist next.
  std::vector<raftpb::Entry> UnwrittenEntries() const;
  bool HasUnwrittenEntries() const { return in_progress_end_ < offset_ + unstable_.size(); }
  // The driver took the unstable entries through `index` for writing.
  void InProgressTo(uint64_t index);
  const std::optional<raftpb::Snapshot>& unstable_snapshot() const {
    return unstable_snapshot_;
  }
  // The driver persisted the tail up to (index, term) / the snapshot. A
  // stale report (the entry at `index` no longer has `term`: a new leader
  // replaced it while the write was in flight) changes nothing; the write
  // that replaced it reports on its own.
  void StableTo(uint64_t index, uint64_t term);
  void StableSnapshotTo(uint64_t index);
  // Highest index known durable on this node.
  uint64_t StableLastIndex() const;

  absl::Status CheckInvariants() const;

 private:
  void TruncateAndAppend(const std::vector<raftpb::Entry>& entries, size_t from);

  const LogReader* stable_;
  uint64_t max_committed_bytes_;
  const bool apply_only_durable_;
  uint64_t committed_ = 0;
  uint64_t applied_ = 0;
  uint64_t offset_ = 1;  // index of unstable_[0]
  uint64_t in_progress_end_ = 1;  // first unstable index not handed out
  std::vector<raftpb::Entry> unstable_;
  std::optional<raftpb::Snapshot> unstable_snapshot_;
};

}  // namespace raftkv::raft

#endif  // RAFTKV_RAFT_RAFT_LOG_H_
