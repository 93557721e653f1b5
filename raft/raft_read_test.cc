// Linearizable reads without log writes (dissertation §6.4, §6.4.1).
#include <string>

#include "gtest/gtest.h"
#include "raft/raft.h"
#include "raft/test_cluster.h"

namespace raftkv::raft {
namespace {

int CountHeartbeats(const std::deque<raftpb::Message>& msgs) {
  int n = 0;
  for (const auto& m : msgs) n += m.type() == raftpb::MSG_HEARTBEAT;
  return n;
}

TEST(ReadIndexTest, LeaderAnswersAfterAHeartbeatRound) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  ASSERT_TRUE(c.Propose("x"));
  c.Stabilize();
  const uint64_t commit = c.raft(leader).log().committed();
  ASSERT_TRUE(c.raft(leader).ReadIndex("r1").ok());
  c.ProcessReadies();
  EXPECT_TRUE(c.node(leader).reads.empty()) << "not before a majority confirms";
  EXPECT_EQ(CountHeartbeats(c.pending()), 2);
  c.Stabilize();
  ASSERT_EQ(c.node(leader).reads.size(), 1u);
  EXPECT_EQ(c.node(leader).reads[0].context, "r1");
  EXPECT_EQ(c.node(leader).reads[0].index, commit);
}

// One round confirms every read that arrived while it was being prepared,
// and reads arriving while a round is in flight share the next one.
TEST(ReadIndexTest, ReadsAreBatchedIntoRounds) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(c.raft(leader).ReadIndex("a" + std::to_string(i)).ok());
  }
  c.ProcessReadies();
  EXPECT_EQ(CountHeartbeats(c.pending()), 2) << "ten reads, one round";
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(c.raft(leader).ReadIndex("b" + std::to_string(i)).ok());
  }
  c.ProcessReadies();
  EXPECT_EQ(CountHeartbeats(c.pending()), 2) << "round in flight: no new one";
  c.Stabilize();
  EXPECT_EQ(c.node(leader).reads.size(), 20u);
}

// §6.4 step 1: a new leader does not know the commit index until it has
// committed an entry of its own term; reads wait for that.
TEST(ReadIndexTest, NewLeaderWaitsForItsOwnTermCommit) {
  TestCluster c(3);
  // Node 1 leads, but its no-op is not replicated, so not committed.
  ASSERT_TRUE(c.ElectWithoutAppends(1));
  c.ProcessReadies();
  c.pending().clear();
  ASSERT_LT(c.raft(1).log().committed(), c.raft(1).log().LastIndex());
  ASSERT_TRUE(c.raft(1).ReadIndex("early").ok());
  c.ProcessReadies();
  EXPECT_TRUE(c.node(1).reads.empty());
  // A heartbeat round alone is not enough.
  c.TickAll();
  c.Stabilize();
  ASSERT_EQ(c.node(1).reads.size(), 1u);
  EXPECT_GE(c.node(1).reads[0].index, c.node(1).applied.back().index());
  EXPECT_EQ(c.raft(1).log().committed(), c.raft(1).log().LastIndex());
}

TEST(ReadIndexTest, FollowerReadIsForwardedToTheLeader) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  ASSERT_TRUE(c.Propose("x"));
  c.Stabilize();
  const uint64_t f = leader % 3 + 1;
  ASSERT_TRUE(c.raft(f).ReadIndex("fr").ok());
  c.Stabilize();
  ASSERT_EQ(c.node(f).reads.size(), 1u);
  EXPECT_EQ(c.node(f).reads[0].context, "fr");
  EXPECT_EQ(c.node(f).reads[0].index, c.raft(leader).log().committed());
  EXPECT_TRUE(c.node(leader).reads.empty());
}

// A forwarded read the leader never answers (lost message, leader gone
// without a term change seen here) is reported dropped, not kept forever.
TEST(ReadIndexTest, UnansweredForwardedReadIsDropped) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t f = leader % 3 + 1;
  c.Cut(f, leader);
  ASSERT_TRUE(c.raft(f).ReadIndex("lost").ok());
  Config cfg;
  for (int i = 0; i < 2 * cfg.election_ticks; ++i) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_TRUE(c.node(f).reads.empty());
  ASSERT_EQ(c.node(f).dropped_reads.size(), 1u);
  EXPECT_EQ(c.node(f).dropped_reads[0], "lost");
}

TEST(ReadIndexTest, NoLeaderNoRead) {
  TestCluster c(3);
  EXPECT_EQ(c.raft(1).ReadIndex("x").code(), absl::StatusCode::kUnavailable);
}

