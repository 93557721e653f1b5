// Point-in-time data views and snapshot staging/installation.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/data_batch.h"
#include "storage/log_store.h"
#include "storage/test_util.h"

namespace raftkv::storage {
namespace {

using testing::LogStoreTest;
using testing::MakeEntries;
using testing::Voters;

std::vector<std::string> Keys(const LogStore& store) {
  std::vector<std::string> out;
  EXPECT_TRUE(store
                  .ScanData("", [&](absl::string_view k, absl::string_view) {
                    out.emplace_back(k);
                    return true;
                  })
                  .ok());
  return out;
}

raftpb::SnapshotMetadata Meta(uint64_t index, uint64_t term) {
  raftpb::SnapshotMetadata m;
  m.set_index(index);
  m.set_term(term);
  *m.mutable_conf_state() = Voters({1, 2, 3});
  return m;
}

TEST_F(LogStoreTest, DataSnapshotIsAPointInTimeView) {
  DataBatch b;
  b.Put("a", "1");
  b.Put("b", "2");
  raftpb::ConfState conf = Voters({1, 2});
  ASSERT_TRUE(store_->ApplyBatch(b, 4, &conf).ok());
  auto snap = store_->OpenDataSnapshot();
  ASSERT_TRUE(snap.ok());
  DataBatch later;
  later.Put("c", "3");
  later.Delete("a");
  ASSERT_TRUE(store_->ApplyBatch(later, 5).ok());
  EXPECT_EQ((*snap)->applied_index(), 4u);
  ASSERT_TRUE((*snap)->conf().has_value());
  EXPECT_EQ((*snap)->conf()->voters_size(), 2);
  std::vector<std::string> seen;
  ASSERT_TRUE((*snap)->Scan("", [&](absl::string_view k, absl::string_view v) {
                      seen.push_back(std::string(k) + "=" + std::string(v));
                      return true;
                    }).ok());
  EXPECT_THAT(seen, ::testing::ElementsAre("a=1", "b=2"));
  seen.clear();
  ASSERT_TRUE((*snap)->Scan("a", [&](absl::string_view k, absl::string_view) {
                      seen.emplace_back(k);
                      return true;
                    }).ok());
  EXPECT_THAT(seen, ::testing::ElementsAre("b")) << "start_after is exclusive";
  EXPECT_THAT(Keys(*store_), ::testing::ElementsAre("b", "c"));
}

TEST_F(LogStoreTest, InstallStagedReplacesDataAtomically) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 5, 1), nullptr).ok());
  DataBatch old;
  old.Put("old", "x");
  ASSERT_TRUE(store_->ApplyBatch(old, 2).ok());
  ASSERT_TRUE(store_->BeginStaging().ok());
  DataBatch chunk1, chunk2;
  chunk1.Put("k1", "v1");
  chunk2.Put("k2", "v2");
  ASSERT_TRUE(store_->StageData(chunk1).ok());
  ASSERT_TRUE(store_->StageData(chunk2).ok());
  EXPECT_THAT(Keys(*store_), ::testing::ElementsAre("old")) << "staging is invisible";
  ASSERT_TRUE(store_->InstallStaged(Meta(10, 3)).ok());
  EXPECT_THAT(Keys(*store_), ::testing::ElementsAre("k1", "k2"));
  EXPECT_EQ(store_->applied_index(), 10u);
  EXPECT_EQ(store_->FirstIndex(), 11u);
  EXPECT_EQ(store_->LastIndex(), 10u) << "a log that did not hold index 10 is discarded";
  EXPECT_EQ(store_->Term(10).value(), 3u);
  EXPECT_EQ(store_->hard_state().commit(), 10u);
  ASSERT_TRUE(store_->applied_conf().has_value());
  Reopen();
  EXPECT_THAT(Keys(*store_), ::testing::ElementsAre("k1", "k2"));
  EXPECT_EQ(store_->applied_index(), 10u);
  EXPECT_EQ(store_->GetSnapshot()->metadata().index(), 10u);
  EXPECT_EQ(store_->applied_conf()->voters_size(), 3);
  EXPECT_EQ(store_->Get("old").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(LogStoreTest, InstallKeepsTheLogAfterAMatchingSnapshotIndex) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 9, 2), nullptr).ok());
  ASSERT_TRUE(store_->BeginStaging().ok());
  ASSERT_TRUE(store_->InstallStaged(Meta(5, 2)).ok());
  EXPECT_EQ(store_->FirstIndex(), 6u);
  EXPECT_EQ(store_->LastIndex(), 8u);
}

// A crash while staging (simulated by reopening without installing) leaves
// the old data, and the half-staged generation is cleared.
TEST_F(LogStoreTest, CrashWhileStagingKeepsTheOldState) {
  DataBatch old;
  old.Put("live", "1");
  ASSERT_TRUE(store_->ApplyBatch(old, 1).ok());
  ASSERT_TRUE(store_->BeginStaging().ok());
  DataBatch half;
  half.Put("staged", "?");
  ASSERT_TRUE(store_->StageData(half).ok());
  Reopen();
  EXPECT_THAT(Keys(*store_), ::testing::ElementsAre("live"));
  EXPECT_EQ(store_->applied_index(), 1u);
  // Installing now (nothing staged since the restart) must not resurrect
  // the half-staged key.
  ASSERT_TRUE(store_->BeginStaging().ok());
  ASSERT_TRUE(store_->InstallStaged(Meta(7, 1)).ok());
  EXPECT_TRUE(Keys(*store_).empty());
}

TEST_F(LogStoreTest, InstallRefusesAnOlderSnapshot) {
  DataBatch b;
  b.Put("k", "v");
  ASSERT_TRUE(store_->ApplyBatch(b, 20).ok());
  ASSERT_TRUE(store_->BeginStaging().ok());
  EXPECT_EQ(store_->InstallStaged(Meta(10, 1)).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Keys(*store_), ::testing::ElementsAre("k"));
}

}  // namespace
}  // namespace raftkv::storage
