// Progress: the leader's view of one follower's log (Raft paper §5.3, with
// the probe/replicate/snapshot flow control of dissertation §10.2.1).
#ifndef RAFTKV_RAFT_PROGRESS_H_
#define RAFTKV_RAFT_PROGRESS_H_

#include <cstdint>
#include <deque>
#include <string>

namespace raftkv::raft {

// A bounded window of append messages in flight to one follower, each
// remembered by the last index it carried. Replication pauses when full.
class Inflights {
 public:
  explicit Inflights(size_t capacity) : capacity_(capacity) {}

  bool Full() const { return entries_.size() >= capacity_; }
  size_t Count() const { return entries_.size(); }
  // REQUIRES: !Full(), and last_index >= every index added before.
  void Add(uint64_t last_index);
  // Frees every message whose last index is <= index (acknowledged).
  void FreeLE(uint64_t index);
  void Reset() { entries_.clear(); }

 private:
  size_t capacity_;
  std::deque<uint64_t> entries_;
};

// How the leader sends to a follower:
// - kProbe: one append per heartbeat interval until the match point is
//   found (after a rejection or a restart of the leader).
// - kReplicate: appends are pipelined; next is advanced optimistically.
// - kSnapshot: a snapshot is on its way; nothing else is sent.
enum class ProgressState { kProbe, kReplicate, kSnapshot };

const char* ProgressStateName(ProgressState s);

// Invariant: match < next.
class Progress {
 public:
  Progress(uint64_t next, size_t max_inflight)
      : next_(next), inflights_(max_inflight) {}

  uint64_t match() const { return match_; }
  uint64_t next() const { return next_; }
  ProgressState state() const { return state_; }
  uint64_t pending_snapshot() const { return pending_snapshot_; }
  const Inflights& inflights() const { return inflights_; }

  // Set when the follower was heard from since the last CheckQuorum round.
  bool recent_active = false;
  // Highest heartbeat round the follower answered (ReadIndex, §6.4).
  uint64_t acked_round = 0;

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(uint64_t snapshot_index);

  // An append response acknowledged entries up to n: frees the in-flight
  // messages it covers. Returns true if match advanced (false for a stale,
  // reordered response).
  bool MaybeUpdate(uint64_t n);

  // An append carrying entries up to last was sent: in replicate state
  // next moves past it at once (pipelining).
  void SentEntries(uint64_t last, bool carried_entries);

  // The follower rejected an append at `rejected`; `hint` is where the
  // leader should probe next. Returns false if the rejection is stale.
  bool MaybeDecrTo(uint64_t rejected, uint64_t hint);

  // True when nothing more should be sent until a response or heartbeat.
  bool IsPaused() const;
  // A heartbeat response arrived: a probing leader may send again.
  void ResumeProbe() { probe_sent_ = false; }

  std::string DebugString() const;

 private:
  uint64_t match_ = 0;
  uint64_t next_;
  ProgressState state_ = ProgressState::kProbe;
  bool probe_sent_ = false;        // kProbe: an append is outstanding
  uint64_t pending_snapshot_ = 0;  // kSnapshot: index of the snapshot sent
  Inflights inflights_;
};

}  // namespace raftkv::raft

#endif  // RAFTKV_RAFT_PROGRESS_H_
