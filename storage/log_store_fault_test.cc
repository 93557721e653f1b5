// LogStore on a failing disk (storage/fault_file_system.h): every write
// method returns an error instead of aborting, later writes are refused
// without calling RocksDB, reads go on, and what was written before the
// fault is intact on reopen. Each write method is tried as the first write
// to fail, with ENOSPC and with EIO.
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/data_batch.h"
#include "storage/fault_file_system.h"
#include "storage/log_store.h"
#include "storage/test_util.h"
#include "storage/wal_file_system.h"

namespace raftkv::storage {
namespace {

using ::testing::HasSubstr;
using testing::MakeEntries;
using testing::MakeHardState;
using testing::MakeIdentity;
using testing::Voters;
using Fault = FaultFileSystem::Fault;

raftpb::SnapshotMetadata Meta(uint64_t index, uint64_t term) {
  raftpb::SnapshotMetadata m;
  m.set_index(index);
  m.set_term(term);
  *m.mutable_conf_state() = Voters({1, 2, 3});
  return m;
}

DataBatch Puts(const std::string& key, const std::string& value) {
  DataBatch b;
  b.Put(key, value);
  return b;
}

// One write method, called on a store holding what Populate() wrote.
struct WriteCall {
  std::string name;
  std::function<absl::Status(LogStore*)> call;
};

std::vector<WriteCall> WriteCalls() {
  return {
      {"Append", [](LogStore* s) {
         raftpb::HardState hs = MakeHardState(2, 1, 10);
         return s->Append(MakeEntries(11, 14, 2), &hs);
       }},
      {"AppendCommitOnly", [](LogStore* s) {
         raftpb::HardState hs = MakeHardState(2, 1, 10);
         return s->Append({}, &hs);
       }},
      {"ApplyBatch", [](LogStore* s) { return s->ApplyBatch(Puts("k6", "v6"), 6); }},
      {"SyncWal", [](LogStore* s) { return s->SyncWal(); }},
      {"Compact", [](LogStore* s) { return s->Compact(4, 1, Voters({1, 2, 3})); }},
      {"ApplySnapshot", [](LogStore* s) {
         DataBatch image = Puts("snap", "shot");
         return s->ApplySnapshot(Meta(20, 3), &image);
       }},
      {"BeginStaging", [](LogStore* s) { return s->BeginStaging(); }},
      {"StageData", [](LogStore* s) { return s->StageData(Puts("staged", "x")); }},
      {"InstallStaged", [](LogStore* s) { return s->InstallStaged(Meta(20, 3)); }},
  };
}

class LogStoreFaultTest : public ::testing::TestWithParam<Fault> {
 protected:
  void SetUp() override { options_.dir = testing::TestDir(); }

