// The durable mark: a store whose log or hard state fell behind what it had
// made durable refuses to open; legitimate changes (a suffix replaced by a
// newer leader, a snapshot) do not trip it.
#include "storage/durable_mark.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/log_store.h"
#include "storage/test_util.h"

namespace raftkv::storage {
namespace {

using ::testing::HasSubstr;
using testing::MakeEntries;
using testing::MakeHardState;
using testing::MakeIdentity;
using testing::TestDir;

class DurableMarkTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TestDir(); }

  absl::StatusOr<std::unique_ptr<LogStore>> Open() {
    Options o;
    o.dir = dir_;
    return LogStore::Open(o);
  }

  // A store holding entries [1, last] of `term` with hard state (term, 1, commit).
  void Build(uint64_t last, uint64_t term, uint64_t commit) {
    auto store = Open();
    ASSERT_TRUE(store.ok()) << store.status();
    raftpb::ConfState conf;
    conf.add_voters(1);
    ASSERT_TRUE((*store)->Bootstrap(MakeIdentity(7, 1), conf).ok());
    const raftpb::HardState hs = MakeHardState(term, 1, commit);
    ASSERT_TRUE((*store)->Append(MakeEntries(1, last + 1, term, 100), &hs).ok());
  }

  std::string dir_;
};

TEST_F(DurableMarkTest, RoundTripsAndRefusesAMalformedFile) {
  std::filesystem::create_directories(dir_);
  auto none = ReadDurableMark(dir_);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  const DurableMark m{5, 100, 4, 90};
  ASSERT_TRUE(WriteDurableMark(dir_, m).ok());
  auto back = ReadDurableMark(dir_);
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ(**back, m);
  std::ofstream(DurableMarkPath(dir_)) << "raftkv durable mark v1\nterm x\n";
  auto bad = ReadDurableMark(dir_);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
}

TEST_F(DurableMarkTest, CloseRecordsTheExactState) {
  Build(50, 3, 40);
  auto m = ReadDurableMark(dir_);
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ(**m, (DurableMark{3, 50, 3, 40}));
}

// The case: the newest WAL cut short after the node stopped.
TEST_F(DurableMarkTest, ATruncatedWalRefusesToOpen) {
  Build(200, 2, 150);
  std::string newest;
  uintmax_t size = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir_)) {
    if (f.path().extension() == ".log" && f.path().filename().string() > newest) {
      newest = f.path().filename().string();
      size = f.file_size();
    }
  }
  ASSERT_FALSE(newest.empty());
  ASSERT_GT(size, 20000u) << "the entries are not in the WAL";
  std::filesystem::resize_file(dir_ + "/" + newest, size / 2);
  auto store = Open();
  ASSERT_FALSE(store.ok()) << "opened a store that lost synced entries";
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(store.status().message(), HasSubstr("lost writes it had made durable"));
  EXPECT_THAT(store.status().message(), HasSubstr("kvctl member remove"));
}

TEST_F(DurableMarkTest, ALogBehindItsMarkIsRefused) {
  Build(60, 1, 10);
  ASSERT_TRUE(WriteDurableMark(dir_, DurableMark{1, 100, 1, 10}).ok());
  auto store = Open();
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("held index 100 of term 1"));
}

TEST_F(DurableMarkTest, ATermBehindItsMarkIsRefused) {
  Build(10, 3, 5);
  ASSERT_TRUE(WriteDurableMark(dir_, DurableMark{5, 10, 3, 5}).ok());
  auto store = Open();
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("term 3 is behind the durable term 5"));
}

TEST_F(DurableMarkTest, ACommitPastTheLogIsRefused) {
  Build(10, 3, 5);
  ASSERT_TRUE(WriteDurableMark(dir_, DurableMark{3, 10, 3, 30}).ok());
  EXPECT_EQ(Open().status().code(), absl::StatusCode::kDataLoss);
}

// A crash right after a newer leader replaced the suffix, before the mark
// caught up: the log's last term is newer than the mark's, so it opens.
TEST_F(DurableMarkTest, ASuffixReplacedByANewerTermIsAccepted) {
  Build(60, 1, 10);
  {
    auto store = Open();
    ASSERT_TRUE(store.ok()) << store.status();
    const raftpb::HardState hs = MakeHardState(2, 2, 10);
    ASSERT_TRUE((*store)->Append(MakeEntries(20, 31, 2), &hs).ok());
  }
  ASSERT_TRUE(WriteDurableMark(dir_, DurableMark{1, 60, 1, 10}).ok());  // the stale mark
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->LastIndex(), 30u);
}

TEST_F(DurableMarkTest, WithoutSyncNoMarkIsKept) {
  Options o;
  o.dir = dir_;
  o.sync = false;
  {
    auto store = LogStore::Open(o);
    ASSERT_TRUE(store.ok());
    const raftpb::HardState hs = MakeHardState(1, 1, 0);
    ASSERT_TRUE((*store)->Append(MakeEntries(1, 5, 1), &hs).ok());
  }
  auto m = ReadDurableMark(dir_);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->has_value());
}

}  // namespace
}  // namespace raftkv::storage
