// LogStore::Open: identity checks, locking, foreign and damaged stores.
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/encoding.h"
#include "storage/log_store.h"
#include "storage/test_util.h"

namespace raftkv::storage {
namespace {

using ::testing::HasSubstr;
using testing::LogStoreTest;
using testing::MakeEntries;
using testing::MakeEntry;
using testing::MakeHardState;
using testing::MakeIdentity;
using testing::Voters;

TEST_F(LogStoreTest, IdentityMismatchRefusedOnOpen) {
  ASSERT_TRUE(store_->Bootstrap(MakeIdentity(10, 1), Voters({1})).ok());
  store_.reset();

  Options other = options_;
  other.expected_identity = MakeIdentity(10, 2);
  auto s = LogStore::Open(other);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr(options_.dir));
  EXPECT_THAT(s.status().message(), HasSubstr("cluster 10 node 1"));
  EXPECT_THAT(s.status().message(), HasSubstr("cluster 10 node 2"));

  other.expected_identity = MakeIdentity(11, 1);
  EXPECT_EQ(LogStore::Open(other).status().code(),
            absl::StatusCode::kFailedPrecondition);

  other.expected_identity = MakeIdentity(10, 1);
  EXPECT_TRUE(LogStore::Open(other).ok());
}

TEST_F(LogStoreTest, ExpectedIdentityLimitsBootstrap) {
  store_.reset();
  options_.expected_identity = MakeIdentity(5, 5);
  Reopen();
  EXPECT_EQ(store_->Bootstrap(MakeIdentity(5, 6), Voters({6})).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Bootstrap(MakeIdentity(5, 5), Voters({5})).ok());
}

TEST_F(LogStoreTest, SecondOpenOfLockedDirRefused) {
  auto second = LogStore::Open(options_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr(options_.dir));
  EXPECT_THAT(second.status().message(), HasSubstr("locked"));
  // Released on close.
  store_.reset();
  EXPECT_TRUE(LogStore::Open(options_).ok());
}

TEST_F(LogStoreTest, MissingDirWithoutCreateIsNotFound) {
  Options o;
  o.dir = options_.dir + "/nope";
  o.create_if_missing = false;
  auto s = LogStore::Open(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.status().message(), HasSubstr(o.dir));
  EXPECT_EQ(LogStore::Open(Options()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(LogStoreTest, TinyDataMemtableIsInvalid) {
  Options o;
  o.dir = options_.dir + "/tiny";
  o.data_memtable_bytes = 1024;
  auto s = LogStore::Open(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("data_memtable_bytes"));
  EXPECT_FALSE(std::filesystem::exists(o.dir)) << "nothing is created for bad options";
}

TEST_F(LogStoreTest, TableOpenThreads) {
  Options o;
  o.dir = options_.dir + "/threads";
  o.table_open_threads = 0;
  auto s = LogStore::Open(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("table_open_threads"));
  o.table_open_threads = 1;
  ASSERT_TRUE(LogStore::Open(o).ok()) << "one thread opens a store";
  auto again = LogStore::Open(o);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->LastIndex(), 0u);
}

// Reads that go to table files work with the data block cache on (the
// default) and off; small memtables push the data into files.
TEST_F(LogStoreTest, DataReadsFromTableFilesWithAndWithoutABlockCache) {
  for (size_t cache : {size_t{0}, size_t{1} << 20}) {
    Options o;
    o.dir = absl::StrCat(options_.dir, "/cache-", cache);
    o.data_memtable_bytes = 64 << 10;
    o.data_block_cache_bytes = cache;
    auto opened = LogStore::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status();
    LogStore& store = **opened;
    ASSERT_TRUE(store.Bootstrap(MakeIdentity(7, 1), Voters({1})).ok());
    const std::string value(200, 'v');
    for (int b = 0; b < 20; ++b) {
      DataBatch batch;
      for (int i = 0; i < 100; ++i) batch.Put(absl::StrCat("key-", b * 100 + i), value);
      ASSERT_TRUE(store.ApplyBatch(batch, b + 1).ok());
    }
    for (int k = 0; k < 2000; k += 7) {
      auto got = store.Get(absl::StrCat("key-", k));
      ASSERT_TRUE(got.ok()) << "cache " << cache << ", key " << k << ": " << got.status();
      EXPECT_EQ(*got, value);
    }
    EXPECT_EQ(store.Get("key-2000").status().code(), absl::StatusCode::kNotFound);
  }
}

// Table files of `dir` this process has open.
int OpenTableFiles(const std::string& dir) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(e.path(), ec).string();
    if (!ec && target.rfind(dir, 0) == 0 && target.size() > 4 &&
        target.compare(target.size() - 4, 4, ".sst") == 0) {
      ++n;
    }
  }
  return n;
}

// With max_open_files, RocksDB keeps at most that many table files open
// however many the store has (the server bounds it: server/fd_limit.h).
TEST_F(LogStoreTest, MaxOpenFilesBoundsTheTableFilesKeptOpen) {
  for (int max_open : {-1, 20}) {
    Options o;
    o.dir = absl::StrCat(options_.dir, "/open-", max_open);
    o.data_memtable_bytes = 64 << 10;
    o.max_open_files = max_open;
    auto opened = LogStore::Open(o);
    ASSERT_TRUE(opened.ok()) << opened.status();
    LogStore& store = **opened;
    ASSERT_TRUE(store.Bootstrap(MakeIdentity(7, 1), Voters({1})).ok());
    std::mt19937 rng(1);
    for (int b = 0; b < 60; ++b) {
      DataBatch batch;
      for (int i = 0; i < 100; ++i) {
        std::string value(1000, ' ');  // incompressible: one file holds ~64 values
        for (char& c : value) c = static_cast<char>(rng());
        batch.Put(absl::StrCat("key-", b * 100 + i), value);
      }
      ASSERT_TRUE(store.ApplyBatch(batch, b + 1).ok());
    }
    for (int k = 0; k < 6000; k += 13) {
      auto got = store.Get(absl::StrCat("key-", k));
      ASSERT_TRUE(got.ok()) << k << ": " << got.status();
    }
    int files = 0;
    for (const auto& e : std::filesystem::directory_iterator(o.dir)) {
      files += e.path().extension() == ".sst";
    }
    // RocksDB's table cache has 64 shards of at least one file each: with
    // max_open_files 20 it keeps at most 64 open.
    ASSERT_GT(files, 74) << "the test needs more table files than that";
    if (max_open == -1) {
      EXPECT_GT(OpenTableFiles(o.dir), 64) << files << " table files";
    } else {
      EXPECT_LE(OpenTableFiles(o.dir), 64) << files << " table files";
    }
  }
  Options bad = options_;
  bad.max_open_files = 5;
  EXPECT_THAT(bad.Validate().message(), HasSubstr("max_open_files"));
}

TEST_F(LogStoreTest, CorruptDirRefused) {
  store_.reset();
  {
    std::ofstream current(options_.dir + "/CURRENT", std::ios::trunc);
    current << "garbage";  // no newline, names no manifest
  }
  auto s = LogStore::Open(options_);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr(options_.dir));
}

