#include "raft/read_index_queue.h"

#include "gtest/gtest.h"

namespace raftkv::raft {
namespace {

TEST(ReadIndexQueueTest, OneConfirmedRoundReleasesTheWholeBatch) {
  ReadIndexQueue q;
  q.Add("a", 1, 10, 3);
  q.Add("b", 2, 11, 3);
  q.Add("c", 1, 12, 4);
  EXPECT_TRUE(q.Release(2).empty()) << "round 3 not yet confirmed";
  auto out = q.Release(3);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].context, "a");
  EXPECT_EQ(out[0].index, 10u);
  EXPECT_EQ(out[1].context, "b");
  EXPECT_EQ(out[1].from, 2u);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.LastRound(), 4u);
  out = q.Release(9);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].context, "c");
  EXPECT_TRUE(q.empty());
}

TEST(ReadIndexQueueTest, ReadsBeforeOwnTermCommitWaitForIt) {
  ReadIndexQueue q;
  q.AddAwaitingCommit("early", 1);
  EXPECT_TRUE(q.HasAwaitingCommit());
  EXPECT_TRUE(q.Release(100).empty()) << "no read index yet: never released";
  q.AdmitAwaitingCommit(/*index=*/7, /*round=*/5);
  EXPECT_FALSE(q.HasAwaitingCommit());
  EXPECT_TRUE(q.Release(4).empty());
  auto out = q.Release(5);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].index, 7u);
}

TEST(ReadIndexQueueTest, TakeAllEmptiesBothLists) {
  ReadIndexQueue q;
  q.Add("a", 1, 1, 1);
  q.AddAwaitingCommit("b", 2);
  EXPECT_EQ(q.TakeAll().size(), 2u);
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace raftkv::raft
