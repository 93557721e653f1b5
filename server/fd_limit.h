// The node's file descriptors: how many it may have (the soft RLIMIT_NOFILE,
// raised to the hard limit at start, as Go does for etcd) and how they are
// shared. RocksDB keeps at most `store_files` table files open, and
// connections never take one of the last `reserved` descriptors (see
// server/connection_listener.h), which cover the store's table files and
// what else the node opens (WALs, MANIFEST, logs, peer channels, snapshot
// and backup files). Without that split, a client holding enough
// connections made the next file the store created fail with EMFILE, and a
// failed file creation stops the node (server/storage_failure.h).
//
// Thread safety: RaiseFdLimit once at start, before threads that open files;
// the rest are pure functions.
#ifndef RAFTKV_SERVER_FD_LIMIT_H_
#define RAFTKV_SERVER_FD_LIMIT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace raftkv::server {

struct FdLimit {
  uint64_t soft = 0;    // in force now
  uint64_t before = 0;  // the soft limit the process started with
  uint64_t hard = 0;
};

// Raises the soft RLIMIT_NOFILE to the hard limit (no further than the
// kernel's fs.nr_open allows). An error only if the limit cannot be read; a
// limit that cannot be raised is kept as it was (soft == before).
absl::StatusOr<FdLimit> RaiseFdLimit();

struct FdBudget {
  int store_files = 0;  // RocksDB's max_open_files
  int reserved = 0;     // the last descriptors no connection takes
};

// The split of `limit` descriptors: the store gets a quarter of the limit,
// between 64 and 10000 table files, and the reserve is that plus 256 for
// the rest. InvalidArgument (naming `ulimit -n`) if fewer than 64 would be
// left for connections (a limit below 427).
absl::StatusOr<FdBudget> BudgetFds(uint64_t limit);

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_FD_LIMIT_H_