TEST_F(LogStoreTest, ForeignRocksDBRefused) {
  store_.reset();
  const std::string dir = options_.dir + "-foreign";
  std::filesystem::remove_all(dir);
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir, &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "k", "v").ok());
    delete db;
  }
  Options o;
  o.dir = dir;
  auto s = LogStore::Open(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr(dir));
}

class RawDB {
 public:
  explicit RawDB(const std::string& dir) {
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const char* name : {"default", kLogColumnFamily, kMetaColumnFamily,
                             kDataColumnFamily}) {
      cfs.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    rocksdb::Status s =
        rocksdb::DB::Open(rocksdb::DBOptions(), dir, cfs, &handles_, &db_);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  ~RawDB() {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    delete db_;
  }
  rocksdb::DB* db() { return db_; }
  rocksdb::ColumnFamilyHandle* log() { return handles_[1]; }
  rocksdb::ColumnFamilyHandle* meta() { return handles_[2]; }

 private:
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

TEST_F(LogStoreTest, RecoveryDetectsHole) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 11, 1), nullptr).ok());
  store_.reset();
  {
    RawDB raw(options_.dir);
    ASSERT_TRUE(raw.db()->Delete(rocksdb::WriteOptions(), raw.log(), LogKey(5)).ok());
  }
  auto s = LogStore::Open(options_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.status().message(), HasSubstr("hole"));
  EXPECT_THAT(s.status().message(), HasSubstr(options_.dir));

  // Without the full scan the hole shows up on read instead.
  options_.verify_log_on_open = false;
  Reopen();
  EXPECT_EQ(store_->Entries(1, 11, ~uint64_t{0}).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(store_->Term(5).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(LogStoreTest, RecoveryDetectsCommitPastLastIndex) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 4, 1), nullptr).ok());
  store_.reset();
  {
    RawDB raw(options_.dir);
    ASSERT_TRUE(raw.db()->Put(rocksdb::WriteOptions(), raw.meta(),
                              kHardStateKey,
                              MakeHardState(1, 1, 9).SerializeAsString())
                    .ok());
  }
  auto s = LogStore::Open(options_);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.status().message(), HasSubstr("commit 9 > last log index 3"));
}

TEST_F(LogStoreTest, RecoveryDetectsEntriesBelowSnapshot) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 6, 1), nullptr).ok());
  ASSERT_TRUE(store_->ApplyBatch(DataBatch(), 3).ok());
  ASSERT_TRUE(store_->Compact(3, 1, Voters({1})).ok());
  store_.reset();
  {
    RawDB raw(options_.dir);
    ASSERT_TRUE(raw.db()->Put(rocksdb::WriteOptions(), raw.log(), LogKey(2),
                              MakeEntry(2, 1).SerializeAsString())
                    .ok());
  }
  auto s = LogStore::Open(options_);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.status().message(), HasSubstr("starts at index 2"));
}

}  // namespace
}  // namespace raftkv::storage
