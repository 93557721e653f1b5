#include "storage/info_log.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/test_util.h"

namespace raftkv::storage {
namespace {

using ::testing::HasSubstr;

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(InfoLogTest, WritesLinesAndKeepsTheNewestOldLogs) {
  const std::string dir = testing::TestDir();
  std::filesystem::create_directories(dir);
  for (int run = 0; run < 6; ++run) {
    auto log = InfoLog::Open(dir, /*keep_old=*/2);
    rocksdb::Log(rocksdb::InfoLogLevel::INFO_LEVEL, log.get(), "run %d", run);
    rocksdb::Log(rocksdb::InfoLogLevel::WARN_LEVEL, log.get(), "warning %d", run);
    EXPECT_EQ(log->dropped(), 0u);
  }
  const std::string current = Read(dir + "/LOG");
  EXPECT_THAT(current, HasSubstr("run 5\n"));
  EXPECT_THAT(current, HasSubstr("[WARN] "));
  EXPECT_THAT(current, ::testing::Not(HasSubstr("run 4")));
  int old = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    old += f.path().filename().string().rfind("LOG.old.", 0) == 0;
  }
  EXPECT_EQ(old, 2);
}

// /dev/full fails every write with ENOSPC: lines are dropped, none aborts
// (RocksDB's own logger asserts on the line after a failed one).
TEST(InfoLogTest, AFullDiskDropsLines) {
  auto log = InfoLog::OpenFile("/dev/full");
  for (int i = 0; i < 100; ++i) rocksdb::Log(rocksdb::InfoLogLevel::INFO_LEVEL, log.get(), "line %d", i);
  EXPECT_EQ(log->dropped(), 100u);
}

}  // namespace
}  // namespace raftkv::storage
