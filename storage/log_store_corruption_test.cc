// Every read of a LogStore that meets a corrupt block fails with DataLoss,
// naming the directory and RocksDB's message: it never returns fewer keys,
// another value, or NotFound instead. The blocks are damaged on disk while
// the store is closed (storage/sst_corruption.h), as a failing disk would.
#include <cstdio>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/data_batch.h"
#include "storage/log_store.h"
#include "storage/sst_corruption.h"
#include "storage/test_util.h"

namespace raftkv::storage::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kKeys = 3000;

std::string KeyOf(int i) { return absl::StrFormat("key%06d", i); }

// ~200 bytes that compress poorly, so the keys span many blocks.
std::string ValueOf(int i) {
  std::string v;
  uint64_t x = 0x9e3779b97f4a7c15ull * (i + 1);
  while (v.size() < 200) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v.append(reinterpret_cast<const char*>(&x), sizeof(x));
  }
  return v;
}

void ExpectDataLoss(const absl::Status& s, const std::string& dir) {
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("Corruption"));
  EXPECT_THAT(std::string(s.message()), HasSubstr(dir));
}

class DataCorruptionTest : public LogStoreTest {
 protected:
  void SetUp() override {
    options_.sync = false;
    options_.data_memtable_bytes = 64 << 10;
    LogStoreTest::SetUp();
    uint64_t applied = 0;
    for (int i = 0; i < kKeys;) {
      DataBatch b;
      for (int j = 0; j < 100 && i < kKeys; ++j, ++i) b.Put(KeyOf(i), ValueOf(i));
      ASSERT_TRUE(store_->ApplyBatch(b, ++applied).ok());
    }
    // Reopening writes what the WAL still held to SST files.
    Reopen();
    store_.reset();
    auto files = SstFilesOf(options_.dir, "data");
    ASSERT_TRUE(files.ok()) << files.status();
    ASSERT_FALSE(files->empty());
    for (const std::string& f : *files) {
      auto flipped = CorruptDataBlocks(f);
      ASSERT_TRUE(flipped.ok()) << flipped.status();
      ASSERT_GT(*flipped, 0u) << f;
    }
    Reopen();
  }
};

TEST_F(DataCorruptionTest, GetOfACorruptBlockFails) {
  int failed = 0;
  for (int i = 0; i < kKeys; ++i) {
    auto v = store_->Get(KeyOf(i));
    if (v.ok()) {
      ASSERT_EQ(*v, ValueOf(i)) << KeyOf(i);
    } else {
      ExpectDataLoss(v.status(), options_.dir);
      ++failed;
    }
  }
  EXPECT_GT(failed, 0);
  EXPECT_LT(failed, kKeys);  // the blocks left intact still read
}

TEST_F(DataCorruptionTest, ScanFailsInsteadOfEndingEarly) {
  int seen = 0;
  absl::Status s = store_->ScanData("", [&](absl::string_view k, absl::string_view v) {
    EXPECT_EQ(k, KeyOf(seen));
    EXPECT_EQ(v, ValueOf(seen));
    ++seen;
    return true;
  });
  ExpectDataLoss(s, options_.dir);
  EXPECT_LT(seen, kKeys);
}

TEST_F(DataCorruptionTest, SnapshotScanFails) {
  auto snap = store_->OpenDataSnapshot();
  ASSERT_TRUE(snap.ok()) << snap.status();
  int seen = 0;
  absl::Status s = (*snap)->Scan("", [&](absl::string_view, absl::string_view) {
    ++seen;
    return true;
  });
  ExpectDataLoss(s, options_.dir);
  EXPECT_LT(seen, kKeys);
}

// Damage to a file's index (past its data blocks) keeps the store from
// opening at all.
TEST_F(DataCorruptionTest, DamagedIndexRefusesToOpen) {
  store_.reset();
  auto files = SstFilesOf(options_.dir, "data");
  ASSERT_TRUE(files.ok()) << files.status();
  for (const std::string& f : *files) {
    // Past the data blocks: meta blocks, index, footer.
    auto flipped = CorruptDataBlocks(f, 1.0, 1.2, 16);
    ASSERT_TRUE(flipped.ok()) << flipped.status();
  }
  auto store = LogStore::Open(options_);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(absl::IsDataLoss(store.status())) << store.status();
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(options_.dir));
}

class LogCorruptionTest : public LogStoreTest {
 protected:
  static constexpr uint64_t kEntries = 3000;

  void SetUp() override {
    options_.sync = false;
    options_.entry_cache_bytes = 0;
    LogStoreTest::SetUp();
    for (uint64_t i = 1; i <= kEntries; i += 100) {
      ASSERT_TRUE(store_->Append(MakeEntries(i, i + 100, 1, 200), nullptr).ok());
    }
    Reopen();
    store_.reset();
    auto files = SstFilesOf(options_.dir, "log");
    ASSERT_TRUE(files.ok()) << files.status();
    ASSERT_FALSE(files->empty());
    for (const std::string& f : *files) {
      auto flipped = CorruptDataBlocks(f);
      ASSERT_TRUE(flipped.ok()) << flipped.status();
    }
  }
};

TEST_F(LogCorruptionTest, OpenThatScansTheLogFails) {
  auto store = LogStore::Open(options_);
  ASSERT_FALSE(store.ok());
  ExpectDataLoss(store.status(), options_.dir);
}

TEST_F(LogCorruptionTest, EntriesAndTermFail) {
  options_.verify_log_on_open = false;  // reads only the first and last entries
  Reopen();
  auto entries = store_->Entries(1, kEntries + 1, ~uint64_t{0});
  ASSERT_FALSE(entries.ok());
  ExpectDataLoss(entries.status(), options_.dir);
  int failed = 0;
  for (uint64_t i = 1; i < kEntries; ++i) {
    auto t = store_->Term(i);
    if (t.ok()) {
      EXPECT_EQ(*t, 1u);
    } else {
      ExpectDataLoss(t.status(), options_.dir);
      ++failed;
    }
  }
  EXPECT_GT(failed, 0);
}

}  // namespace
}  // namespace raftkv::storage::testing
