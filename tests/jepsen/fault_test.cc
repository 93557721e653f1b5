// CI fault-injection runs: a fixed set of seeds on 3- and 5-node clusters,
// each a RunOnce (runner.h) that must pass all four checks. A failing seed
// leaves its history, fault log and node logs under test.outputs and prints
// the command that replays it (tools/torture ...).
//
// Every default run includes cut-snapshot faults; SnapshotCutTest must see
// at least one transfer really cut mid-way.
//
// TlsFaultTest runs a default-like schedule with client and peer mutual
// TLS on every node and client.
//
// PlantedStaleReadsAreCaught runs the same pipeline with reads sent to any
// node as serializable reads but recorded as linearizable ones, and a
// schedule of partitions only: the checker must call that history NOT
// linearizable, or the whole machine proves nothing.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
#include "tests/cluster_harness.h"
#include "tests/jepsen/runner.h"

namespace raftkv::jepsen {
namespace {

void Progress(const std::string& line) { std::cerr << line << std::endl; }

class FaultTest : public ::testing::TestWithParam<std::tuple<int, uint64_t>> {};

TEST_P(FaultTest, SeededRunIsLinearizableAndConverges) {
  RunOptions o;
  o.nodes = std::get<0>(GetParam());
  o.seed = std::get<1>(GetParam());
  o.length = absl::Seconds(15);
  o.progress = Progress;
  RunResult r = RunOnce(o);
  std::cerr << "nodes " << o.nodes << " seed " << o.seed << ": " << r.Summary() << std::endl;
  EXPECT_TRUE(r.status.ok()) << r.status << "\nall failures:\n"
                             << absl::StrJoin(r.failures, "\n") << "\nartifacts: " << r.artifacts
                             << "\nreplay: " << r.replay;
  EXPECT_GT(r.ok, 100u) << "too few operations succeeded to mean anything";
  EXPECT_GT(r.faults, 3);
}

INSTANTIATE_TEST_SUITE_P(Seeds, FaultTest,
                         ::testing::Values(std::make_tuple(3, uint64_t{1}),
                                           std::make_tuple(3, uint64_t{2}),
                                           std::make_tuple(3, uint64_t{3}),
                                           std::make_tuple(5, uint64_t{1}),
                                           std::make_tuple(5, uint64_t{2})),
                         [](const auto& info) {
                           return absl::StrCat("n", std::get<0>(info.param), "_seed",
                                               std::get<1>(info.param));
                         });

// Leader leases (--lease_reads) under faults that hit the leader: a paused
// or cut-off leader must not serve reads from an expired lease.
TEST(LeaseReadsTest, LeaderFaultsWithLeaseReads) {
  RunOptions o;
  o.nodes = 3;
  o.seed = 4;
  o.length = absl::Seconds(15);
  o.server_flags = {"--lease_reads"};
  o.kinds = {FaultKind::kPauseLeader, FaultKind::kIsolateLeader, FaultKind::kKillLeader,
             FaultKind::kDelay, FaultKind::kTransferLeader};
  o.progress = Progress;
  RunResult r = RunOnce(o);
  std::cerr << "lease reads: " << r.Summary() << std::endl;
  EXPECT_TRUE(r.status.ok()) << r.status << "\nartifacts: " << r.artifacts
                             << "\nreplay: " << r.replay;
}

// Snapshot transfers cut mid-way on purpose (cut-snapshot: SIGKILL of the
// receiver or the sender once the follower is receiving): at least one must
// really be caught in progress, and the run must still pass every check.
TEST(SnapshotCutTest, TransfersCutMidWayAndRunPasses) {
  RunOptions o;
  o.nodes = 3;
  o.seed = 5;  // four cut-snapshot faults scheduled, three by SIGKILL
  o.length = absl::Seconds(15);
  o.kinds = {FaultKind::kCutSnapshot, FaultKind::kKill, FaultKind::kSplit, FaultKind::kDelay};
  o.progress = Progress;
  RunResult r = RunOnce(o);
  std::cerr << "snapshot cuts: " << r.Summary() << std::endl;
  EXPECT_TRUE(r.status.ok()) << r.status << "\nartifacts: " << r.artifacts
                             << "\nreplay: " << r.replay;
  EXPECT_GE(r.snapshot_cuts, 1) << "no snapshot transfer was caught and cut mid-way";
}

// The fault run with client and peer mutual TLS (issue 23): every member
// and every client of the run (the client library, the per-member stubs,
// the nemesis's admin calls) presents a certificate from tools/make_certs.
// Seed 4's schedule has leader kills, pauses and isolation, splits, a
// leadership transfer, members replaced (the spare joins over TLS) and a
// snapshot transfer cut mid-way.
TEST(TlsFaultTest, MutualTlsRunIsLinearizableAndConverges) {
  const std::string certs = absl::StrCat(std::getenv("TEST_TMPDIR"), "/fault-certs");
  ASSERT_EQ(std::system(absl::StrCat("tools/make_certs ", certs, " node client").c_str()), 0);
  RunOptions o;
  o.nodes = 3;
  o.seed = 4;
  o.length = absl::Seconds(15);
  o.tls_dir = certs;
  o.kinds = {FaultKind::kKillLeader,     FaultKind::kIsolateLeader, FaultKind::kSplit,
             FaultKind::kPauseLeader,    FaultKind::kTransferLeader, FaultKind::kReplace,
             FaultKind::kCutSnapshot};
  o.progress = Progress;
  RunResult r = RunOnce(o);
  std::cerr << "mutual TLS: " << r.Summary() << "; " << r.member_reads << " member reads"
            << std::endl;
  EXPECT_TRUE(r.status.ok()) << r.status << "\nall failures:\n"
                             << absl::StrJoin(r.failures, "\n") << "\nartifacts: " << r.artifacts
                             << "\nreplay: " << r.replay;
  EXPECT_GT(r.ok, 100u) << "too few operations succeeded to mean anything";
  // Failed reads are unknown and prove nothing: the per-member stubs must
  // get through the TLS handshake too.
  EXPECT_GT(r.member_reads, 50u);
  EXPECT_GT(r.faults, 3);
}

grpc::Status SetFaults(testing::Cluster& c, int node, const std::vector<int>& blocked,
                       adminpb::SetFaultsResponse* resp) {
  adminpb::SetFaultsRequest req;
  for (int peer : blocked) {
    adminpb::PeerFault* f = req.add_faults();
    f->set_peer_id(peer);
    f->set_blocked(true);
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return c.admin(node)->SetFaults(&ctx, req, resp);
}

TEST(FaultLayerTest, SetFaultsRefusedUnlessEnabledAtStart) {
  testing::ClusterOptions co;
  co.size = 1;
  testing::Cluster c(co);
  ASSERT_TRUE(c.StartAll().ok());
  ASSERT_TRUE(c.WaitForLeader().ok());
  adminpb::SetFaultsResponse resp;
  grpc::Status s = SetFaults(c, 1, {2}, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_NE(s.error_message().find("--enable_fault_injection"), std::string::npos);

  c.Kill(1);
  ASSERT_TRUE(c.Start(1, {"--enable_fault_injection"}).ok());
  ASSERT_TRUE(testing::Cluster::WaitFor([&] { return SetFaults(c, 1, {2}, &resp).ok(); },
                                        absl::Seconds(10)));
  ASSERT_EQ(resp.faults_size(), 1);
  EXPECT_TRUE(resp.faults(0).blocked());
  EXPECT_GT(resp.pid(), 0);
  EXPECT_EQ(SetFaults(c, 1, {1}, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Blocking both directions between a follower and the rest cuts it off: it
// falls behind while the others commit, and catches up once healed.
TEST(FaultLayerTest, BlockedLinksPartitionAFollower) {
  testing::ClusterOptions co;
  co.extra_flags = {"--enable_fault_injection"};
  testing::Cluster c(co);
  ASSERT_TRUE(c.StartAll().ok());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int f = *leader % 3 + 1;
  std::vector<int> others;
  for (int id = 1; id <= 3; ++id) {
    if (id != f) others.push_back(id);
  }
  adminpb::SetFaultsResponse resp;
  ASSERT_TRUE(SetFaults(c, f, others, &resp).ok());
  for (int o : others) ASSERT_TRUE(SetFaults(c, o, {f}, &resp).ok());
  auto before = c.Status(f);
  ASSERT_TRUE(before.ok());
  testing::TestClient client(&c);
  client.set_preferred(*leader);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(client.Put(absl::StrCat("p", i), "v").ok());
  // Status is refreshed every tick: wait for the leader's to show the writes.
  EXPECT_TRUE(testing::Cluster::WaitFor(
      [&] {
        auto l = c.Status(*leader);
        return l.ok() && l->commit_index() >= before->last_index() + 19;
      },
      absl::Seconds(5)));
  auto cut = c.Status(f);
  ASSERT_TRUE(cut.ok());
  // (A message already queued when the block began may still arrive.)
  EXPECT_LE(cut->last_index(), before->last_index() + 1) << "the cut-off follower got entries";
  for (int id = 1; id <= 3; ++id) ASSERT_TRUE(SetFaults(c, id, {}, &resp).ok());
  auto conv = c.WaitForConvergence();
  EXPECT_TRUE(conv.ok()) << conv.status();
}

TEST(PlantedBugTest, PlantedStaleReadsAreCaught) {
  RunOptions o;
  o.nodes = 3;
  o.seed = 1;
  o.length = absl::Seconds(8);
  o.planted_stale_reads = true;
  o.kinds = {FaultKind::kIsolateLeader, FaultKind::kSplit};
  o.progress = Progress;
  RunResult r = RunOnce(o);
  std::cerr << "planted: " << r.Summary() << std::endl;
  EXPECT_FALSE(r.linearizable) << "stale reads went unnoticed: " << r.check.Report();
  EXPECT_FALSE(r.status.ok());
}

}  // namespace
}  // namespace raftkv::jepsen
