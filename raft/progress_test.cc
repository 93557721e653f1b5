#include "raft/progress.h"

#include "gtest/gtest.h"

namespace raftkv::raft {
namespace {

TEST(InflightsTest, FillsAndFreesInOrder) {
  Inflights in(3);
  in.Add(5);
  in.Add(7);
  EXPECT_FALSE(in.Full());
  in.Add(9);
  EXPECT_TRUE(in.Full());
  in.FreeLE(6);
  EXPECT_EQ(in.Count(), 2u);
  in.FreeLE(9);
  EXPECT_EQ(in.Count(), 0u);
}

TEST(ProgressTest, ProbeSendsOneAppendAtATime) {
  Progress pr(/*next=*/11, /*max_inflight=*/4);
  EXPECT_FALSE(pr.IsPaused());
  pr.SentEntries(15, true);
  EXPECT_TRUE(pr.IsPaused());
  EXPECT_EQ(pr.next(), 11u) << "probe does not advance next optimistically";
  pr.ResumeProbe();
  EXPECT_FALSE(pr.IsPaused());
}

TEST(ProgressTest, ReplicatePipelinesUpToTheWindow) {
  Progress pr(11, 2);
  pr.MaybeUpdate(10);
  pr.BecomeReplicate();
  pr.SentEntries(12, true);
  EXPECT_EQ(pr.next(), 13u);
  EXPECT_FALSE(pr.IsPaused());
  pr.SentEntries(14, true);
  EXPECT_TRUE(pr.IsPaused()) << "window of 2 is full";
  EXPECT_TRUE(pr.MaybeUpdate(12));
  EXPECT_FALSE(pr.IsPaused()) << "the ack freed one slot";
  EXPECT_EQ(pr.match(), 12u);
  EXPECT_FALSE(pr.MaybeUpdate(11)) << "a reordered older ack changes nothing";
  EXPECT_EQ(pr.match(), 12u);
}

TEST(ProgressTest, ReplicateRejectionFallsBackToMatch) {
  Progress pr(11, 8);
  pr.MaybeUpdate(10);
  pr.BecomeReplicate();
  pr.SentEntries(20, true);
  EXPECT_FALSE(pr.MaybeDecrTo(9, 5)) << "rejection below match is stale";
  EXPECT_TRUE(pr.MaybeDecrTo(15, 12));
  EXPECT_EQ(pr.next(), 11u);
}

TEST(ProgressTest, ProbeUsesTheHintButNeverGoesBelowMatch) {
  Progress pr(51, 8);
  pr.MaybeUpdate(3);
  pr.BecomeProbe();  // next = match + 1 = 4
  EXPECT_EQ(pr.next(), 4u);
  Progress fresh(51, 8);
  EXPECT_FALSE(fresh.MaybeDecrTo(40, 10)) << "not the index we probed (50)";
  EXPECT_TRUE(fresh.MaybeDecrTo(50, 10));
  EXPECT_EQ(fresh.next(), 11u) << "jumps to hint+1 (fast backtracking)";
  EXPECT_TRUE(fresh.MaybeDecrTo(10, 0));
  EXPECT_EQ(fresh.next(), 1u);
}

TEST(ProgressTest, SnapshotPausesAndProbesAfterIt) {
  Progress pr(5, 8);
  pr.BecomeSnapshot(100);
  EXPECT_TRUE(pr.IsPaused());
  pr.BecomeProbe();
  EXPECT_EQ(pr.next(), 101u);
  EXPECT_FALSE(pr.IsPaused());
}

}  // namespace
}  // namespace raftkv::raft
