// Leader election (Raft paper §5.2, §5.4.1), Pre-Vote and CheckQuorum
// (dissertation §9.6, §6.2), driven through TestCluster.
#include <set>

#include "gtest/gtest.h"
#include "raft/raft.h"
#include "raft/test_cluster.h"

namespace raftkv::raft {
namespace {

TEST(ElectionTest, ThreeNodesElectOneLeader) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  ASSERT_NE(leader, 0u);
  for (uint64_t id : c.ids()) {
    EXPECT_EQ(c.raft(id).leader(), leader) << "node " << id;
    EXPECT_EQ(c.raft(id).term(), c.raft(leader).term());
  }
}

// §5.2: "If election timeout elapses without receiving AppendEntries RPC
// from current leader or granting vote to candidate: convert to candidate",
// with the timeout drawn from [election_ticks, 2*election_ticks).
TEST(ElectionTest, FollowerCampaignsWithinRandomizedTimeout) {
  std::set<int> seen;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    raftpb::ConfState cs;
    cs.add_voters(1);
    cs.add_voters(2);
    cs.add_voters(3);
    MemoryLog log3(cs);
    Config cfg;
    cfg.id = 1;
    cfg.seed = seed;
    auto r = Raft::Create(cfg, &log3);
    ASSERT_TRUE(r.ok());
    int t = 0;
    while ((*r)->role() == Role::kFollower && t < 100) {
      (*r)->Tick();
      ++t;
    }
    EXPECT_GE(t, cfg.election_ticks);
    EXPECT_LT(t, 2 * cfg.election_ticks);
    seen.insert(t);
  }
  EXPECT_GT(seen.size(), 2u) << "timeouts should be randomized";
}

// §5.1/§5.2: the vote is persisted before the reply that grants it.
TEST(ElectionTest, VoteIsPersistedBeforeTheGrantIsSent) {
  TestCluster c(3, [](Config* cfg) { cfg->pre_vote = false; });
  c.raft(1).Campaign();
  Ready rd1 = c.raft(1).GetReady();
  ASSERT_TRUE(rd1.hard_state.has_value());
  EXPECT_EQ(rd1.hard_state->vote(), 1u) << "candidate persists its own vote";
  ASSERT_EQ(rd1.persisted_messages.size(), 2u) << "requests wait for that";
  EXPECT_TRUE(rd1.messages.empty());
  c.raft(1).Advance(rd1);

  ASSERT_TRUE(c.raft(2).Step(rd1.persisted_messages[0]).ok());
  Ready rd2 = c.raft(2).GetReady();
  ASSERT_TRUE(rd2.hard_state.has_value());
  EXPECT_EQ(rd2.hard_state->vote(), 1u);
  EXPECT_EQ(rd2.hard_state->term(), rd1.hard_state->term());
  ASSERT_EQ(rd2.persisted_messages.size(), 1u);
  EXPECT_EQ(rd2.persisted_messages[0].type(), raftpb::MSG_VOTE_RESP);
  EXPECT_FALSE(rd2.persisted_messages[0].reject());
  EXPECT_TRUE(rd2.messages.empty()) << "a grant must not be sent before persisting";
}

// A single voter becomes leader in the step that raised its term: its first
// appends (here to a learner) must wait until that term is durable, or a
// crash could let it win the same term again with different entries.
TEST(ElectionTest, ASingleVotersFirstAppendsWaitForItsNewTerm) {
  raftpb::ConfState cs;
  cs.add_voters(1);
  cs.add_learners(2);
  MemoryLog log(cs);
  Config cfg;
  cfg.id = 1;
  auto r = Raft::Create(cfg, &log);
  ASSERT_TRUE(r.ok()) << r.status();
  (*r)->Campaign();
  ASSERT_EQ((*r)->role(), Role::kLeader);
  Ready rd = (*r)->GetReady();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term(), (*r)->term());
  for (const auto& m : rd.messages) {
    EXPECT_NE(m.to(), 2u) << "sent to the learner before the term is durable";
  }
  bool append_waits = false;
  for (const auto& m : rd.persisted_messages) {
    if (m.to() == 2 && m.type() == raftpb::MSG_APPEND) append_waits = true;
  }
  EXPECT_TRUE(append_waits);
}

// §5.2: "each server will vote for at most one candidate in a given term".
TEST(ElectionTest, OneVotePerTerm) {
  TestCluster c(3, [](Config* cfg) {
    cfg->pre_vote = false;
    cfg->check_quorum = false;
  });
  raftpb::Message vote;
  vote.set_type(raftpb::MSG_VOTE);
  vote.set_from(2);
  vote.set_to(1);
  vote.set_term(5);
  ASSERT_TRUE(c.raft(1).Step(vote).ok());
  vote.set_from(3);
  ASSERT_TRUE(c.raft(1).Step(vote).ok());
  Ready rd = c.raft(1).GetReady();
  ASSERT_EQ(rd.persisted_messages.size(), 2u);
  EXPECT_FALSE(rd.persisted_messages[0].reject()) << "first candidate wins the vote";
  EXPECT_TRUE(rd.persisted_messages[1].reject()) << "second is refused";
  EXPECT_EQ(rd.hard_state->vote(), 2u);
}

