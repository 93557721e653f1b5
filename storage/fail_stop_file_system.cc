#include "storage/fail_stop_file_system.h"

#include <utility>

namespace raftkv::storage {
namespace {

class FailStopWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FailStopWritableFile(std::unique_ptr<rocksdb::FSWritableFile> target, std::string name,
                       const FailStopFileSystem* fs)
      : rocksdb::FSWritableFileOwnerWrapper(std::move(target)), name_(std::move(name)), fs_(fs) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    return fs_->Report(target()->Append(data, options, dbg), "append to", name_);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    return fs_->Report(target()->Append(data, options, info, dbg), "append to", name_);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    return fs_->Report(target()->PositionedAppend(data, offset, options, dbg), "append to", name_);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    return fs_->Report(target()->PositionedAppend(data, offset, options, info, dbg), "append to",
                       name_);
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    return fs_->Report(target()->Truncate(size, options, dbg), "truncate", name_);
  }
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return fs_->Report(target()->Close(options, dbg), "close", name_);
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return fs_->Report(target()->Flush(options, dbg), "flush", name_);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return fs_->Report(target()->Sync(options, dbg), "sync", name_);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return fs_->Report(target()->Fsync(options, dbg), "sync", name_);
  }
  rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    return fs_->Report(target()->RangeSync(offset, nbytes, options, dbg), "sync", name_);
  }

 private:
  const std::string name_;
  const FailStopFileSystem* const fs_;
};

class FailStopDirectory final : public rocksdb::FSDirectoryWrapper {
 public:
  FailStopDirectory(std::unique_ptr<rocksdb::FSDirectory> target, std::string name,
                    const FailStopFileSystem* fs)
      : rocksdb::FSDirectoryWrapper(std::move(target)), name_(std::move(name)), fs_(fs) {}

  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return fs_->Report(FSDirectoryWrapper::Fsync(options, dbg), "sync directory", name_);
  }
  rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& options,
                                        rocksdb::IODebugContext* dbg,
                                        const rocksdb::DirFsyncOptions& dir_options) override {
    return fs_->Report(FSDirectoryWrapper::FsyncWithDirOptions(options, dbg, dir_options),
                       "sync directory", name_);
  }

 private:
  const std::string name_;
  const FailStopFileSystem* const fs_;
};

}  // namespace

rocksdb::IOStatus FailStopFileSystem::Report(const rocksdb::IOStatus& s, const char* op,
                                             const std::string& file) const {
  if (!s.ok() && handler_) handler_(std::string(op) + " " + file, s);
  return s;
}

rocksdb::IOStatus FailStopFileSystem::NewWritableFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s =
      Report(target()->NewWritableFile(fname, options, &file, dbg), "create", fname);
  if (s.ok()) result->reset(new FailStopWritableFile(std::move(file), fname, this));
  return s;
}

rocksdb::IOStatus FailStopFileSystem::ReopenWritableFile(
    const std::string& fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s =
      Report(target()->ReopenWritableFile(fname, options, &file, dbg), "open", fname);
  if (s.ok()) result->reset(new FailStopWritableFile(std::move(file), fname, this));
  return s;
}

rocksdb::IOStatus FailStopFileSystem::ReuseWritableFile(
    const std::string& fname, const std::string& old_fname, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  rocksdb::IOStatus s = Report(
      target()->ReuseWritableFile(fname, old_fname, options, &file, dbg), "create", fname);
  if (s.ok()) result->reset(new FailStopWritableFile(std::move(file), fname, this));
  return s;
}

rocksdb::IOStatus FailStopFileSystem::RenameFile(const std::string& src,
                                                 const std::string& target_name,
                                                 const rocksdb::IOOptions& options,
                                                 rocksdb::IODebugContext* dbg) {
  return Report(target()->RenameFile(src, target_name, options, dbg), "rename to", target_name);
}

rocksdb::IOStatus FailStopFileSystem::NewDirectory(const std::string& name,
                                                   const rocksdb::IOOptions& options,
                                                   std::unique_ptr<rocksdb::FSDirectory>* result,
                                                   rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSDirectory> dir;
  rocksdb::IOStatus s = target()->NewDirectory(name, options, &dir, dbg);
  if (s.ok()) result->reset(new FailStopDirectory(std::move(dir), name, this));
  return s;
}

}  // namespace raftkv::storage
