// The way back from a lost majority (server --force_new_cluster): a
// three-member cluster loses two members' data for good; the survivor,
// restarted with the flag, is a single-member cluster that serves every key
// it had applied and drops the write it never saw committed; restarted again
// without the flag it stays single-member; two fresh nodes join with --join
// (one under a removed member's id, which the forced cluster forgot, one
// under a new id) and the cluster is three voters again, which is what the
// survivor keeps across a later restart without the flag.
#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ClusterOptions Options() {
  ClusterOptions o;
  o.size = 3;
  o.spares = 1;  // node 4 joins with --join
  // Node 1 must still lead when the unacknowledged write reaches it, after
  // 2 and 3 stopped: a leader steps down once it has not heard from a
  // majority for an election timeout, so keep that well above the time the
  // write takes to arrive (under ASan too).
  o.election_ticks = 100;
  return o;
}

std::vector<uint64_t> Voters(const adminpb::StatusResponse& s) {
  std::vector<uint64_t> v(s.voters().begin(), s.voters().end());
  std::sort(v.begin(), v.end());
  return v;
}

TEST(ForceNewClusterTest, SurvivorServesAloneThenGrowsBackToThree) {
  Cluster c(Options());
  ASSERT_TRUE(c.StartAll().ok());
  ASSERT_TRUE(c.WaitForLeader().ok());
  TestClient client(&c);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(client.Put(absl::StrCat("k", i), absl::StrCat("v", i)).ok());
  }
  ASSERT_TRUE(client.Put("k0", "v0-again").ok());  // version 2
  ASSERT_TRUE(c.WaitForConvergence().ok());
  // Every member's incarnation is in the replicated state.
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        auto s = c.Status(1);
        return s.ok() && s->recorded_incarnations_size() == 3;
      },
      absl::Seconds(10)));
  const uint64_t old_incarnation_2 = c.Status(1)->recorded_incarnations().at(2);
  auto before = c.ScanAll(1, /*serializable=*/false);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_EQ(before->size(), 30u);

  // Node 1 leads; 2 and 3 stop and lose their data dirs for good. A write
  // to 1 then is appended but never committed.
  {
    auto leader = c.WaitForLeader();
    ASSERT_TRUE(leader.ok());
    if (*leader != 1) {
      grpc::ClientContext ctx;
      adminpb::TransferLeaderRequest req;
      req.set_node_id(1);
      adminpb::TransferLeaderResponse resp;
      ASSERT_TRUE(c.admin(*leader)->TransferLeader(&ctx, req, &resp).ok());
      ASSERT_TRUE(c.WaitForLeader(absl::Seconds(15), *leader).ok());
    }
  }
  ASSERT_EQ(*c.WaitForLeader(), 1);
  {
    TestClient lost(&c);  // connected before the stops: the write goes at once
    lost.set_preferred(1);
    ASSERT_TRUE(lost.Get("k1").ok());
    for (int id : {2, 3}) {
      c.Stop(id);
      std::filesystem::remove_all(c.data_dir(id));
    }
    EXPECT_FALSE(lost.Put("unacked", "x", absl::Seconds(1)).ok());
  }
  c.Stop(1);

  // Refusals, each with one line and before anything is written.
  const std::string empty = c.data_dir(2);
  ExpectQuickFailure(c.RunServer({"--id=2", "--cluster=" + c.cluster_flag(),
                                  "--data_dir=" + empty, "--force_new_cluster"},
                                 "force-empty.log"),
                     {"--force_new_cluster: data dir", "holds no store"});
  EXPECT_FALSE(std::filesystem::exists(empty + "/CURRENT"));
  std::vector<std::string> flags = c.NodeFlags(1);
  flags.push_back("--force_new_cluster");
  flags.push_back("--initial_cluster_state=new");
  ExpectQuickFailure(c.RunServer(flags, "force-new.log"),
                     {"not with --initial_cluster_state=new"});
  ExpectQuickFailure(c.RunServer({"--id=1", "--join=" + c.address(2), "--listen=" + c.address(1),
                                  "--data_dir=" + empty, "--force_new_cluster"},
                                 "force-join.log"),
                     {"--force_new_cluster: data dir", "holds no store"});

  // The survivor alone: leader of {1}, every applied key, the unacked write gone.
  auto check_alone = [&](const std::string& what) {
    auto leader = c.WaitForLeader();
    ASSERT_TRUE(leader.ok()) << what << ": " << leader.status();
    EXPECT_EQ(*leader, 1) << what;
    auto s = c.Status(1);
    ASSERT_TRUE(s.ok()) << what;
    EXPECT_THAT(Voters(*s), ElementsAre(1u)) << what;
    EXPECT_EQ(s->learners_size(), 0) << what;
    EXPECT_EQ(s->members_size(), 1) << what;
    auto now = c.ScanAll(1, /*serializable=*/false);
    ASSERT_TRUE(now.ok()) << what << ": " << now.status();
    for (const auto& [k, kv] : *before) {
      ASSERT_EQ(now->count(k), 1u) << what << ": lost " << k;
      EXPECT_EQ(now->at(k).value(), kv.value()) << what << ": " << k;
      EXPECT_EQ(now->at(k).version(), kv.version()) << what << ": " << k;
    }
    EXPECT_EQ(now->count("unacked"), 0u) << what;
  };
  ASSERT_TRUE(c.Start(1, {"--force_new_cluster"}).ok());
  check_alone("forced");
  EXPECT_THAT(c.LogTail(1), HasSubstr("is now the only member of its cluster"));
  EXPECT_THAT(c.LogTail(1), HasSubstr("past it (never known committed here)"));
  EXPECT_THAT(c.LogTail(1), ::testing::Not(HasSubstr("dropped 0 entries")));
  EXPECT_THAT(c.LogTail(1), HasSubstr("are gone"));
  ASSERT_TRUE(client.Put("alone", "1").ok());
  auto s1 = c.Status(1);
  ASSERT_TRUE(s1.ok());
  EXPECT_EQ(s1->recorded_incarnations().count(2), 0u) << "removed members' records are dropped";
  EXPECT_EQ(s1->recorded_incarnations().count(3), 0u);

  // Restarted without the flag: still alone (the membership is in its log).
  c.Stop(1);
  ASSERT_TRUE(c.Start(1).ok());
  check_alone("restarted");
  EXPECT_EQ(client.Get("alone")->kv().value(), "1");

  // Grown back: node 4 (a new id) and node 2 (a removed id, fresh data).
  ASSERT_TRUE(c.Start(4).ok());
  ASSERT_TRUE(c.Start(2, {"--cluster=", "--join=" + c.address(1), "--listen=" + c.address(2)})
                  .ok());
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        auto s = c.Status(1);
        return s.ok() && Voters(*s) == std::vector<uint64_t>{1, 2, 4};
      },
      absl::Seconds(30)))
      << c.Status(1)->DebugString();
  ASSERT_TRUE(client.Put("three", "again").ok());
  auto conv = c.WaitForConvergence();
  ASSERT_TRUE(conv.ok()) << conv.status();
  EXPECT_EQ(conv->key_count(), 32u);
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        auto s = c.Status(1);
        return s.ok() && s->recorded_incarnations().count(2) == 1;
      },
      absl::Seconds(10)));
  EXPECT_NE(c.Status(1)->recorded_incarnations().at(2), old_incarnation_2);

  // The survivor restarted later without the flag keeps {1,2,4}, never {1,2,3}.
  c.Stop(1);
  ASSERT_TRUE(c.Start(1).ok());
  ASSERT_TRUE(c.WaitForLeader().ok());
  for (int id : {1, 2, 4}) {
    auto s = c.Status(id);
    ASSERT_TRUE(s.ok()) << id;
    EXPECT_THAT(Voters(*s), ElementsAre(1u, 2u, 4u)) << "node " << id;
  }
  auto after = c.ScanAll(2, /*serializable=*/false);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->size(), 32u);
  EXPECT_EQ(after->at("k0").value(), "v0-again");

  // Again, now with a survivor that joined: node 4, restarted with its usual
  // --join flags plus --force_new_cluster, after 1 and 2 are gone for good.
  ASSERT_TRUE(client.Put("before-second-loss", "x").ok());
  ASSERT_TRUE(c.WaitForConvergence().ok());
  for (int id : {1, 2}) {
    c.Stop(id);
    std::filesystem::remove_all(c.data_dir(id));
  }
  c.Stop(4);
  ASSERT_TRUE(c.Start(4, {"--force_new_cluster"}).ok());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(*leader, 4);
  auto s4 = c.Status(4);
  ASSERT_TRUE(s4.ok());
  EXPECT_THAT(Voters(*s4), ElementsAre(4u));
  auto kept = c.ScanAll(4, /*serializable=*/false);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->size(), 33u);
  EXPECT_EQ(kept->at("before-second-loss").value(), "x");
}

}  // namespace
}  // namespace raftkv::testing
