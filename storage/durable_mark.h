// DurableMark: a small file beside the RocksDB files that records how far
// the store's log and hard state were known durable, so that a store whose
// WAL later lost synced writes (a disk that lied, a truncated or missing
// WAL file) refuses to open instead of running with a rolled-back log.
//
// It lives outside RocksDB's WAL on purpose: a rollback of the WAL rolls
// back everything in it. It is rewritten (temporary file, fdatasync,
// rename, directory fsync) at most once per interval by LogStore's marker
// thread and once more when the store closes, so it may lag the log by up
// to one interval: a rollback of only the last interval's writes before a
// crash goes unnoticed (docs/DURABILITY.md says so). It never runs ahead:
// before a write removes the marked entry (a conflicting suffix replaced, a
// snapshot discarding the log), LogStore first writes a lower mark naming an
// entry the write keeps.
//
// Thread-compatible; LogStore serializes its use.
#ifndef RAFTKV_STORAGE_DURABLE_MARK_H_
#define RAFTKV_STORAGE_DURABLE_MARK_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace raftkv::storage {

struct DurableMark {
  uint64_t term = 0;        // hard state term
  uint64_t last_index = 0;  // the log's last index ...
  uint64_t last_term = 0;   // ... and its entry's term
  uint64_t commit = 0;      // hard state commit

  bool operator==(const DurableMark& o) const {
    return term == o.term && last_index == o.last_index && last_term == o.last_term &&
           commit == o.commit;
  }
  bool operator!=(const DurableMark& o) const { return !(*this == o); }
  std::string DebugString() const;
};

// The mark file's path in store directory `dir`.
std::string DurableMarkPath(const std::string& dir);

// Reads the mark in `dir`: nullopt if there is none; DataLoss if the file is
// malformed (it is only ever replaced whole, so it cannot be torn).
absl::StatusOr<std::optional<DurableMark>> ReadDurableMark(const std::string& dir);

// Replaces the mark in `dir` durably.
absl::Status WriteDurableMark(const std::string& dir, const DurableMark& mark);

}  // namespace raftkv::storage

#endif  // RAFTKV_STORAGE_DURABLE_MARK_H_
