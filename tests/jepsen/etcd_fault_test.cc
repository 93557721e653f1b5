// CI fault-injection runs through etcd's API (runner.h, the etcd-API mode):
// clients speak etcd's KV service (Put, Range, DeleteRange, Txn) to any
// member, followers forwarding writes to the leader, while the nemesis
// kills, pauses, partitions and replaces nodes; the history must be
// linearizable (version = mod_revision), replicas identical, the cluster
// serving again. A failing seed leaves its artifacts under test.outputs and
// prints the command that replays it (tools/torture --api=etcd ...).
//
// PlantedStaleReadsAreCaught: the etcd pipeline must also see stale reads
// recorded as linearizable, or a pass proves nothing.
#include <iostream>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/jepsen/runner.h"

namespace raftkv::jepsen {
namespace {

void Progress(const std::string& line) { std::cerr << line << std::endl; }

void ExpectPass(const RunOptions& o, const RunResult& r) {
  std::cerr << "etcd API, nodes " << o.nodes << " seed " << o.seed << ": " << r.Summary() << "; "
            << r.member_reads << " member reads" << std::endl;
  EXPECT_TRUE(r.status.ok()) << r.status << "\nall failures:\n"
                             << absl::StrJoin(r.failures, "\n") << "\nartifacts: " << r.artifacts
                             << "\nreplay: " << r.replay;
  EXPECT_GT(r.ok, 100u) << "too few operations succeeded to mean anything";
  EXPECT_GT(r.member_reads, 50u) << "too few reads answered by the member they were sent to";
  EXPECT_GT(r.faults, 3);
}

class EtcdFaultTest : public ::testing::TestWithParam<std::tuple<int, uint64_t>> {};

// Default faults: kills, pauses, leader isolation, splits, bridges, loss,
// delay, transfers, replaced members, cut snapshot transfers.
TEST_P(EtcdFaultTest, SeededRunIsLinearizableAndConverges) {
  RunOptions o;
  o.api = RunOptions::Api::kEtcd;
  o.nodes = std::get<0>(GetParam());
  o.seed = std::get<1>(GetParam());
  o.length = absl::Seconds(15);
  o.progress = Progress;
  ExpectPass(o, RunOnce(o));
}

INSTANTIATE_TEST_SUITE_P(Seeds, EtcdFaultTest,
                         ::testing::Values(std::make_tuple(3, uint64_t{1}),
                                           std::make_tuple(5, uint64_t{2})),
                         [](const auto& info) {
                           return absl::StrCat("n", std::get<0>(info.param), "_seed",
                                               std::get<1>(info.param));
                         });

// Faults aimed at the leader, where a follower's forwarded write is most
// likely to have its answer lost (leader changed, timed out).
TEST(EtcdLeaderFaultTest, LeaderFaultsWithForwardedWrites) {
  RunOptions o;
  o.api = RunOptions::Api::kEtcd;
  o.nodes = 3;
  o.seed = 4;
  o.length = absl::Seconds(15);
  o.kinds = {FaultKind::kKillLeader, FaultKind::kPauseLeader, FaultKind::kIsolateLeader,
             FaultKind::kTransferLeader, FaultKind::kSplit};
  o.progress = Progress;
  ExpectPass(o, RunOnce(o));
}

TEST(EtcdPlantedBugTest, PlantedStaleReadsAreCaught) {
  RunOptions o;
  o.api = RunOptions::Api::kEtcd;
  o.nodes = 3;
  o.seed = 1;
  o.length = absl::Seconds(8);
  o.planted_stale_reads = true;
  o.kinds = {FaultKind::kIsolateLeader, FaultKind::kSplit};
  o.progress = Progress;
  RunResult r = RunOnce(o);
  std::cerr << "etcd API, planted: " << r.Summary() << std::endl;
  EXPECT_FALSE(r.linearizable) << "stale reads went unnoticed: " << r.check.Report();
  EXPECT_FALSE(r.status.ok());
}

}  // namespace
}  // namespace raftkv::jepsen
