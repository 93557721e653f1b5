#include "raft/force_new_cluster.h"

#include <vector>

#include "gtest/gtest.h"
#include "raft/memory_log.h"
#include "raft/membership.h"
#include "raft/raft.h"

namespace raftkv::raft {
namespace {

raftpb::ConfState Conf(std::vector<uint64_t> voters, std::vector<uint64_t> learners = {}) {
  raftpb::ConfState cs;
  for (uint64_t v : voters) cs.add_voters(v);
  for (uint64_t l : learners) cs.add_learners(l);
  return cs;
}

raftpb::Entry Normal(uint64_t index, uint64_t term) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data("x");
  return e;
}

raftpb::Entry Change(uint64_t index, uint64_t term, raftpb::ConfChangeType type, uint64_t id,
                     const raftpb::ConfState& result) {
  raftpb::ConfChange cc;
  cc.set_type(type);
  cc.set_node_id(id);
  *cc.mutable_result() = result;
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_type(raftpb::ENTRY_CONF_CHANGE);
  e.set_data(cc.SerializeAsString());
  return e;
}

raftpb::HardState Hard(uint64_t term, uint64_t commit) {
  raftpb::HardState hs;
  hs.set_term(term);
  hs.set_vote(2);
  hs.set_commit(commit);
  return hs;
}

// Voters {1,2,3}; learner 4 added at 2 (committed); the removal of 3 at 4
// and entry 5 are past the commit index 3.
MemoryLog ThreeMemberLog() {
  MemoryLog log(Conf({1, 2, 3}));
  EXPECT_TRUE(log.Append({Normal(1, 1), Change(2, 1, raftpb::CONF_ADD_LEARNER, 4,
                                               Conf({1, 2, 3}, {4})),
                          Normal(3, 2), Change(4, 2, raftpb::CONF_REMOVE_NODE, 3,
                                               Conf({1, 2}, {4})),
                          Normal(5, 3)})
                  .ok());
  log.SetHardState(Hard(3, 3));
  return log;
}

TEST(ForceNewClusterTest, DropsUncommittedAndRemovesEveryOtherMember) {
  MemoryLog log = ThreeMemberLog();
  absl::StatusOr<ForcedLog> plan = PlanForceNewCluster(log, 1, 3);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->commit, 3u);
  EXPECT_EQ(plan->dropped, 2u);
  EXPECT_EQ(ConfStateString(plan->old_conf), ConfStateString(Conf({1, 2, 3}, {4})));
  // The learner first, then the other voters, in a term above any seen (3).
  ASSERT_EQ(plan->entries.size(), 3u);
  const std::vector<uint64_t> removed = {4, 2, 3};
  for (size_t k = 0; k < removed.size(); ++k) {
    const raftpb::Entry& e = plan->entries[k];
    EXPECT_EQ(e.index(), 4 + k);
    EXPECT_EQ(e.term(), 4u);
    absl::StatusOr<raftpb::ConfChange> cc = DecodeConfChange(e);
    ASSERT_TRUE(cc.ok());
    EXPECT_EQ(cc->type(), raftpb::CONF_REMOVE_NODE);
    EXPECT_EQ(cc->node_id(), removed[k]);
  }
  EXPECT_EQ(ConfStateString(DecodeConfChange(plan->entries.back())->result()),
            ConfStateString(Conf({1})));
  EXPECT_EQ(plan->hard_state.term(), 4u);
  EXPECT_EQ(plan->hard_state.vote(), 0u);
  EXPECT_EQ(plan->hard_state.commit(), 6u);
}

TEST(ForceNewClusterTest, CoreStartsFromTheRewrittenLogAsSoleVoterAndLeads) {
  MemoryLog log = ThreeMemberLog();
  absl::StatusOr<ForcedLog> plan = PlanForceNewCluster(log, 1, 3);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(log.Append(plan->entries).ok());
  log.SetHardState(plan->hard_state);
  ASSERT_EQ(log.LastIndex(), 6u);
  EXPECT_EQ(log.Entries(3, 4, 1 << 20)->at(0).data(), "x");  // committed entries kept

  Config c;
  c.id = 1;
  c.applied = 3;
  absl::StatusOr<std::unique_ptr<Raft>> core = Raft::Create(c, &log);
  ASSERT_TRUE(core.ok()) << core.status();
  EXPECT_EQ(ConfStateString((*core)->conf_state()), ConfStateString(Conf({1})));
  (*core)->Campaign();  // pre-vote and vote: its own vote is a majority
  EXPECT_EQ((*core)->GetStatus().role, Role::kLeader);
  EXPECT_EQ((*core)->GetStatus().term, 5u);
  // A second rewrite finds nothing to remove: one empty entry, a new term.
  absl::StatusOr<ForcedLog> again = PlanForceNewCluster(log, 1, 6);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->commit, 6u);
  EXPECT_EQ(again->dropped, 0u);
  ASSERT_EQ(again->entries.size(), 1u);
  EXPECT_EQ(again->entries[0].type(), raftpb::ENTRY_NORMAL);
  EXPECT_EQ(again->entries[0].index(), 7u);
  EXPECT_EQ(again->hard_state.term(), 5u);
}

TEST(ForceNewClusterTest, CommitIndexIsAtLeastTheAppliedIndex) {
  MemoryLog log = ThreeMemberLog();
  log.SetHardState(Hard(3, 1));  // the unsynced commit index lagged the apply
  absl::StatusOr<ForcedLog> plan = PlanForceNewCluster(log, 1, 4);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->commit, 4u);
  EXPECT_EQ(plan->dropped, 1u);
  // The removal of 3 at index 4 is committed: only 4 and 2 are left to remove.
  EXPECT_EQ(ConfStateString(plan->old_conf), ConfStateString(Conf({1, 2}, {4})));
  EXPECT_EQ(plan->entries.size(), 2u);
}

TEST(ForceNewClusterTest, MembershipFromTheSnapshot) {
  MemoryLog log = ThreeMemberLog();
  ASSERT_TRUE(log.Compact(3, Conf({1, 2, 3}, {4}), "").ok());
  absl::StatusOr<ForcedLog> plan = PlanForceNewCluster(log, 2, 3);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(ConfStateString(plan->old_conf), ConfStateString(Conf({1, 2, 3}, {4})));
  EXPECT_EQ(plan->entries.size(), 3u);
  EXPECT_EQ(plan->entries[0].index(), 4u);
}

TEST(ForceNewClusterTest, RefusesANonVoter) {
  MemoryLog log = ThreeMemberLog();
  EXPECT_EQ(PlanForceNewCluster(log, 4, 3).status().code(),
            absl::StatusCode::kFailedPrecondition);  // a learner
  EXPECT_EQ(PlanForceNewCluster(log, 9, 3).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace raftkv::raft
