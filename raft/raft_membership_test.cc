// Single-server membership changes (dissertation §4.1-§4.2), learners and
// leadership transfer (§3.10).
#include <string>

#include "gtest/gtest.h"
#include "raft/raft.h"
#include "raft/test_cluster.h"

namespace raftkv::raft {
namespace {

raftpb::ConfChange Change(raftpb::ConfChangeType t, uint64_t id) {
  raftpb::ConfChange cc;
  cc.set_type(t);
  cc.set_node_id(id);
  return cc;
}

// Proposes `cc` on the leader and delivers until it is committed everywhere.
void ChangeAndCommit(TestCluster& c, raftpb::ConfChangeType t, uint64_t id) {
  const uint64_t leader = c.Leader();
  ASSERT_NE(leader, 0u);
  auto r = c.raft(leader).ProposeConfChange(Change(t, id));
  ASSERT_TRUE(r.ok()) << r.status();
  c.Stabilize();
}

void TickAndStabilize(TestCluster& c, int ticks) {
  for (int i = 0; i < ticks; ++i) {
    c.TickAll();
    c.Stabilize();
  }
}

TEST(MembershipTest, LearnerReceivesTheLogButNeverCountsInAQuorum) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  ASSERT_TRUE(c.Propose("before"));
  c.Stabilize();
  c.AddEmptyNode(4);
  ChangeAndCommit(c, raftpb::CONF_ADD_LEARNER, 4);
  TickAndStabilize(c, 2);
  EXPECT_TRUE(IsLearner(c.raft(4).conf_state(), 4));
  ASSERT_TRUE(c.Propose("after"));
  c.Stabilize();
  EXPECT_EQ(c.node(4).applied.back().data(), "after");
  EXPECT_EQ(c.node(4).applied.size(), c.node(leader).applied.size());

  // With both other voters down, leader + learner are no majority.
  for (uint64_t id : {1, 2, 3}) {
    if (id != leader) c.Crash(id);
  }
  const uint64_t commit = c.raft(leader).log().committed();
  ASSERT_TRUE(c.raft(leader).Propose("stuck").ok());
  c.Stabilize();
  EXPECT_EQ(c.raft(leader).log().committed(), commit);
}

TEST(MembershipTest, PromotedLearnerCountsAndAddingWorksWithANodeDown) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t down = leader % 3 + 1;
  c.Crash(down);
  c.AddEmptyNode(4);
  ChangeAndCommit(c, raftpb::CONF_ADD_LEARNER, 4);
  TickAndStabilize(c, 2);
  ChangeAndCommit(c, raftpb::CONF_ADD_VOTER, 4);
  EXPECT_TRUE(IsVoter(c.raft(leader).conf_state(), 4));
  // The joiner started with no membership; it must adopt the cluster's,
  // not derive {4} from its own empty view (it could then elect itself).
  EXPECT_EQ(ConfStateString(c.raft(4).conf_state()),
            ConfStateString(c.raft(leader).conf_state()));
  // Four voters, one down: 3 of 4 (leader, the other, 4) still commit.
  ASSERT_TRUE(c.Propose("x"));
  c.Stabilize();
  EXPECT_EQ(c.node(4).applied.back().data(), "x");
  EXPECT_EQ(c.raft(leader).log().committed(), c.raft(leader).log().LastIndex());
}

TEST(MembershipTest, OneChangeAtATime) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  ASSERT_TRUE(c.raft(leader).ProposeConfChange(Change(raftpb::CONF_ADD_LEARNER, 4)).ok());
  auto second = c.raft(leader).ProposeConfChange(Change(raftpb::CONF_ADD_LEARNER, 5));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in progress"), std::string::npos);
  c.Stabilize();
  EXPECT_TRUE(c.raft(leader).ProposeConfChange(Change(raftpb::CONF_ADD_LEARNER, 5)).ok());
}