  // Opens the store through fs_ (the fault is not armed by Open).
  void Open() {
    options_.env = env_.get();
    auto store = LogStore::Open(options_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  // Identity, entries 1..10 of term 1 with commit 10, data applied through 5.
  void Populate() {
    ASSERT_TRUE(store_->Bootstrap(MakeIdentity(7, 1), Voters({1, 2, 3})).ok());
    raftpb::HardState hs = MakeHardState(1, 1, 10);
    ASSERT_TRUE(store_->Append(MakeEntries(1, 11, 1), &hs).ok());
    for (uint64_t i = 1; i <= 5; ++i) {
      ASSERT_TRUE(store_->ApplyBatch(Puts("k" + std::to_string(i), "v"), i).ok());
    }
    ASSERT_TRUE(store_->SyncWal().ok());
  }

  // What Populate() wrote, as the store reads it.
  void ExpectPopulated(const LogStore& store) {
    EXPECT_EQ(store.FirstIndex(), 1u);
    EXPECT_EQ(store.LastIndex(), 10u);
    auto entries = store.Entries(1, 11, ~uint64_t{0});
    ASSERT_TRUE(entries.ok()) << entries.status();
    EXPECT_EQ(entries->size(), 10u);
    EXPECT_EQ(store.hard_state().commit(), 10u);
    EXPECT_EQ(store.hard_state().term(), 1u);
    EXPECT_EQ(store.applied_index(), 5u);
    for (int i = 1; i <= 5; ++i) {
      auto v = store.Get("k" + std::to_string(i));
      EXPECT_TRUE(v.ok()) << "k" << i << ": " << v.status();
    }
    ASSERT_TRUE(store.identity().has_value());
    EXPECT_EQ(store.identity()->node_id(), 1u);
  }

  absl::StatusCode ExpectedCode() const {
    return GetParam() == Fault::kNoSpace ? absl::StatusCode::kResourceExhausted
                                         : absl::StatusCode::kInternal;
  }

  std::shared_ptr<FaultFileSystem> fs_ = std::make_shared<FaultFileSystem>(
      std::make_shared<WalPreallocatingFileSystem>(rocksdb::FileSystem::Default()));
  std::unique_ptr<rocksdb::Env> env_ = NewFaultEnv(fs_);
  Options options_;
  std::unique_ptr<LogStore> store_;
};

// Each write method as the first to fail; then every write method again
// (RocksDB 7.8 aborts on an assertion if the failed WAL is written or
// synced again: the store must refuse without calling it), reads, and a
// reopen once the disk is healthy.
TEST_P(LogStoreFaultTest, EveryWriteMethodFailsWithAnErrorAndLosesNothing) {
  for (const WriteCall& first : WriteCalls()) {
    SCOPED_TRACE("first failing write: " + first.name);
    options_.dir = testing::TestDir() + "." + first.name;
    fs_->Heal();
    ASSERT_NO_FATAL_FAILURE(Open());
    ASSERT_NO_FATAL_FAILURE(Populate());
    if (first.name == "InstallStaged") {
      ASSERT_TRUE(store_->BeginStaging().ok());
      ASSERT_TRUE(store_->StageData(Puts("staged", "x")).ok());
    }
    const uint64_t failures = fs_->failures();
    fs_->FailWrites(GetParam());

    absl::Status s = first.call(store_.get());
    ASSERT_FALSE(s.ok());
    EXPECT_GT(fs_->failures(), failures) << "the write reached the file system";
    EXPECT_EQ(s.code(), ExpectedCode()) << s;
    EXPECT_THAT(s.message(), HasSubstr(options_.dir));
    EXPECT_EQ(store_->write_failure(), s);

    const uint64_t after_first = fs_->failures();
    fs_->Heal();  // even on a healthy disk, a store that failed a write stays failed
    for (const WriteCall& later : WriteCalls()) {
      absl::Status again = later.call(store_.get());
      EXPECT_FALSE(again.ok()) << later.name;
      EXPECT_EQ(again.code(), ExpectedCode()) << later.name << ": " << again;
      EXPECT_THAT(again.message(), HasSubstr("an earlier write failed")) << later.name;
    }
    EXPECT_EQ(fs_->failures(), after_first) << "later writes must not reach RocksDB";

    // Reads go on, and show nothing of the failed write.
    ExpectPopulated(*store_);

    store_.reset();
    ASSERT_NO_FATAL_FAILURE(Open());
    ExpectPopulated(*store_);
    raftpb::HardState hs = MakeHardState(2, 1, 12);
    EXPECT_TRUE(store_->Append(MakeEntries(11, 13, 2), &hs).ok()) << "writable again";
    store_.reset();
  }
}

// Opening a store on a full disk fails with an error naming the directory,
// wherever in Open the space runs out, and never damages the store.
TEST_P(LogStoreFaultTest, OpenOnAFullDiskFailsCleanly) {
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_NO_FATAL_FAILURE(Populate());
  store_.reset();
  const uint64_t before = fs_->bytes_written();
  ASSERT_NO_FATAL_FAILURE(Open());
  const uint64_t open_writes = fs_->bytes_written() - before;
  store_.reset();
  ASSERT_GT(open_writes, 0u);

  // Out of space at 8 points through Open's writes.
  for (uint64_t budget = 0; budget < open_writes; budget += open_writes / 8 + 1) {
    SCOPED_TRACE(absl::StrCat("space for ", budget, " of ", open_writes, " bytes"));
    fs_->FailWrites(GetParam(), budget);
    auto store = LogStore::Open(options_);
    if (!store.ok()) {
      EXPECT_EQ(store.status().code(), ExpectedCode()) << store.status();
      EXPECT_THAT(store.status().message(), HasSubstr(options_.dir));
      continue;
    }
    // Open's writes fit: it is a working store (reads), refusing writes now.
    ExpectPopulated(**store);
  }
  fs_->Heal();
  ASSERT_NO_FATAL_FAILURE(Open());
  ExpectPopulated(*store_);
}

// on_write_failure sees the failed write before RocksDB does; if it
// returns, the write fails as usual.
TEST_P(LogStoreFaultTest, WriteFailureHandlerSeesTheError) {
  // Shared with the handler: RocksDB's own error recovery may call it from
  // a background thread until the store is closed.
  struct Seen {
    absl::Mutex mu;
    std::vector<absl::Status> errors ABSL_GUARDED_BY(mu);
  };
  auto seen = std::make_shared<Seen>();
  options_.on_write_failure = [seen](const absl::Status& s) {
    absl::MutexLock l(&seen->mu);
    seen->errors.push_back(s);
  };
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_NO_FATAL_FAILURE(Populate());
  {
    absl::MutexLock l(&seen->mu);
    EXPECT_TRUE(seen->errors.empty());
  }
  fs_->FailWrites(GetParam());
  absl::Status s = store_->ApplyBatch(Puts("k6", "v6"), 6);
  EXPECT_EQ(s.code(), ExpectedCode()) << s;
  absl::MutexLock l(&seen->mu);
  ASSERT_FALSE(seen->errors.empty());
  const absl::Status& first = seen->errors[0];
  EXPECT_EQ(first.code(), ExpectedCode()) << first;
  EXPECT_THAT(first.message(), HasSubstr("storage dir " + options_.dir));
  EXPECT_THAT(first.message(), HasSubstr(".log"));  // the file that failed
}

INSTANTIATE_TEST_SUITE_P(Faults, LogStoreFaultTest,
                         ::testing::Values(Fault::kNoSpace, Fault::kIoError),
                         [](const ::testing::TestParamInfo<Fault>& info) {
                           return info.param == Fault::kNoSpace ? "ENOSPC" : "EIO";
                         });

}  // namespace
}  // namespace raftkv::storage
