// Hostile peers (hostile_peer.h) in the simulator: their messages, stepped
// into live nodes of 3- and 5-node clusters between the usual faults, never
// crash a node; those it must refuse change nothing; every safety property
// of the SafetyChecker holds and the cluster stays live.
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "gtest/gtest.h"
#include "raft/sim/simulator.h"

namespace raftkv::raft::sim {
namespace {

const Options* g_running = nullptr;
void OnFatal() {
  if (g_running != nullptr) {
    std::cerr << "\n*** CHECK failure in seed " << g_running->seed
              << "; replay: " << ReplayCommand(*g_running) << "\n";
  }
  abort();
}
const bool kInit = [] {
  FLAGS_minloglevel = 2;  // refusals are logged at WARNING
  google::InstallFailureFunction(&OnFatal);
  return true;
}();

struct Block {
  int nodes;
  int seeds;
  bool async_writes;
};

class HostilePeerTest : public ::testing::TestWithParam<Block> {};

TEST_P(HostilePeerTest, NothingBreaks) {
  const Block b = GetParam();
  uint64_t hostile = 0, refused = 0;
  for (uint64_t seed = 1; seed <= static_cast<uint64_t>(b.seeds); ++seed) {
    Options o;
    o.seed = seed;
    o.nodes = b.nodes;
    o.steps = 300;
    o.async_writes = b.async_writes;
    o.hostile = 0.3;
    g_running = &o;
    const Result r = RunSimulation(o);
    g_running = nullptr;
    hostile += r.hostile;
    refused += r.hostile_refused;
    EXPECT_TRUE(r.ok) << "seed " << seed << ", step " << r.violation_step << ": "
                      << r.violation << "\n  " << Summary(r) << "\n  replay: "
                      << ReplayCommand(o);
  }
  std::cout << b.seeds << " seeds of " << b.nodes << " nodes"
            << (b.async_writes ? " (async writes)" : "") << ": " << hostile
            << " hostile messages, " << refused << " of them refused\n";
  EXPECT_GT(refused, 20u * b.seeds);
  EXPECT_LT(refused, hostile) << "harmless ones too";
}

INSTANTIATE_TEST_SUITE_P(Clusters, HostilePeerTest,
                         ::testing::Values(Block{3, 200, false}, Block{5, 60, false},
                                           Block{3, 100, true}),
                         [](const ::testing::TestParamInfo<Block>& info) {
                           return absl::StrCat(info.param.async_writes ? "async_" : "",
                                               info.param.nodes, "nodes");
                         });

}  // namespace
}  // namespace raftkv::raft::sim
