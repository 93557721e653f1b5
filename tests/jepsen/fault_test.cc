// CI fault-injection runs: a fixed set of seeds on 3- and 5-node clusters,
// each a RunOnce (runner.h) that must pass all four checks. A failing seed
// leaves its history, fault log and node logs under test.outputs and prints
// the command that replays it (tools/torture ...).
//
// PlantedStaleReadsAreCaught runs the same pipeline with reads sent to any
// node as serializable reads but recorded as linearizable ones, and a
// schedule of partitions only: the checker must call that history NOT
// linearizable, or the whole machine proves nothing.
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
