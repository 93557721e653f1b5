// The file system every LogStore hands RocksDB: the default one, except that
// a write-ahead log's preallocation also extends the file's size.
//
// Why: each synced write ends in fdatasync. When the write grew the file,
// fdatasync must also commit the new size through the file system's journal,
// a second device flush. RocksDB preallocates its WAL in blocks (1.1x the
// largest memtable) but by default keeps the size unchanged; with the size
// extended at preallocation, a small synced append rewrites allocated space
// and the journal is touched once per preallocated block (and once per file
// block written for the first time). log_store_benchmark, synced 1-entry
// append on ext4: ~200 -> ~140 us; batches of 16 or more are unchanged.
// This is the setting RocksDB's EnvOptions::fallocate_with_keep_size
// describes for workloads that sync every write; etcd's WAL preallocates
// its segments the same way.
//
// Crash safety: a live WAL ends in zeros (the unwritten preallocated space)
// until RocksDB closes it and truncates it to its length. RocksDB's log
// reader skips zero-filled space (the zero-type, zero-length record it
// keeps for preallocated regions), so recovery still ends where the last
// synced record ends; storage/crash_test checks it by SIGKILL at random
// moments, log_store_open_test by opening a copy taken mid-write.
#ifndef RAFTKV_STORAGE_WAL_FILE_SYSTEM_H_
#define RAFTKV_STORAGE_WAL_FILE_SYSTEM_H_

#include "rocksdb/env.h"
#include "rocksdb/file_system.h"

namespace raftkv::storage {

class WalPreallocatingFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  using rocksdb::FileSystemWrapper::FileSystemWrapper;
  const char* Name() const override { return "WalPreallocatingFileSystem"; }
  // The target's options for a WAL, with fallocate_with_keep_size false.
  rocksdb::FileOptions OptimizeForLogWrite(const rocksdb::FileOptions& file_options,
                                           const rocksdb::DBOptions& db_options) const override;
};

// A process-wide Env over WalPreallocatingFileSystem on the default file
// system. Never destroyed (like rocksdb::Env::Default()); any thread.
rocksdb::Env* WalPreallocatingEnv();

}  // namespace raftkv::storage

#endif  // RAFTKV_STORAGE_WAL_FILE_SYSTEM_H_
