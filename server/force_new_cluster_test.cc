#include "server/force_new_cluster.h"

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "raft/membership.h"
#include "storage/durable_mark.h"

namespace raftkv::server {
namespace {

raftpb::ConfState Voters(std::vector<uint64_t> ids) {
  raftpb::ConfState cs;
  for (uint64_t v : ids) cs.add_voters(v);
  return cs;
}

raftpb::Entry Normal(uint64_t index, uint64_t term) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data("x");
  return e;
}

storage::Options Opts(const std::string& dir) {
  storage::Options o;
  o.dir = dir;
  o.durable_mark_interval = absl::Milliseconds(1);  // keeps and checks the mark
  return o;
}

// A member of {1,2,3} that applied through 3, knows 4 committed, and holds
// entries 5..8 past it. The rewrite keeps 1..4 and replaces 5..8 with two
// removals; the store opens again, with its mark, and the core would read
// the single-member membership from the log.
TEST(ForceNewClusterTest, RewritesTheStoreDurably) {
  const std::string dir =
      std::string(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") + "/fnc";
  std::filesystem::remove_all(dir);
  {
    auto store = storage::LogStore::Open(Opts(dir));
    ASSERT_TRUE(store.ok()) << store.status();
    storagepb::NodeIdentity id;
    id.set_cluster_id(7);
    id.set_node_id(1);
    id.set_incarnation(99);
    ASSERT_TRUE((*store)->Bootstrap(id, Voters({1, 2, 3})).ok());
    std::vector<raftpb::Entry> ents;
    for (uint64_t i = 1; i <= 8; ++i) ents.push_back(Normal(i, i <= 4 ? 1 : 2));
    raftpb::HardState hs;
    hs.set_term(2);
    hs.set_vote(2);
    hs.set_commit(4);
    ASSERT_TRUE((*store)->Append(ents, &hs).ok());
    ASSERT_TRUE((*store)->ApplyBatch(storage::DataBatch(), 3).ok());
  }
  // The mark names entry 8 of term 2 once the store closed.
  auto mark = storage::ReadDurableMark(dir);
  ASSERT_TRUE(mark.ok() && mark->has_value());
  EXPECT_EQ((*mark)->last_index, 8u);

  {
    auto store = storage::LogStore::Open(Opts(dir));
    ASSERT_TRUE(store.ok()) << store.status();
    auto forced = ForceNewCluster(store->get(), 1);
    ASSERT_TRUE(forced.ok()) << forced.status();
    EXPECT_EQ(forced->commit, 4u);
    EXPECT_EQ(forced->dropped, 4u);
    EXPECT_NE(DescribeForcedLog(*forced, 1).find("dropped 4 entries past it"), std::string::npos);
    EXPECT_EQ((*store)->LastIndex(), 6u);
  }
  for (int reopen = 0; reopen < 2; ++reopen) {
    auto store = storage::LogStore::Open(Opts(dir));
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ((*store)->LastIndex(), 6u);
    EXPECT_EQ((*store)->hard_state().term(), 3u);
    EXPECT_EQ((*store)->hard_state().commit(), 6u);
    EXPECT_EQ((*store)->identity()->incarnation(), 99u);
    auto e = (*store)->Entries(4, 7, 1 << 20);
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ((*e)[0].data(), "x");  // the committed entry kept
    auto last = raft::DecodeConfChange((*e)[2]);
    ASSERT_TRUE(last.ok());
    EXPECT_EQ(raft::ConfStateString(last->result()), raft::ConfStateString(Voters({1})));
  }
  mark = storage::ReadDurableMark(dir);
  ASSERT_TRUE(mark.ok() && mark->has_value());
  EXPECT_EQ((*mark)->last_index, 6u);
  EXPECT_EQ((*mark)->last_term, 3u);
}

}  // namespace
}  // namespace raftkv::server
