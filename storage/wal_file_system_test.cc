#include "storage/wal_file_system.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "storage/log_store.h"
#include "storage/test_util.h"

namespace raftkv::storage {
namespace {

using testing::MakeEntries;
using testing::MakeHardState;

TEST(WalPreallocatingFileSystemTest, OnlyLogWritesExtendTheFileWhenPreallocating) {
  WalPreallocatingFileSystem fs(rocksdb::FileSystem::Default());
  rocksdb::FileOptions base;
  base.bytes_per_sync = 12345;
  ASSERT_TRUE(base.fallocate_with_keep_size);
  rocksdb::DBOptions db;
  db.wal_bytes_per_sync = 777;
  const rocksdb::FileOptions wal = fs.OptimizeForLogWrite(base, db);
  EXPECT_FALSE(wal.fallocate_with_keep_size);
  EXPECT_EQ(wal.bytes_per_sync, 777u);  // the target's choices are kept
  EXPECT_TRUE(fs.OptimizeForManifestWrite(base).fallocate_with_keep_size);
}

// The size on disk of the largest write-ahead log file ("<number>.log").
uint64_t LargestWalFileSize(const std::string& dir) {
  uint64_t largest = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    const std::string name = f.path().filename().string();
    const std::string stem = f.path().stem().string();
    if (f.path().extension() != ".log" || stem.empty() ||
        !std::all_of(stem.begin(), stem.end(), [](unsigned char c) { return std::isdigit(c); })) {
      continue;
    }
    largest = std::max<uint64_t>(largest, std::filesystem::file_size(f.path()));
  }
  return largest;
}

class WalPreallocationTest : public testing::LogStoreTest {};

TEST_F(WalPreallocationTest, LiveWalIsSizedAheadAndACopyTakenMidWriteRecovers) {
  ASSERT_TRUE(store_->Bootstrap(testing::MakeIdentity(1, 1), testing::Voters({1})).ok());
  for (uint64_t i = 1; i <= 200; i += 10) {
    const raftpb::HardState hs = MakeHardState(3, 1, i - 1);
    ASSERT_TRUE(store_->Append(MakeEntries(i, i + 10, 3, 100), &hs).ok());
  }
  // ~25 KB written, but the file already has its preallocated size.
  EXPECT_GE(LargestWalFileSize(options_.dir), uint64_t{1} << 20);

  // The files as they are now (the store still open) are what a crash
  // leaves: the live WAL ends in zeros. Every synced entry must come back.
  const std::string copy = options_.dir + ".copy";
  std::filesystem::remove_all(copy);
  std::filesystem::copy(options_.dir, copy);
  Options copy_options = options_;
  copy_options.dir = copy;
  copy_options.create_if_missing = false;
  auto reopened = LogStore::Open(copy_options);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->LastIndex(), 200u);
  auto entries = (*reopened)->Entries(1, 201, ~uint64_t{0});
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 200u);
  EXPECT_EQ((*entries)[199].data(), testing::MakeEntry(200, 3, 100).data());
  auto state = (*reopened)->GetInitialState();
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->hard_state.term(), 3u);
  EXPECT_EQ(state->hard_state.commit(), 190u);
}

}  // namespace
}  // namespace raftkv::storage
