// Conversion of rocksdb::Status to absl::Status. Thread-safe.
#ifndef RAFTKV_STORAGE_ROCKS_STATUS_H_
#define RAFTKV_STORAGE_ROCKS_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "rocksdb/status.h"

namespace raftkv::storage {

// OK stays OK. Otherwise an absl::Status whose message is
// "<context>: <RocksDB's ToString()>" and whose code follows RocksDB's:
// NotFound -> kNotFound, Corruption -> kDataLoss, InvalidArgument ->
// kInvalidArgument, NotSupported -> kUnimplemented, Busy/TimedOut/TryAgain ->
// kUnavailable, Aborted -> kAborted, an IOError for a full disk (NoSpace)
// -> kResourceExhausted, an IOError on the LOCK file (the directory is in
// use) -> kFailedPrecondition, anything else -> kInternal.
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context);

// True if `s` is RocksDB's refusal to lock a DB directory that another
// process (or another DB object of this process) holds.
bool IsLockError(const rocksdb::Status& s);

}  // namespace raftkv::storage

#endif  // RAFTKV_STORAGE_ROCKS_STATUS_H_
