#include "storage/fail_stop_file_system.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/fault_file_system.h"
#include "storage/test_util.h"

namespace raftkv::storage {
namespace {

using ::testing::HasSubstr;

class FailStopFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::TestDir();
    ASSERT_TRUE(std::filesystem::create_directories(dir_));
  }

  std::string dir_;
  std::shared_ptr<FaultFileSystem> faults_ =
      std::make_shared<FaultFileSystem>(rocksdb::FileSystem::Default());
  std::vector<std::string> reported_;
  FailStopFileSystem fs_{faults_, [this](const std::string& what, const rocksdb::IOStatus& s) {
                           reported_.push_back(what + ": " + s.ToString());
                         }};
  rocksdb::IOOptions io_;
};

TEST_F(FailStopFileSystemTest, ReportsEveryFailedWriteAndNothingElse) {
  const std::string name = dir_ + "/f";
  std::unique_ptr<rocksdb::FSWritableFile> file;
  ASSERT_TRUE(fs_.NewWritableFile(name, rocksdb::FileOptions(), &file, nullptr).ok());
  ASSERT_TRUE(file->Append("abc", io_, nullptr).ok());
  ASSERT_TRUE(file->Sync(io_, nullptr).ok());
  EXPECT_TRUE(reported_.empty());

  faults_->FailWrites(FaultFileSystem::Fault::kNoSpace);
  EXPECT_TRUE(file->Append("def", io_, nullptr).IsNoSpace());
  EXPECT_FALSE(file->Sync(io_, nullptr).ok());
  EXPECT_FALSE(file->Allocate(0, 1 << 20, io_, nullptr).ok());  // RocksDB ignores these
  std::unique_ptr<rocksdb::FSWritableFile> other;
  EXPECT_FALSE(fs_.NewWritableFile(dir_ + "/g", rocksdb::FileOptions(), &other, nullptr).ok());
  ASSERT_EQ(reported_.size(), 3u);
  EXPECT_THAT(reported_[0], HasSubstr("append to " + name + ": IO error: No space left"));
  EXPECT_THAT(reported_[1], HasSubstr("sync " + name + ": IO error: No space left"));
  EXPECT_THAT(reported_[2], HasSubstr("create " + dir_ + "/g: IO error: No space left"));

  faults_->Heal();
  EXPECT_TRUE(file->Append("ghi", io_, nullptr).ok());
  EXPECT_EQ(reported_.size(), 3u);
}

}  // namespace
}  // namespace raftkv::storage
