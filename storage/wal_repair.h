// A torn last record in the live write-ahead log: what a crash (SIGKILL,
// power loss) mid-write leaves behind, repaired the way etcd repairs its WAL.
//
// Why it is needed: recovery runs with kTolerateCorruptedTailRecords
// (log_store_open.cc), which drops an incomplete record at the end of a WAL
// but refuses any record whose checksum fails. Our WAL's preallocated space
// is part of the file (wal_file_system.h), so a record cut short by a crash
// is not at the end of the file: zeros follow it, its checksum fails, and
// RocksDB would refuse to open a store whose only fault is a write that
// never completed (and so was never synced or acknowledged).
//
// RepairTornWalTail looks at the newest WAL of a store that failed to open
// with Corruption. If its records are all intact up to one whose checksum or
// framing fails, and nothing but zeros follows that record, the record is a
// torn write: the file is cut where the logical record began (synced), and
// the caller opens again. So is a record written in fragments whose last
// fragments are missing (zeros where they should be). Damage anywhere else (an intact record, or any
// non-zero byte, after the bad one) is left alone: the open keeps failing.
//
// Not thread-safe; call only on a closed store.
#ifndef RAFTKV_STORAGE_WAL_REPAIR_H_
#define RAFTKV_STORAGE_WAL_REPAIR_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace raftkv::storage {

struct TornWalTail {
  std::string wal;       // the file's path
  uint64_t cut_at = 0;   // its new length: where the torn record began
  uint64_t dropped = 0;  // bytes of the torn record that were written (non-zero)
};

// Where `wal` (the bytes of one RocksDB WAL file in the legacy, non-recycled
// record format) should be cut, if its only damage is a torn last record;
// nullopt if it has no damaged record or its damage is not a torn tail.
std::optional<uint64_t> FindTornTail(absl::string_view wal);

// Finds the newest WAL file in `dir` and, if FindTornTail says so, cuts it
// and syncs it. Returns what was cut, or nullopt if nothing was.
absl::StatusOr<std::optional<TornWalTail>> RepairTornWalTail(const std::string& dir);

}  // namespace raftkv::storage

#endif  // RAFTKV_STORAGE_WAL_REPAIR_H_
