// CI runs of the Raft simulator (simulator.h): thousands of seeds of 3- and
// 5-node clusters, with synchronous and with asynchronous storage writes, the
// planted Figure 8 bug found and its absence confirmed, and determinism. A
// failing seed prints the command that replays it.
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "gtest/gtest.h"
#include "raft/sim/simulator.h"

namespace raftkv::raft::sim {
namespace {

constexpr int kSteps = 300;        // per seed
constexpr int kSeedsPerBlock = 100;

// A CHECK failure inside the core aborts the test: say which seed it was.
const Options* g_running = nullptr;
void OnFatal() {
  if (g_running != nullptr) {
    std::cerr << "\n*** CHECK failure in seed " << g_running->seed
              << "; replay: " << ReplayCommand(*g_running) << "\n";
  }
  abort();
}
const bool kInit = [] {
  FLAGS_minloglevel = 2;  // the core logs elections and snapshots at INFO
  google::InstallFailureFunction(&OnFatal);
  return true;
}();

Result RunSeed(const Options& o) {
  g_running = &o;
  Result r = RunSimulation(o);
  g_running = nullptr;
  return r;
}

struct Block {
  int nodes;
  uint64_t first_seed;
  bool async_writes = false;
};

class SimulationTest : public ::testing::TestWithParam<Block> {};

TEST_P(SimulationTest, SafeAndLive) {
  const Block b = GetParam();
  const int seeds = kSeedsPerBlock;
  uint64_t events = 0, applied = 0, failed = 0;
  uint64_t writes = 0, max_queued = 0, crashes_in_write = 0;
  int worst_liveness = 0;
  for (uint64_t seed = b.first_seed; seed < b.first_seed + seeds; ++seed) {
    Options o;
    o.seed = seed;
    o.nodes = b.nodes;
    o.steps = kSteps;
    o.async_writes = b.async_writes;
    const Result r = RunSeed(o);
    events += r.events;
    applied += r.applied;
    writes += r.writes;
    max_queued = std::max(max_queued, r.max_queued_writes);
    crashes_in_write += r.crashes_in_write;
    worst_liveness = std::max(worst_liveness, r.max_liveness_ticks);
    if (!r.ok) ++failed;
    EXPECT_TRUE(r.ok) << "seed " << seed << ", step " << r.violation_step << ": "
                      << r.violation << "\n  " << Summary(r) << "\n  replay: "
                      << ReplayCommand(o);
  }
  std::cout << seeds << " seeds of " << b.nodes << " nodes from " << b.first_seed
            << (b.async_writes ? " (async writes)" : "") << ": " << failed << " failed, "
            << events << " events, " << applied
            << " entries applied, worst time to commit after healing: " << worst_liveness
            << " ticks";
  if (b.async_writes) {
    std::cout << "; " << writes << " writes, queues up to " << max_queued << ", "
              << crashes_in_write << " crashes after a write";
    // The mode is exercised as claimed: writes overlap and crashes hit them.
    EXPECT_GE(max_queued, 3u);
    EXPECT_GT(crashes_in_write, 0u);
  } else {
    EXPECT_EQ(writes, 0u);
  }
  std::cout << "\n";
}

std::vector<Block> Blocks() {
  std::vector<Block> out;
  for (int k = 0; k < 15; ++k) out.push_back({3, 1 + k * kSeedsPerBlock});  // 1500 seeds
  for (int k = 0; k < 5; ++k) out.push_back({5, 1 + k * kSeedsPerBlock});   // 500 seeds
  // Config::async_storage_writes, as the server runs.
  for (int k = 0; k < 10; ++k) out.push_back({3, 1 + k * kSeedsPerBlock, true});  // 1000
  for (int k = 0; k < 4; ++k) out.push_back({5, 1 + k * kSeedsPerBlock, true});   // 400
  return out;
}

INSTANTIATE_TEST_SUITE_P(Seeds, SimulationTest, ::testing::ValuesIn(Blocks()),
                         [](const ::testing::TestParamInfo<Block>& info) {
                           return absl::StrCat(info.param.async_writes ? "async_" : "",
                                               info.param.nodes, "nodes_seed",
                                               info.param.first_seed);
                         });

// The fault mix under which the planted bug (Figure 8: committing an entry
// of an earlier term by counting replicas) shows: one entry per append, so
// that a new leader's old-term entries reach a majority before its no-op,
// and leaders cut off right after they are elected or commit.
Options PlantedBugMix(uint64_t seed, bool bug, bool async_writes = false) {
  Options o;
  o.async_writes = async_writes;
  o.seed = seed;
  o.nodes = 3;
  o.steps = 400;
  o.max_msg_bytes = 1;
  o.isolate_leader_on_event = 0.5;
  o.unsafe_commit_old_terms = bug;
  return o;
}
constexpr uint64_t kPlantedBugSeeds = 150;

TEST(PlantedBugTest, TheSimulatorFindsIt) {
  uint64_t found = 0;
  for (uint64_t seed = 1; seed <= kPlantedBugSeeds; ++seed) {
    const Options o = PlantedBugMix(seed, true);
    const Result r = RunSeed(o);
    if (r.ok) continue;
    if (found++ == 0) {
      std::cout << "planted bug first found by seed " << seed << " at step "
                << r.violation_step << ": " << r.violation << "\n  replay: "
                << ReplayCommand(o) << "\n";
    }
    // A safety property, not liveness, must be what breaks.
    EXPECT_EQ(r.violation.find("Liveness"), std::string::npos) << r.violation;
  }
  std::cout << "planted bug found by " << found << " seeds\n";
  EXPECT_GE(found, 1u);
}

// The checks do not depend on the driver writing synchronously.
TEST(PlantedBugTest, TheSimulatorFindsItWithAsyncWrites) {
  uint64_t found = 0;
  for (uint64_t seed = 1; seed <= kPlantedBugSeeds; ++seed) {
    const Options o = PlantedBugMix(seed, true, true);
    const Result r = RunSeed(o);
    if (r.ok) continue;
    ++found;
    EXPECT_EQ(r.violation.find("Liveness"), std::string::npos) << r.violation;
  }
  std::cout << "planted bug found by " << found << " seeds with async writes\n";
  EXPECT_GE(found, 1u);
}

TEST(PlantedBugTest, NoViolationWithoutIt) {
  for (uint64_t seed = 1; seed <= kPlantedBugSeeds; ++seed) {
    const Options o = PlantedBugMix(seed, false);
    const Result r = RunSeed(o);
    EXPECT_TRUE(r.ok) << "seed " << seed << ": " << r.violation
                      << "\n  replay: " << ReplayCommand(o);
  }
}

TEST(DeterminismTest, SameSeedSameRun) {
  const std::pair<int, bool> runs[] = {{3, false}, {5, false}, {3, true}};
  for (const auto& [nodes, async_writes] : runs) {
    Options o;
    o.seed = 4242;
    o.nodes = nodes;
    o.async_writes = async_writes;
    const Result a = RunSeed(o);
    const Result b = RunSeed(o);
    EXPECT_EQ(a.trace_hash, b.trace_hash);
    EXPECT_EQ(Summary(a), Summary(b));
    o.seed = 4243;
    EXPECT_NE(RunSeed(o).trace_hash, a.trace_hash);
  }
}

}  // namespace
}  // namespace raftkv::raft::sim
