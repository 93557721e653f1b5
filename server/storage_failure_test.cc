#include "server/storage_failure.h"

#include <filesystem>
#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/data_batch.h"
#include "storage/fault_file_system.h"
#include "storage/log_store.h"
#include "storage/test_util.h"

namespace raftkv::server {
namespace {

using ::testing::HasSubstr;

TEST(StorageFailureTest, MessageNamesDirFreeSpaceAndError) {
  const std::string dir = storage::testing::TestDir();
  std::filesystem::create_directories(dir);
  const std::string msg =
      WriteFailureMessage(dir, absl::ResourceExhaustedError("Append: No space left on device"));
  EXPECT_THAT(msg, HasSubstr("data dir " + dir));
  EXPECT_THAT(msg, HasSubstr("bytes ("));  // the free space
  EXPECT_THAT(msg, HasSubstr("free on its filesystem"));
  EXPECT_THAT(msg, HasSubstr("RESOURCE_EXHAUSTED: Append: No space left on device"));
}

// A write the store failed ends the process with exit status 74 and the
// line, not an abort; any other error is a bug and aborts.
TEST(StorageFailureDeathTest, FailedWriteExitsCleanly) {
  auto fs = std::make_shared<storage::FaultFileSystem>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = storage::NewFaultEnv(fs);
  storage::Options options;
  options.dir = storage::testing::TestDir();
  options.env = env.get();
  auto store = storage::LogStore::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();

  EXPECT_DEATH(StoreWriteFailed(**store, "applying", absl::InvalidArgumentError("a bug")),
               "applying: INVALID_ARGUMENT: a bug");

  fs->FailWrites(storage::FaultFileSystem::Fault::kNoSpace);
  storage::DataBatch b;
  b.Put("k", "v");
  absl::Status s = (*store)->ApplyBatch(b, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EXIT(StoreWriteFailed(**store, "applying committed entries", s),
              ::testing::ExitedWithCode(kStorageFailureExit),
              "stopping: a write to data dir .* failed \\(.* bytes .* free on its filesystem\\): "
              "RESOURCE_EXHAUSTED: applying committed entries: .*No space left on device");
}

}  // namespace
}  // namespace raftkv::server
