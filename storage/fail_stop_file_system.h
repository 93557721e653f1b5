// FailStopFileSystem: a rocksdb::FileSystemWrapper that hands every failed
// write to a handler before RocksDB sees the error: an append, flush, sync,
// range sync, truncation or close of a writable file, the creation of one, a
// rename, or a directory sync. A failed preallocation is not reported
// (RocksDB ignores it: the writes that follow fail if space is really short).
//
// Why: RocksDB 7.8 remembers a failed write on the file's writer and aborts
// on an assertion (`sync_without_flush_called_`) when the file is written or
// synced again, e.g. by another thread's SyncWAL just after this thread's
// write failed. A handler that ends the process (the server's, see
// server/storage_failure.h) makes a failed write fail-stop: nothing reaches
// RocksDB after the error. A handler that returns lets the error go on as
// usual.
//
// Thread safety: the handler runs on the thread of the failed call, possibly
// several at once; it must be thread-safe.
#ifndef RAFTKV_STORAGE_FAIL_STOP_FILE_SYSTEM_H_
#define RAFTKV_STORAGE_FAIL_STOP_FILE_SYSTEM_H_

#include <functional>
#include <memory>
#include <string>

#include "rocksdb/file_system.h"
#include "rocksdb/io_status.h"

namespace raftkv::storage {

class FailStopFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  // `what`: the operation and file, e.g. "append to /d/000012.log".
  using Handler = std::function<void(const std::string& what, const rocksdb::IOStatus& error)>;

  FailStopFileSystem(const std::shared_ptr<rocksdb::FileSystem>& target, Handler handler)
      : rocksdb::FileSystemWrapper(target), handler_(std::move(handler)) {}
  const char* Name() const override { return "FailStopFileSystem"; }

  // Calls the handler if `s` failed; returns `s`.
  rocksdb::IOStatus Report(const rocksdb::IOStatus& s, const char* op,
                           const std::string& file) const;

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
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& target,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& options,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;

 private:
  const Handler handler_;
};

}  // namespace raftkv::storage

#endif  // RAFTKV_STORAGE_FAIL_STOP_FILE_SYSTEM_H_
