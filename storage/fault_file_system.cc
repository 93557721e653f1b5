#include "storage/fault_file_system.h"

#include <utility>

namespace raftkv::storage {
namespace {

// A writable file whose writes and syncs go through FaultFileSystem::Check.
class FaultWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultWritableFile(std::unique_ptr<rocksdb::FSWritableFile> target, std::string name,
                    FaultFileSystem* fs)
      : rocksdb::FSWritableFileOwnerWrapper(std::move(target)), name_(std::move(name)), fs_(fs) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->Check(name_, data.size());
    return s.ok() ? target()->Append(data, options, dbg) : s;
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->Check(name_, data.size());
    return s.ok() ? target()->Append(data, options, info, dbg) : s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->Check(name_, data.size());
    return s.ok() ? target()->PositionedAppend(data, offset, options, dbg) : s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->Check(name_, data.size());
    return s.ok() ? target()->PositionedAppend(data, offset, options, info, dbg) : s;
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->Check(name_, 0);
    return s.ok() ? target()->Sync(options, dbg) : s;
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->Check(name_, 0);
    return s.ok() ? target()->Fsync(options, dbg) : s;
  }
  rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->Check(name_, 0);
    return s.ok() ? target()->RangeSync(offset, nbytes, options, dbg) : s;
  }
  rocksdb::IOStatus Allocate(uint64_t offset, uint64_t len, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->Check(name_, 0);
    return s.ok() ? target()->Allocate(offset, len, options, dbg) : s;
  }

 private:
  const std::string name_;
  FaultFileSystem* const fs_;
};

}  // namespace

void FaultFileSystem::FailWrites(Fault fault, uint64_t after_bytes) {
  budget_.store(static_cast<int64_t>(after_bytes));
  fault_.store(fault);
}

rocksdb::IOStatus FaultFileSystem::Check(const std::string& file, uint64_t bytes) {
  const Fault fault = fault_.load();
  if (fault != Fault::kNone) {
    // Take `bytes` from the budget, or fail if it does not hold them.
    int64_t left = budget_.load();
    bool fits;
    do {
      fits = left > 0 && static_cast<uint64_t>(left) >= bytes;
      if (!fits) break;
    } while (!budget_.compare_exchange_weak(left, left - static_cast<int64_t>(bytes)));
    if (!fits) {
      budget_.store(0);  // a write that did not fit leaves nothing behind it
      failures_.fetch_add(1);
      if (fault == Fault::kNoSpace) {
        rocksdb::IOStatus s = rocksdb::IOStatus::NoSpace(
            "While appending to file: " + file, "No space left on device (injected)");
        s.SetRetryable(true);
        return s;
      }
      return rocksdb::IOStatus::IOError("While appending to file: " + file,
                                        "Input/output error (injected)");
    }
  }
  written_.fetch_add(bytes);
  return rocksdb::IOStatus::OK();
}

rocksdb::IOStatus FaultFileSystem::NewWritableFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  if (rocksdb::IOStatus s = Check(fname, 0); !s.ok()) return s;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = target()->NewWritableFile(fname, options, &file, dbg);
  if (s.ok()) result->reset(new FaultWritableFile(std::move(file), fname, this));
  return s;
}

rocksdb::IOStatus FaultFileSystem::ReopenWritableFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = target()->ReopenWritableFile(fname, options, &file, dbg);
  if (s.ok()) result->reset(new FaultWritableFile(std::move(file), fname, this));
  return s;
}

rocksdb::IOStatus FaultFileSystem::ReuseWritableFile(
    const std::string& fname, const std::string& old_fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  if (rocksdb::IOStatus s = Check(fname, 0); !s.ok()) return s;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = target()->ReuseWritableFile(fname, old_fname, options, &file, dbg);
  if (s.ok()) result->reset(new FaultWritableFile(std::move(file), fname, this));
  return s;
}

std::unique_ptr<rocksdb::Env> NewFaultEnv(const std::shared_ptr<FaultFileSystem>& fs) {
  return rocksdb::NewCompositeEnv(fs);
}

}  // namespace raftkv::storage
