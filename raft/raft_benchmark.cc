// Committed proposals per second through a 3-node in-memory cluster of the
// core (no disk, no network): the ceiling the core itself puts on a node.
//
//   bazel run -c opt //raft:raft_benchmark
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "glog/logging.h"
#include "raft/test_cluster.h"

namespace raftkv::raft {
namespace {

void BM_CommitThroughThreeNodes(benchmark::State& state) {
  const int batch_size = static_cast<int>(state.range(0));
  TestCluster c(3);
  const uint64_t leader = c.ElectLeader();
  CHECK_NE(leader, 0u);
  std::vector<std::string> batch(batch_size, std::string(256, 'v'));
  const uint64_t start = c.raft(leader).log().committed();
  for (auto _ : state) {
    auto ids = c.raft(leader).Propose(batch);
    CHECK(ids.ok()) << ids.status();
    c.Stabilize();
    CHECK_EQ(c.raft(leader).log().committed(), ids->back().index);
  }
  const uint64_t committed = c.raft(leader).log().committed() - start;
  state.SetItemsProcessed(static_cast<int64_t>(committed));
  state.counters["proposals/batch"] = batch_size;
}
BENCHMARK(BM_CommitThroughThreeNodes)->Arg(1)->Arg(64);

}  // namespace
}  // namespace raftkv::raft

int main(int argc, char** argv) {
  FLAGS_minloglevel = 1;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
