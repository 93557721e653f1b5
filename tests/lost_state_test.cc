// A member that lost its state (data dir wiped, disk replaced) must never
// act as if it had it: it neither votes nor acknowledges, whichever leader
// is in office. Restarted as it always is, it refuses to start (explicit
// bootstrap: --initial_cluster_state); restarted as a founding member
// (=new) it is refused by any member that heard from its old incarnation,
// at start-up if one is reachable, and on every stream after. The remedy,
// removing it and adding a fresh node, is in snapshot_test.
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

using ::testing::HasSubstr;

class LostStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(c_.StartAll().ok());
    auto leader = c_.WaitForLeader();
    ASSERT_TRUE(leader.ok()) << leader.status();
    TestClient client(&c_);
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(client.Put(absl::StrCat("k", i), "v").ok());
    auto st = c_.WaitForConvergence();
    ASSERT_TRUE(st.ok()) << st.status();
    digest_ = st->data_digest();
    // The leader records every member's incarnation in the replicated state.
    ASSERT_TRUE(Cluster::WaitFor(
        [&] {
          for (int id = 1; id <= c_.size(); ++id) {
            auto s = c_.Status(id);
            if (!s.ok() || s->recorded_incarnations_size() < c_.size()) return false;
          }
          return true;
        },
        absl::Seconds(10)));
  }

  int AFollower() {
    auto leader = c_.WaitForLeader();
    EXPECT_TRUE(leader.ok()) << leader.status();
    for (int id = 1; id <= c_.size(); ++id) {
      if (leader.ok() && id != *leader && c_.running(id)) return id;
    }
    return 0;
  }

  void Wipe(int id) {
    std::error_code ec;
    std::filesystem::remove_all(c_.data_dir(id), ec);
    ASSERT_FALSE(ec) << ec.message();
  }

  // The members other than `lost` still hold every write, and serve.
  void ExpectOthersIntact(int lost) {
    for (int id = 1; id <= c_.size(); ++id) {
      if (id != lost && !c_.running(id)) ASSERT_TRUE(c_.Start(id).ok());
    }
    TestClient client(&c_);
    ASSERT_TRUE(client.Put("after", "x").ok());
    auto st = c_.WaitForConvergence();
    ASSERT_TRUE(st.ok()) << st.status();
    EXPECT_EQ(st->key_count(), 21u);
  }

  Cluster c_;
  uint64_t digest_ = 0;
};

// The case: a follower wiped while down across a leader change,
// restarted with its usual flags. Three times (the fixture's cluster and
// two more), to rule out a race with the leader's memory of it.
TEST_F(LostStateTest, AWipedMemberRestartedAsUsualRefusesToStart) {
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    ClusterOptions o;
    o.name = absl::StrCat("wiped-round-", round);
    Cluster fresh(o);
    Cluster& c = round == 0 ? c_ : fresh;
    if (round > 0) {
      ASSERT_TRUE(c.StartAll().ok());
      TestClient client(&c);
      for (int i = 0; i < 20; ++i) ASSERT_TRUE(client.Put(absl::StrCat("k", i), "v").ok());
    }
    auto leader = c.WaitForLeader();
    ASSERT_TRUE(leader.ok()) << leader.status();
    const int f = *leader % c.size() + 1;
    c.Kill(f);
    std::error_code ec;
    std::filesystem::remove_all(c.data_dir(f), ec);
    c.Kill(*leader);  // a leader change while f is down: the third node and
    ASSERT_TRUE(c.Start(*leader).ok());  // the old leader elect one
    auto next = c.WaitForLeader(absl::Seconds(15));
    ASSERT_TRUE(next.ok()) << next.status();
    ExitResult r = c.RunServer(c.NodeFlags(f), absl::StrCat("wiped-", round, ".log"));
    ExpectQuickFailure(r, {"holds no store and --initial_cluster_state=existing",
                           absl::StrCat("kvctl member remove ", f)});
    EXPECT_FALSE(std::filesystem::exists(c.data_dir(f) + "/CURRENT"))
        << "the refused start created a store";
    TestClient client(&c);
    EXPECT_TRUE(client.Put("after", "x").ok());
  }
}

TEST_F(LostStateTest, AWipedMemberStartedAsNewIsRefusedByAPeerThatKnewIt) {
  const int f = AFollower();
  ASSERT_NE(f, 0);
  c_.Kill(f);
  Wipe(f);
  std::vector<std::string> flags = c_.NodeFlags(f);
  flags.push_back("--initial_cluster_state=new");
  ExitResult r = c_.RunServer(flags, "wiped-new.log");
  ExpectQuickFailure(r, {absl::StrCat("node ", f, " already took part in cluster"),
                         absl::StrCat("kvctl member remove ", f)});
  ExpectOthersIntact(f);
}