TEST(MembershipTest, InvalidChangesAreRefused) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  EXPECT_FALSE(c.raft(leader).ProposeConfChange(Change(raftpb::CONF_ADD_VOTER, 2)).ok());
  EXPECT_FALSE(c.raft(leader).ProposeConfChange(Change(raftpb::CONF_REMOVE_NODE, 9)).ok());
  EXPECT_FALSE(c.raft(leader % 3 + 1)
                   .ProposeConfChange(Change(raftpb::CONF_ADD_LEARNER, 4))
                   .ok())
      << "followers refuse";
}

// The correction to §4.1: no change before the leader has committed an
// entry of its own term.
TEST(MembershipTest, RefusedBeforeTheLeaderCommitsInItsTerm) {
  TestCluster c(3);
  // Node 1 leads, but its no-op is not replicated, so not committed.
  ASSERT_TRUE(c.ElectWithoutAppends(1));
  auto r = c.raft(1).ProposeConfChange(Change(raftpb::CONF_ADD_LEARNER, 4));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  c.TickAll();  // the heartbeat round brings the followers' logs up
  c.Stabilize();
  EXPECT_TRUE(c.raft(1).ProposeConfChange(Change(raftpb::CONF_ADD_LEARNER, 4)).ok());
}

TEST(MembershipTest, RemovedFollowerStopsCountingAndDoesNotDisrupt) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t removed = leader % 3 + 1;
  const uint64_t other = removed % 3 + 1 == leader ? removed % 3 + 2 : removed % 3 + 1;
  c.Isolate(removed);  // it never hears of its removal
  ChangeAndCommit(c, raftpb::CONF_REMOVE_NODE, removed);
  EXPECT_FALSE(IsMember(c.raft(leader).conf_state(), removed));
  const uint64_t term = c.raft(leader).term();
  c.Heal();
  // It keeps running and campaigning; Pre-Vote and leases keep it harmless.
  TickAndStabilize(c, 60);
  EXPECT_EQ(c.Leader(), leader);
  EXPECT_EQ(c.raft(leader).term(), term);
  // Two voters left: both needed, the removed node is not.
  c.Crash(removed);
  ASSERT_TRUE(c.Propose("two"));
  c.Stabilize();
  EXPECT_EQ(c.node(other).applied.back().data(), "two");
}

// §4.2.2: a leader that removes itself manages the cluster until the change
// commits, then steps down; a remaining node takes over.
TEST(MembershipTest, LeaderRemovingItselfStepsDown) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  ChangeAndCommit(c, raftpb::CONF_REMOVE_NODE, leader);
  EXPECT_NE(c.raft(leader).role(), Role::kLeader);
  TickAndStabilize(c, 30);
  const uint64_t next = c.Leader();
  ASSERT_NE(next, 0u);
  EXPECT_NE(next, leader);
  EXPECT_EQ(c.raft(next).conf_state().voters_size(), 2);
  TickAndStabilize(c, 30);
  EXPECT_NE(c.raft(leader).role(), Role::kLeader) << "a non-voter never campaigns";
}

TEST(MembershipTest, RestartRestoresMembershipFromTheLog) {
  TestCluster c(3);
  c.ElectLeader();
  c.AddEmptyNode(4);
  ChangeAndCommit(c, raftpb::CONF_ADD_LEARNER, 4);
  for (uint64_t id : c.ids()) {
    c.Crash(id);
    c.Restart(id);
    EXPECT_TRUE(IsLearner(c.raft(id).conf_state(), 4)) << "node " << id;
  }
}

TEST(MembershipTest, RestartRestoresMembershipFromASnapshot) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  ChangeAndCommit(c, raftpb::CONF_ADD_LEARNER, 7);
  const uint64_t applied = c.node(leader).applied.back().index();
  ASSERT_TRUE(c.node(leader).log->Compact(applied, c.raft(leader).conf_state(), "").ok());
  c.Crash(leader);
  c.Restart(leader);
  EXPECT_TRUE(IsLearner(c.raft(leader).conf_state(), 7));
}

