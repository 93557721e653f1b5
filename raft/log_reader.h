// LogReader: the narrow, read-only view of stable storage the Raft core uses.
//
// The core never writes through this interface: it hands entries, hard state
// and snapshots to its driver in a Ready, and the driver persists them (see
// raft.h). Implementations: raft::MemoryLog (tests, simulation) and
// storage::LogStore (RocksDB, the server).
//
// Thread safety: the core calls these from its single driver thread; an
// implementation must tolerate that thread reading while the same thread (the
// driver) writes between calls. No concurrent calls are made by the core.
#ifndef RAFTKV_RAFT_LOG_READER_H_
#define RAFTKV_RAFT_LOG_READER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/raft.pb.h"

namespace raftkv::raft {

// What a node recovers on start: its hard state, and the metadata of the
// snapshot its log starts after (index 0, term 0 and the initial membership
// for a log that was never compacted).
struct InitialState {
  raftpb::HardState hard_state;
  raftpb::SnapshotMetadata snapshot;
};

class LogReader {
 public:
  virtual ~LogReader() = default;

  virtual absl::StatusOr<InitialState> GetInitialState() const = 0;

  // Entries in [lo, hi), stopping before the total serialized size would
  // pass max_bytes, but always at least one entry when lo < hi.
  // REQUIRES: FirstIndex() <= lo <= hi <= LastIndex() + 1.
  // Errors: FailedPrecondition("compacted") if lo < FirstIndex().
  virtual absl::StatusOr<std::vector<raftpb::Entry>> Entries(
      uint64_t lo, uint64_t hi, uint64_t max_bytes) const = 0;

  // Term of the entry at index i, for FirstIndex()-1 <= i <= LastIndex()
  // (the compacted index answers with the snapshot's term).
  // Errors: FailedPrecondition("compacted") below that range, OutOfRange
  // above it.
  virtual absl::StatusOr<uint64_t> Term(uint64_t i) const = 0;

  // Index of the first entry still in the log: snapshot index + 1.
  virtual uint64_t FirstIndex() const = 0;

  // Index of the last entry; the snapshot index when the log is empty.
  virtual uint64_t LastIndex() const = 0;

  // The latest snapshot, to send to a follower that needs compacted entries.
  // Its data may be empty when the driver transfers the image separately.
  // Errors: Unavailable if a snapshot is being prepared (the core retries).
  virtual absl::StatusOr<raftpb::Snapshot> GetSnapshot() const = 0;
};

}  // namespace raftkv::raft

#endif  // RAFTKV_RAFT_LOG_READER_H_