// Founded again while no peer was reachable: it starts, but a member that
// never heard from it directly (a follower hears only from leaders and
// candidates) refuses its streams by the replicated record of its old
// incarnation, so its votes never count: with only that member up, no
// leader is elected, and it never gets the log.
TEST(LostStateReplicatedTest, AMemberThatNeverHeardFromAWipedNodeRefusesItByTheRecord) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    ClusterOptions o;
    o.name = absl::StrCat("replicated-record-", attempt);
    Cluster c(o);
    ASSERT_TRUE(c.StartAll().ok());
    auto leader = c.WaitForLeader();
    ASSERT_TRUE(leader.ok()) << leader.status();
    TestClient client(&c);
    ASSERT_TRUE(client.Put("k", "v").ok());
    ASSERT_TRUE(Cluster::WaitFor(
        [&] {
          for (int id = 1; id <= c.size(); ++id) {
            auto s = c.Status(id);
            if (!s.ok() || s->recorded_incarnations_size() < c.size()) return false;
          }
          return true;
        },
        absl::Seconds(10)));
    // Followers f and g, g never having heard from f directly.
    int f = 0, g = 0;
    for (int a = 1; a <= c.size() && f == 0; ++a) {
      for (int b = 1; b <= c.size(); ++b) {
        if (a == b || a == *leader || b == *leader) continue;
        auto sb = c.Status(b);
        ASSERT_TRUE(sb.ok());
        if (sb->peer_incarnations().count(a) == 0) {
          f = a;
          g = b;
          break;
        }
      }
    }
    if (f == 0) continue;  // both followers campaigned once: try a new cluster
    c.KillAll();
    std::error_code ec;
    std::filesystem::remove_all(c.data_dir(f), ec);
    ASSERT_TRUE(c.Start(f, {"--initial_cluster_state=new"}).ok());
    ASSERT_TRUE(c.Start(g).ok());
    const std::string refusal = absl::StrCat("refusing node ", f, ": it came back as");
    EXPECT_TRUE(Cluster::WaitFor([&] { return c.LogTail(g).find(refusal) != std::string::npos; },
                                 absl::Seconds(15)))
        << "node " << g << " did not refuse the new incarnation of node " << f;
    absl::StatusOr<adminpb::StatusResponse> gs, fs;
    ASSERT_TRUE(Cluster::WaitFor([&] { return (gs = c.Status(g)).ok(); }, absl::Seconds(5)))
        << gs.status();
    ASSERT_TRUE(Cluster::WaitFor([&] { return (fs = c.Status(f)).ok(); }, absl::Seconds(5)))
        << fs.status();
    EXPECT_EQ(gs->peer_incarnations().count(f), 0u) << "g recorded the new incarnation";
    EXPECT_EQ(fs->applied_index(), 0u);
    EXPECT_EQ(fs->leader_id(), 0u) << "a leader was elected with the wiped node's vote";
    EXPECT_EQ(gs->leader_id(), 0u) << "a leader was elected with the wiped node's vote";
    return;
  }
  FAIL() << "in 5 clusters, every follower had heard from the other directly";
}

TEST_F(LostStateTest, AWipedMemberJoiningWithItsOldIdIsRefused) {
  const int f = AFollower();
  ASSERT_NE(f, 0);
  c_.Kill(f);
  Wipe(f);
  std::vector<std::string> others;
  for (int id = 1; id <= c_.size(); ++id) {
    if (id != f) others.push_back(c_.address(id));
  }
  ExitResult r = c_.RunServer({absl::StrCat("--id=", f), absl::StrCat("--data_dir=", c_.data_dir(f)),
                               absl::StrCat("--join=", absl::StrJoin(others, ",")),
                               absl::StrCat("--listen=", c_.address(f))},
                              "wiped-join.log");
  ExpectQuickFailure(r, {absl::StrCat("node ", f, " is already a member of cluster"),
                         absl::StrCat("kvctl member remove ", f)});
  ExpectOthersIntact(f);
}

TEST_F(LostStateTest, AnUnknownClusterStateIsRefused) {
  std::vector<std::string> flags = c_.NodeFlags(1);
  flags.push_back("--initial_cluster_state=fresh");
  c_.Kill(1);
  ExpectQuickFailure(c_.RunServer(flags, "bad-state.log"),
                     {"--initial_cluster_state: must be new or existing"});
}

}  // namespace
}  // namespace raftkv::testing
