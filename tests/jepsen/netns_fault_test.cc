// Real network partitions: every node in a network namespace of its own,
// links cut by blackhole routes (netns.h), not by the servers' fault layer.
//
// RoutesCutAnIsolatedLeaderOff runs servers WITHOUT --enable_fault_injection
// and checks that routes alone cut the leader off: the other two elect a
// new leader and commit without it, and it catches up once the routes go.
// If the routes did nothing, no new leader would be elected.
//
// SeededRunIsLinearizableAndConverges: a few RunOnce runs (runner.h) with
// partitions by routes, kills, pauses and snapshot cuts; all four checks
// must pass (run one by hand: tools/torture --netns ..., as root).
//
// Needs root and iproute2's `ip`; skips (saying why) without them. main()
// moves the process into a private namespace before any thread exists.
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
#include "proto/kv.grpc.pb.h"
#include "tests/cluster_harness.h"
#include "tests/jepsen/netns.h"
#include "tests/jepsen/runner.h"

namespace raftkv::jepsen {
namespace {

#define SKIP_WITHOUT_NETNS()                                                     \
  if (absl::Status ready = NetnsReady(); !ready.ok()) {                         \
    GTEST_SKIP() << "netns partitions unavailable here: " << ready.message(); \
  }

TEST(NetnsPartitionTest, RoutesCutAnIsolatedLeaderOff) {
  SKIP_WITHOUT_NETNS();
  auto net = NetnsNodes::Create(3);
  ASSERT_TRUE(net.ok()) << net.status();
  NetnsNodes* nodes = net->get();
  testing::ClusterOptions co;
  co.network = [nodes](int id) {
    return testing::ClusterOptions::NodeNetwork{nodes->host(id), nodes->netns_path(id)};
  };
  testing::Cluster c(co);  // no --enable_fault_injection: the fault layer is off
  ASSERT_TRUE(c.StartAll().ok());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int l = *leader;
  auto before = c.Status(l);
  ASSERT_TRUE(before.ok()) << before.status();
  testing::TestClient client(&c);
  ASSERT_TRUE(client.Put("before", "1").ok());

  for (int id = 1; id <= 3; ++id) {
    if (id != l) {
      ASSERT_TRUE((*net)->Cut(l, id).ok());
    }
  }
  // The other two elect one of them, in a later term, without the old leader.
  int next = 0;
  std::string seen;
  EXPECT_TRUE(testing::Cluster::WaitFor(
      [&] {
        std::vector<adminpb::StatusResponse> others;
        seen.clear();
        for (int id = 1; id <= 3; ++id) {
          if (id == l) continue;
          auto s = c.Status(id);
          if (!s.ok()) return false;
          absl::StrAppend(&seen, "node ", id, " ", s->role(), " term ", s->term(), " leader ",
                          s->leader_id(), "; ");
          others.push_back(*s);
        }
        for (const auto& s : others) {
          if (s.role() != "leader" || s.term() <= before->term()) continue;
          bool agreed = true;
          for (const auto& o : others) agreed &= o.leader_id() == s.node_id() && o.term() == s.term();
          if (agreed) next = static_cast<int>(s.node_id());
          return agreed;
        }
        return false;
      },
      absl::Seconds(15)))
      << "no new leader among the others: the routes did not cut the leader off; " << seen;
  ASSERT_NE(next, 0);
  // The majority commits; the old leader (still reachable by clients on the
  // bridge) does not get the write.
  client.set_preferred(next);
  auto put = client.Put("during", "2", absl::Seconds(10));
  ASSERT_TRUE(put.ok()) << put.status();
  auto old = c.Status(l);
  ASSERT_TRUE(old.ok()) << "the cut-off node must still answer clients: " << old.status();
  // Its own log may grow (a leader's internal entries before it steps
  // down), but it cannot have learned the commit of the new entry.
  EXPECT_LT(old->commit_index(), put->version()) << "the cut-off node got the new entry";
  {
    kvpb::GetRequest req;
    req.set_key("during");
    req.set_serializable(true);
    kvpb::GetResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::Status s = c.kv(l)->Get(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_FALSE(resp.found()) << "the cut-off node has the new write";
  }
  {
    kvpb::PutRequest req;
    req.set_key("cut-off");
    req.set_value("3");
    kvpb::PutResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    EXPECT_FALSE(c.kv(l)->Put(&ctx, req, &resp).ok()) << "the cut-off node committed a write";
  }

  ASSERT_TRUE((*net)->HealAll().ok());
  auto conv = c.WaitForConvergence();
  ASSERT_TRUE(conv.ok()) << conv.status();
  auto data = c.ScanAll(l, /*serializable=*/true);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->count("during"), 1u) << "the healed node did not catch up";
}

// (nodes, seed, snapshot transfers that must be cut mid-way): seeds picked
// for their schedules: n3 seed 8 and n5 seed 8 are mostly partitions (some
// held together with a kill), n3 seed 2 cuts snapshot transfers by routes
// and by SIGKILL.
class NetnsFaultTest : public ::testing::TestWithParam<std::tuple<int, uint64_t, int>> {};

TEST_P(NetnsFaultTest, SeededRunIsLinearizableAndConverges) {
  SKIP_WITHOUT_NETNS();
  RunOptions o;
  o.nodes = std::get<0>(GetParam());
  o.seed = std::get<1>(GetParam());
  o.length = absl::Seconds(12);
  o.netns = true;
  o.kinds = {FaultKind::kIsolateLeader, FaultKind::kSplit, FaultKind::kBridge,
             FaultKind::kKillLeader,    FaultKind::kPause, FaultKind::kCutSnapshot};
  o.progress = [](const std::string& line) { std::cerr << line << std::endl; };
  RunResult r = RunOnce(o);
  std::cerr << "netns nodes " << o.nodes << " seed " << o.seed << ": " << r.Summary()
            << std::endl;
  EXPECT_TRUE(r.status.ok()) << r.status << "\nall failures:\n"
                             << absl::StrJoin(r.failures, "\n") << "\nartifacts: " << r.artifacts
                             << "\nreplay: " << r.replay;
  EXPECT_GT(r.ok, 100u) << "too few operations succeeded to mean anything";
  EXPECT_GT(r.faults, 2);
  EXPECT_GE(r.snapshot_cuts, std::get<2>(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Seeds, NetnsFaultTest,
                         ::testing::Values(std::make_tuple(3, uint64_t{8}, 0),
                                           std::make_tuple(5, uint64_t{8}, 0),
                                           std::make_tuple(3, uint64_t{2}, 1)),
                         [](const auto& info) {
                           return absl::StrCat("n", std::get<0>(info.param), "_seed",
                                               std::get<1>(info.param));
                         });

}  // namespace
}  // namespace raftkv::jepsen

int main(int argc, char** argv) {
  // First, before gtest or gRPC start any thread (see netns.h). A failure
  // is reported by each test as a skip.
  absl::Status net = raftkv::jepsen::EnterPrivateNetns();
  ::testing::InitGoogleTest(&argc, argv);
  if (!net.ok()) std::cerr << "netns: " << net.message() << std::endl;
  return RUN_ALL_TESTS();
}