// §5.4.1: a voter denies its vote if its own log is more up to date.
TEST(ElectionTest, CandidateWithStaleLogCannotWin) {
  TestCluster c(3);
  uint64_t leader = c.ElectLeader();
  uint64_t stale = leader % 3 + 1;
  c.Isolate(stale);
  ASSERT_TRUE(c.Propose("x"));
  c.Stabilize();
  c.Heal();
  // The stale node campaigns (no Pre-Vote needed to show it): it loses.
  c.raft(stale).Campaign();
  c.Stabilize();
  EXPECT_NE(c.raft(stale).role(), Role::kLeader);
  uint64_t l = c.ElectLeader();
  EXPECT_NE(l, stale);
}

// §9.6: a node partitioned away keeps failing Pre-Vote, so its term stays
// put and it does not depose the healthy leader when it returns.
TEST(PreVoteTest, RejoiningNodeDoesNotDisruptTheLeader) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t term = c.raft(leader).term();
  const uint64_t lonely = leader % 3 + 1;
  c.Isolate(lonely);
  for (int i = 0; i < 100; ++i) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_EQ(c.raft(leader).role(), Role::kLeader);
  EXPECT_EQ(c.raft(lonely).term(), term) << "pre-vote keeps the term";
  c.Heal();
  for (int i = 0; i < 5; ++i) {
    c.TickAll();
    c.Stabilize();
  }
  EXPECT_EQ(c.Leader(), leader);
  EXPECT_EQ(c.raft(leader).term(), term);
}

TEST(PreVoteTest, WithoutPreVoteTheReturningNodeBumpsTheTerm) {
  TestCluster c(3, [](Config* cfg) {
    cfg->pre_vote = false;
    cfg->check_quorum = false;
  });
  const uint64_t leader = c.ElectLeader();
  const uint64_t term = c.raft(leader).term();
  const uint64_t lonely = leader % 3 + 1;
  c.Isolate(lonely);
  for (int i = 0; i < 100; ++i) c.TickAll();
  c.Stabilize();
  EXPECT_GT(c.raft(lonely).term(), term) << "the contrast the rule exists for";
}

// CheckQuorum (dissertation §6.2): a leader that cannot reach a majority
// for an election timeout steps down.
TEST(CheckQuorumTest, IsolatedLeaderStepsDown) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  c.Isolate(leader);
  Config cfg;
  for (int i = 0; i < 2 * cfg.election_ticks + 1; ++i) c.TickAll();
  EXPECT_NE(c.raft(leader).role(), Role::kLeader);
}

// With CheckQuorum, followers that hear from a leader ignore vote requests
// (§4.2.3): a node that campaigns anyway (e.g. removed) gets no votes.
TEST(CheckQuorumTest, FollowersInLeaseIgnoreVoteRequests) {
  TestCluster c(3, [](Config* cfg) { cfg->pre_vote = false; });
  const uint64_t leader = c.ElectLeader();
  const uint64_t term = c.raft(leader).term();
  const uint64_t other = leader % 3 + 1;
  c.raft(other).Campaign();  // a forced election without Pre-Vote
  c.Stabilize();
  EXPECT_EQ(c.raft(leader).role(), Role::kLeader);
  EXPECT_EQ(c.raft(leader).term(), term) << "votes were ignored, not answered";
}

TEST(ElectionTest, LearnersNeverCampaign) {
  TestCluster c(1);
  ASSERT_EQ(c.ElectLeader(), 1u);
  c.AddEmptyNode(2);
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_ADD_LEARNER);
  cc.set_node_id(2);
  ASSERT_TRUE(c.raft(1).ProposeConfChange(cc).ok());
  c.Stabilize();
  c.Crash(1);
  for (int i = 0; i < 100; ++i) c.TickAll();
  EXPECT_EQ(c.raft(2).role(), Role::kFollower);
  EXPECT_EQ(c.raft(2).term(), c.node(2).log->hard_state().term());
}

TEST(ElectionTest, RestartRecoversTermAndVote) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  const uint64_t term = c.raft(leader).term();
  for (uint64_t id : c.ids()) {
    c.Crash(id);
    c.Restart(id);
    EXPECT_EQ(c.raft(id).term(), term);
  }
  EXPECT_EQ(c.raft(leader).GetStatus().vote, leader);
  EXPECT_NE(c.ElectLeader(), 0u);
}

TEST(ConfigTest, ValidateRejectsBadOptions) {
  Config cfg;
  EXPECT_FALSE(cfg.Validate().ok()) << "id 0";
  cfg.id = 1;
  EXPECT_TRUE(cfg.Validate().ok());
  cfg.election_ticks = 1;
  EXPECT_FALSE(cfg.Validate().ok());
  cfg = Config();
  cfg.id = 1;
  cfg.read_mode = ReadMode::kLeaseBased;
  cfg.check_quorum = false;
  EXPECT_FALSE(cfg.Validate().ok()) << "leases need CheckQuorum";
}

TEST(StepTest, RejectsMisaddressedMessages) {
  TestCluster c(3);
  raftpb::Message m;
  m.set_type(raftpb::MSG_HEARTBEAT);
  m.set_from(2);
  m.set_to(3);
  EXPECT_FALSE(c.raft(1).Step(m).ok());
  m.set_to(1);
  m.set_from(0);
  EXPECT_FALSE(c.raft(1).Step(m).ok());
  m.set_from(2);
  m.set_type(raftpb::MSG_UNKNOWN);
  EXPECT_FALSE(c.raft(1).Step(m).ok());
}

}  // namespace
}  // namespace raftkv::raft
