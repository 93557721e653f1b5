// FaultFileSystem: a rocksdb::FileSystemWrapper that makes writes fail on
// demand, as a full or failing disk does (ENOSPC, EIO). Test-only
// (storage/log_store_fault_test.cc, server/storage_failure_test.cc; whole
// nodes are tested on a real small tmpfs, tests/disk_full_test.cc).
//
// Once armed (FailWrites) and after `after_bytes` more bytes were appended
// successfully, every append, sync, range sync and preallocation of every
// file written through it fails with the chosen error, and so does creating
// a new writable file (as creating a file whose first block cannot be
// allocated). Renames and deletions still work (they need no new blocks).
// NoSpace errors are marked retryable, as RocksDB's own POSIX file system
// reports ENOSPC. Heal() makes writes succeed again.
//
// Thread safety: every method may be called from any thread.
#ifndef RAFTKV_STORAGE_FAULT_FILE_SYSTEM_H_
#define RAFTKV_STORAGE_FAULT_FILE_SYSTEM_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/io_status.h"

namespace raftkv::storage {

class FaultFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  enum class Fault { kNone, kNoSpace, kIoError };

  explicit FaultFileSystem(const std::shared_ptr<rocksdb::FileSystem>& target)
      : rocksdb::FileSystemWrapper(target) {}
  const char* Name() const override { return "FaultFileSystem"; }

  // Writes fail with `fault` once `after_bytes` more bytes have been
  // appended (0: at once). kNone is Heal().
  void FailWrites(Fault fault, uint64_t after_bytes = 0);
  void Heal() { FailWrites(Fault::kNone); }
  // Writes that failed since construction.
  uint64_t failures() const { return failures_.load(); }
  // Bytes appended successfully since construction.
  uint64_t bytes_written() const { return written_.load(); }

  // The error a write of `bytes` (0: a sync or a creation) at `file` gets
  // now: OK, or the fault. Counts the bytes of a write that succeeds.
  rocksdb::IOStatus Check(const std::string& file, uint64_t bytes);

  rocksdb::IOStatus NewWritableFile(const std::string& fname,
                                    const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;

 private:
  std::atomic<Fault> fault_{Fault::kNone};
  // Bytes still allowed before the fault takes effect.
  std::atomic<int64_t> budget_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> written_{0};
};

// A new Env over `fs` (RocksDB's default Env for everything else), owned by
// the caller; it must outlive every store opened with it.
std::unique_ptr<rocksdb::Env> NewFaultEnv(const std::shared_ptr<FaultFileSystem>& fs);

}  // namespace raftkv::storage

#endif  // RAFTKV_STORAGE_FAULT_FILE_SYSTEM_H_
