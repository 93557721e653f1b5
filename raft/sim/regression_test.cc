// Scripted regression tests for core bugs the simulator found. Each test
// names the simulator seed that first showed the bug (before the fix; the
// seeds may replay differently now that the core and harness changed).
#include <string>

#include "gtest/gtest.h"
#include "raft/membership.h"
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

void TickAndStabilize(TestCluster& c, int ticks) {
  for (int i = 0; i < ticks; ++i) {
    c.TickAll();
    c.Stabilize();
  }
}

// Found by `simulate --seed=13` (and ~50 of the first 200 seeds): with the
// inflight window full, a lost append was never resent. Heartbeat responses
// tried to send, but the progress stayed paused in replicate state: nothing
// else frees the window but acknowledgements of appends that no longer
// exist, so replication to that follower stopped for the rest of the term.
TEST(RegressionTest, LostAppendWithAFullInflightWindowIsResent) {
  TestCluster c(3, [](Config* cfg) { cfg->max_inflight_msgs = 1; });
  const uint64_t leader = c.ElectLeader();
  ASSERT_NE(leader, 0u);
  const uint64_t follower = leader % 3 + 1;
  const uint64_t down = 6 - leader - follower;  // the third node
  TickAndStabilize(c, 2);  // the follower's progress is in replicate state
  c.Crash(down);           // the leader needs `follower` for every commit

  ASSERT_TRUE(c.Propose("lost"));
  c.ProcessReadies();
  // The network loses the append carrying the entry: the window of one is
  // now full of a message that will never be acknowledged.
  int dropped = 0;
  auto& pending = c.pending();
  for (auto it = pending.begin(); it != pending.end();) {
    if (it->type() == raftpb::MSG_APPEND && it->to() == follower && it->entries_size() > 0) {
      it = pending.erase(it);
      ++dropped;
    } else {
      ++it;
    }
  }
  ASSERT_EQ(dropped, 1);
  ASSERT_TRUE(c.Propose("next"));
  const uint64_t last = c.raft(leader).log().LastIndex();

  TickAndStabilize(c, 30);
  EXPECT_EQ(c.raft(leader).log().committed(), last);
  ASSERT_FALSE(c.node(follower).applied.empty());
  EXPECT_EQ(c.node(follower).applied.back().data(), "next");
}

// Found by `simulate --seed=97` and `--seed=125`: a leader proposed its own
// removal and lost leadership (CheckQuorum, over a one-way link) before the
// change committed. It held the only copy of the change; being no voter in
// its latest configuration it never campaigned, and it refused its vote to
// the other voter, whose log was behind: no leader could ever be elected.
// A voter removed by an uncommitted configuration must still campaign
// (dissertation §4.2.2).
TEST(RegressionTest, LeaderRemovedByAnUncommittedChangeStillCampaigns) {
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  ASSERT_NE(leader, 0u);
  const uint64_t other = leader % 3 + 1;
  const uint64_t third = other % 3 + 1;
  ASSERT_NE(third, leader);
  // Two voters: the leader and `other`.
  ASSERT_TRUE(c.raft(leader).ProposeConfChange(Change(raftpb::CONF_REMOVE_NODE, third)).ok());
  c.Stabilize();
  c.Crash(third);
  ASSERT_EQ(c.raft(other).conf_state().voters_size(), 2);

  // The leader removes itself, but `other` never hears of it, and the
  // leader's messages do not get through.
  c.Cut(leader, other);
  auto r = c.raft(leader).ProposeConfChange(Change(raftpb::CONF_REMOVE_NODE, leader));
  ASSERT_TRUE(r.ok()) << r.status();
  c.Stabilize();
  ASSERT_FALSE(IsVoter(c.raft(leader).conf_state(), leader));
  ASSERT_TRUE(IsVoter(c.raft(other).conf_state(), leader));
  // CheckQuorum makes the leader step down; `other` cannot win meanwhile.
  TickAndStabilize(c, 30);
  ASSERT_NE(c.raft(leader).role(), Role::kLeader);

  c.Heal();
  TickAndStabilize(c, 100);
  // The old leader won an election in the new configuration, committed its
  // removal, stepped down and handed over to `other`.
  EXPECT_EQ(c.Leader(), other);
  EXPECT_FALSE(IsVoter(c.raft(other).conf_state(), leader));
  EXPECT_GE(c.raft(other).log().committed(), r->index);
  ASSERT_TRUE(c.Propose("after"));
  c.Stabilize();
  EXPECT_EQ(c.node(other).applied.back().data(), "after");
}

// Found by `simulate --seed=189 --isolate_leader_on_event=0.05` (pre-vote
// off): the only node whose log could win an election never campaigned,
// because every vote request with a higher term, which it refused, restarted
// its election timer. Two candidates with stale logs (one a removed server)
// took turns, and no leader was elected for good. Figure 2: only a leader's
// message or a granted vote restarts the timer.
TEST(RegressionTest, RefusedCandidatesDoNotHoldBackTheElectableNode) {
  TestCluster c(3, [](Config* cfg) { cfg->pre_vote = false; });
  const uint64_t leader = c.ElectLeader();
  ASSERT_NE(leader, 0u);
  const uint64_t ahead = leader % 3 + 1;
  const uint64_t behind = ahead % 3 + 1;
  ASSERT_NE(behind, leader);
  // `ahead` gets entries that `behind` never sees; then the leader crashes.
  c.Cut(leader, behind);
  ASSERT_TRUE(c.Propose("x"));
  c.Stabilize();
  c.Crash(leader);
  c.Heal();
  ASSERT_GT(c.raft(ahead).log().LastIndex(), c.raft(behind).log().LastIndex());

  // `behind` campaigns more often than any election timeout; it cannot win.
  for (int t = 1; t <= 100 && c.Leader() == 0; ++t) {
    c.TickAll();
    c.Stabilize();
    if (t % 5 == 0 && c.Leader() == 0) c.Campaign(behind);
  }
  EXPECT_EQ(c.Leader(), ahead);
}

}  // namespace
}  // namespace raftkv::raft