// The stale-read case: a leader cut off from the majority must not answer,
// even though it still believes it leads.
TEST(ReadIndexTest, PartitionedLeaderCannotServeReads) {
  TestCluster c(5);
  const uint64_t old_leader = c.ElectLeader();
  c.Isolate(old_leader);
  ASSERT_TRUE(c.raft(old_leader).ReadIndex("stale?").ok());
  for (int i = 0; i < 3; ++i) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_TRUE(c.node(old_leader).reads.empty());
  // The majority elects a new leader and commits a write.
  uint64_t new_leader = 0;
  for (int i = 0; i < 100 && new_leader == 0; ++i) {
    c.TickAll();
    c.Stabilize();
    for (uint64_t id : c.ids()) {
      if (id != old_leader && c.raft(id).role() == Role::kLeader) new_leader = id;
    }
  }
  ASSERT_NE(new_leader, 0u);
  EXPECT_TRUE(c.node(old_leader).reads.empty());
  Config cfg;
  for (int i = 0; i < cfg.election_ticks; ++i) c.TickAll();
  EXPECT_NE(c.raft(old_leader).role(), Role::kLeader) << "CheckQuorum";
  EXPECT_EQ(c.node(old_leader).dropped_reads.size(), 1u)
      << "the caller learns to retry elsewhere";
}

Config LeaseConfig(Config* cfg) {
  cfg->read_mode = ReadMode::kLeaseBased;
  return *cfg;
}

// §6.4.1: within a lease the leader answers without a round trip.
TEST(LeaseReadTest, ServedAtOnceWithinTheLease) {
  TestCluster c(3, [](Config* cfg) { LeaseConfig(cfg); });
  const uint64_t leader = c.ElectLeader();
  c.TickAll();  // a heartbeat round confirms the lease
  c.Stabilize();
  ASSERT_TRUE(c.raft(leader).ReadIndex("lease").ok());
  c.ProcessReadies();
  EXPECT_EQ(c.node(leader).reads.size(), 1u);
  EXPECT_EQ(CountHeartbeats(c.pending()), 0);
}

TEST(LeaseReadTest, LeaseExpiresWithoutContact) {
  TestCluster c(3, [](Config* cfg) { LeaseConfig(cfg); });
  const uint64_t leader = c.ElectLeader();
  c.TickAll();
  c.Stabilize();
  c.Isolate(leader);
  Config cfg;
  for (int i = 0; i < cfg.election_ticks - 1; ++i) c.TickAll();
  c.pending().clear();
  if (c.raft(leader).role() == Role::kLeader) {
    ASSERT_TRUE(c.raft(leader).ReadIndex("late").ok());
    c.ProcessReadies();
    EXPECT_TRUE(c.node(leader).reads.empty()) << "lease ran out";
  }
}

// The lease is revoked while leadership is transferred: the target's vote
// overrides the followers' promise.
TEST(LeaseReadTest, RevokedDuringTransfer) {
  TestCluster c(3, [](Config* cfg) { LeaseConfig(cfg); });
  const uint64_t leader = c.ElectLeader();
  c.TickAll();
  c.Stabilize();
  const uint64_t target = leader % 3 + 1;
  c.Cut(leader, target);  // the transfer cannot complete
  ASSERT_TRUE(c.raft(leader).TransferLeadership(target).ok());
  ASSERT_TRUE(c.raft(leader).ReadIndex("during").ok());
  c.ProcessReadies();
  EXPECT_TRUE(c.node(leader).reads.empty()) << "falls back to a heartbeat round";
  c.Stabilize();
  EXPECT_EQ(c.node(leader).reads.size(), 1u);
}

// Once a TimeoutNow went out, the target can win with lease-overriding
// votes at any later time: the lease stays off for the rest of the term,
// even after the transfer is aborted.
TEST(LeaseReadTest, StaysRevokedAfterAnAbortedTransfer) {
  TestCluster c(3, [](Config* cfg) { LeaseConfig(cfg); });
  const uint64_t leader = c.ElectLeader();
  const uint64_t target = leader % 3 + 1;
  ASSERT_TRUE(c.raft(leader).TransferLeadership(target).ok());
  c.ProcessReadies();
  bool timeout_now = false;
  for (const auto& m : c.pending()) timeout_now |= m.type() == raftpb::MSG_TIMEOUT_NOW;
  ASSERT_TRUE(timeout_now) << "the target was up to date";
  c.pending().clear();  // the TimeoutNow is delayed, not delivered (yet)
  Config cfg;
  for (int i = 0; i < cfg.election_ticks + 2; ++i) {
    c.TickAll();
    c.Stabilize();
  }
  ASSERT_EQ(c.raft(leader).GetStatus().lead_transferee, 0u) << "aborted";
  ASSERT_EQ(c.Leader(), leader);
  ASSERT_TRUE(c.raft(leader).ReadIndex("after-abort").ok());
  c.ProcessReadies();
  EXPECT_TRUE(c.node(leader).reads.empty()) << "no lease read this term";
  c.Stabilize();
  EXPECT_EQ(c.node(leader).reads.size(), 1u) << "a heartbeat round serves it";
}

}  // namespace
}  // namespace raftkv::raft
