#include "storage/wal_file_system.h"

#include <memory>

namespace raftkv::storage {

rocksdb::FileOptions WalPreallocatingFileSystem::OptimizeForLogWrite(
    const rocksdb::FileOptions& file_options, const rocksdb::DBOptions& db_options) const {
  rocksdb::FileOptions options = target()->OptimizeForLogWrite(file_options, db_options);
  options.fallocate_with_keep_size = false;
  return options;
}

rocksdb::Env* WalPreallocatingEnv() {
  static rocksdb::Env* const env =
      rocksdb::NewCompositeEnv(
          std::make_shared<WalPreallocatingFileSystem>(rocksdb::FileSystem::Default()))
          .release();
  return env;
}

}  // namespace raftkv::storage
