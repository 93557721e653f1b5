// MemoryLog: an in-memory LogReader with the write operations a driver
// performs, for tests, the simulator and benchmarks. Not thread-safe.
#ifndef RAFTKV_RAFT_MEMORY_LOG_H_
#define RAFTKV_RAFT_MEMORY_LOG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "raft/log_reader.h"

namespace raftkv::raft {

class MemoryLog : public LogReader {
 public:
  // A log that was never compacted, starting with membership `initial`.
  explicit MemoryLog(raftpb::ConfState initial = {});

  absl::StatusOr<InitialState> GetInitialState() const override;
  absl::StatusOr<std::vector<raftpb::Entry>> Entries(
      uint64_t lo, uint64_t hi, uint64_t max_bytes) const override;
  absl::StatusOr<uint64_t> Term(uint64_t i) const override;
  uint64_t FirstIndex() const override;
  uint64_t LastIndex() const override;
  absl::StatusOr<raftpb::Snapshot> GetSnapshot() const override;

  // Appends `entries`, replacing any existing suffix from entries[0].index.
  // REQUIRES: contiguous entries, first one in [FirstIndex(), LastIndex()+1].
  absl::Status Append(const std::vector<raftpb::Entry>& entries);
  void SetHardState(const raftpb::HardState& hs) { hard_state_ = hs; }
  const raftpb::HardState& hard_state() const { return hard_state_; }

  // Installs a received snapshot: the log is discarded, or kept after the
  // snapshot if it holds the snapshot's entry (same index and term).
  absl::Status ApplySnapshot(const raftpb::Snapshot& snapshot);

  // Records a snapshot of the state machine at `index` and drops the log
  // up to it. REQUIRES: FirstIndex() <= index <= LastIndex().
  absl::Status Compact(uint64_t index, const raftpb::ConfState& cs,
                       std::string data);

 private:
  raftpb::HardState hard_state_;
  raftpb::Snapshot snapshot_;
  std::vector<raftpb::Entry> entries_;  // entries_[k].index == snapshot index + 1 + k
};

}  // namespace raftkv::raft

#endif  // RAFTKV_RAFT_MEMORY_LOG_H_