// An uncommitted change is undone when a new leader overwrites its entry.
TEST(MembershipTest, TruncatedChangeIsRolledBack) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  c.Isolate(leader);
  ASSERT_TRUE(c.raft(leader).ProposeConfChange(Change(raftpb::CONF_ADD_LEARNER, 9)).ok());
  c.Stabilize();
  EXPECT_TRUE(IsLearner(c.raft(leader).conf_state(), 9)) << "in effect once in the log";
  uint64_t new_leader = 0;
  for (int i = 0; i < 100 && new_leader == 0; ++i) {
    c.TickAll();
    c.Stabilize();
    for (uint64_t id : c.ids()) {
      if (id != leader && c.raft(id).role() == Role::kLeader) new_leader = id;
    }
  }
  ASSERT_NE(new_leader, 0u);
  ASSERT_TRUE(c.raft(new_leader).Propose("overwrite").ok());
  c.Stabilize();
  c.Heal();
  TickAndStabilize(c, 30);
  EXPECT_FALSE(IsMember(c.raft(leader).conf_state(), 9));
  EXPECT_EQ(c.node(leader).applied.back().data(), "overwrite");
}

TEST(TransferTest, TransfersToTheChosenVoter) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t target = leader % 3 + 1;
  ASSERT_TRUE(c.raft(leader).TransferLeadership(target).ok());
  c.Stabilize();
  EXPECT_EQ(c.Leader(), target);
  EXPECT_EQ(c.raft(leader).leader(), target);
  ASSERT_TRUE(c.Propose("after"));
  c.Stabilize();
  EXPECT_EQ(c.node(leader).applied.back().data(), "after");
}

TEST(TransferTest, BringsALaggingTargetUpToDateFirst) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t target = leader % 3 + 1;
  c.Cut(leader, target);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.Propose("v" + std::to_string(i)));
  c.Stabilize();
  c.Heal();
  ASSERT_TRUE(c.raft(leader).TransferLeadership(target).ok());
  EXPECT_EQ(c.raft(leader).Propose("held").status().code(), absl::StatusCode::kUnavailable)
      << "proposals are held back during a transfer";
  TickAndStabilize(c, 3);
  EXPECT_EQ(c.Leader(), target);
  const auto& applied = c.node(target).applied;
  ASSERT_GE(applied.size(), 2u);
  EXPECT_EQ(applied[applied.size() - 2].data(), "v4") << "then its own no-op";
}

TEST(TransferTest, TimesOutWhenTheTargetCannotBeReached) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t target = leader % 3 + 1;
  c.Isolate(target);
  ASSERT_TRUE(c.raft(leader).TransferLeadership(target).ok());
  EXPECT_EQ(c.raft(leader).GetStatus().lead_transferee, target);
  Config cfg;
  TickAndStabilize(c, cfg.election_ticks + 1);
  EXPECT_EQ(c.Leader(), leader);
  EXPECT_EQ(c.raft(leader).GetStatus().lead_transferee, 0u) << "aborted";
  EXPECT_TRUE(c.raft(leader).Propose("ok again").ok());
}

TEST(TransferTest, ZeroPicksTheMostUpToDateVoterAndLearnersAreRefused) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  c.AddEmptyNode(4);
  ChangeAndCommit(c, raftpb::CONF_ADD_LEARNER, 4);
  EXPECT_EQ(c.raft(leader).TransferLeadership(4).code(), absl::StatusCode::kInvalidArgument);
  const uint64_t behind = leader % 3 + 1;
  c.Cut(leader, behind);
  ASSERT_TRUE(c.Propose("x"));
  c.Stabilize();
  c.Heal();
  ASSERT_TRUE(c.raft(leader).TransferLeadership(0).ok());
  const uint64_t chosen = c.raft(leader).GetStatus().lead_transferee;
  EXPECT_NE(chosen, behind);
  EXPECT_NE(chosen, 4u);
  c.Stabilize();
  EXPECT_EQ(c.Leader(), chosen);
}

}  // namespace
}  // namespace raftkv::raft
