// An Env for the throwaway stores the storage fuzz targets open per input:
// the default file system without preallocation. On tmpfs (fuzz/temp_dir.h)
// every preallocated byte is real memory: a LogStore's WAL preallocates
// 1.1x its 32 MiB memtables, which made each open cost ~70 ms, nearly all
// of it allocating and freeing those pages. Process-wide, never destroyed.
#ifndef RAFTKV_FUZZ_SCRATCH_ENV_H_
#define RAFTKV_FUZZ_SCRATCH_ENV_H_

#include <memory>
#include <string>

#include "rocksdb/env.h"
#include "rocksdb/file_system.h"

namespace raftkv::fuzz {

class NoFallocateFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  using rocksdb::FileSystemWrapper::FileSystemWrapper;
  const char* Name() const override { return "NoFallocateFileSystem"; }
  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    return target()->NewWritableFile(f, NoFallocate(o), r, dbg);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    return target()->ReopenWritableFile(f, NoFallocate(o), r, dbg);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override {
    return target()->ReuseWritableFile(f, old, NoFallocate(o), r, dbg);
  }

 private:
  static rocksdb::FileOptions NoFallocate(rocksdb::FileOptions o) {
    o.allow_fallocate = false;
    return o;
  }
};

inline rocksdb::Env* ScratchEnv() {
  static rocksdb::Env* env =
      rocksdb::NewCompositeEnv(std::make_shared<NoFallocateFileSystem>(rocksdb::FileSystem::Default()))
          .release();
  return env;
}

}  // namespace raftkv::fuzz

#endif  // RAFTKV_FUZZ_SCRATCH_ENV_H_
