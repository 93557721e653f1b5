#include "raft/membership.h"

#include "gtest/gtest.h"

namespace raftkv::raft {
namespace {

raftpb::ConfState Conf(std::vector<uint64_t> voters,
                       std::vector<uint64_t> learners = {}) {
  raftpb::ConfState cs;
  for (auto v : voters) cs.add_voters(v);
  for (auto l : learners) cs.add_learners(l);
  return cs;
}

raftpb::ConfChange Change(raftpb::ConfChangeType t, uint64_t id) {
  raftpb::ConfChange cc;
  cc.set_type(t);
  cc.set_node_id(id);
  return cc;
}

TEST(ApplyConfChangeTest, AddLearnerThenPromote) {
  auto cs = ApplyConfChange(Conf({1, 2, 3}), Change(raftpb::CONF_ADD_LEARNER, 4));
  ASSERT_TRUE(cs.ok()) << cs.status();
  EXPECT_TRUE(IsLearner(*cs, 4));
  EXPECT_FALSE(IsVoter(*cs, 4));
  auto promoted = ApplyConfChange(*cs, Change(raftpb::CONF_ADD_VOTER, 4));
  ASSERT_TRUE(promoted.ok());
  EXPECT_EQ(ConfStateString(*promoted), "voters=[1,2,3,4] learners=[]");
}

TEST(ApplyConfChangeTest, VotersStaySorted) {
  auto cs = ApplyConfChange(Conf({5, 9}), Change(raftpb::CONF_ADD_VOTER, 7));
  ASSERT_TRUE(cs.ok());
  EXPECT_EQ(ConfStateString(*cs), "voters=[5,7,9] learners=[]");
}

TEST(ApplyConfChangeTest, RefusesInvalidChanges) {
  EXPECT_FALSE(ApplyConfChange(Conf({1}), Change(raftpb::CONF_ADD_VOTER, 0)).ok());
  EXPECT_FALSE(ApplyConfChange(Conf({1, 2}), Change(raftpb::CONF_ADD_VOTER, 2)).ok());
  EXPECT_FALSE(ApplyConfChange(Conf({1, 2}), Change(raftpb::CONF_ADD_LEARNER, 2)).ok());
  EXPECT_FALSE(ApplyConfChange(Conf({1}, {3}), Change(raftpb::CONF_ADD_LEARNER, 3)).ok());
  EXPECT_FALSE(ApplyConfChange(Conf({1, 2}), Change(raftpb::CONF_REMOVE_NODE, 5)).ok());
  EXPECT_FALSE(ApplyConfChange(Conf({1}), Change(raftpb::CONF_REMOVE_NODE, 1)).ok())
      << "the last voter cannot be removed";
}

TEST(ApplyConfChangeTest, RemovesVotersAndLearners) {
  auto cs = ApplyConfChange(Conf({1, 2, 3}, {4}), Change(raftpb::CONF_REMOVE_NODE, 2));
  ASSERT_TRUE(cs.ok());
  cs = ApplyConfChange(*cs, Change(raftpb::CONF_REMOVE_NODE, 4));
  ASSERT_TRUE(cs.ok());
  EXPECT_EQ(ConfStateString(*cs), "voters=[1,3] learners=[]");
}

TEST(DecodeConfChangeTest, RejectsGarbageAndNormalEntries) {
  raftpb::Entry e;
  e.set_type(raftpb::ENTRY_NORMAL);
  EXPECT_FALSE(DecodeConfChange(e).ok());
  e.set_type(raftpb::ENTRY_CONF_CHANGE);
  e.set_data("\xff\xff\xff");
  EXPECT_FALSE(DecodeConfChange(e).ok());
  e.set_data(Change(raftpb::CONF_ADD_VOTER, 3).SerializeAsString());
  auto cc = DecodeConfChange(e);
  ASSERT_TRUE(cc.ok());
  EXPECT_EQ(cc->node_id(), 3u);
}

TEST(ConfigLogTest, LatestWinsAndTruncationRevertsIt) {
  ConfigLog log;
  log.Reset(10, Conf({1, 2, 3}));
  log.Append(12, Conf({1, 2, 3}, {4}));
  log.Append(15, Conf({1, 2, 3, 4}));
  EXPECT_EQ(log.LatestIndex(), 15u);
  EXPECT_TRUE(IsVoter(log.Latest(), 4));
  log.TruncateFrom(13);  // entry 15 was overwritten by a new leader
  EXPECT_EQ(log.LatestIndex(), 12u);
  EXPECT_TRUE(IsLearner(log.Latest(), 4));
  log.TruncateFrom(11);
  EXPECT_EQ(log.LatestIndex(), 10u);
  EXPECT_FALSE(IsMember(log.Latest(), 4));
}

TEST(ConfigLogTest, CompactFoldsIntoBase) {
  ConfigLog log;
  log.Reset(0, Conf({1}));
  log.Append(3, Conf({1, 2}));
  log.Append(8, Conf({1, 2, 3}));
  log.CompactTo(5);
  EXPECT_EQ(log.base_index(), 3u);
  EXPECT_EQ(log.LatestIndex(), 8u);
  log.TruncateFrom(6);
  EXPECT_EQ(ConfStateString(log.Latest()), "voters=[1,2] learners=[]");
}

}  // namespace
}  // namespace raftkv::raft
