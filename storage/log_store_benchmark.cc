// Append throughput of LogStore: batches of 1, 16 and 256 entries of 256
// bytes each, plus the hard state, per synced (and, for comparison, unsynced)
// write.
//
//   bazel run -c opt //storage:log_store_benchmark
//
// items_per_second counts entries; batches_per_second counts Append calls
// (one fsync each when sync=1). The store lives in $RAFTKV_BENCH_DIR, else
// $TEST_TMPDIR, else the system temp directory, on whatever disk that is.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "proto/raft.pb.h"
#include "storage/bench_dir.h"
#include "storage/log_store.h"

namespace raftkv::storage {
namespace {

constexpr size_t kEntryBytes = 256;

void BM_Append(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const bool sync = state.range(1) != 0;
  Options options;
  options.dir = BenchDir(absl::StrCat("log_store_bench.", batch, ".", sync));
  options.sync = sync;
  std::filesystem::remove_all(options.dir);
  auto opened = LogStore::Open(options);
  if (!opened.ok()) {
    state.SkipWithError(opened.status().ToString().c_str());
    return;
  }
  std::unique_ptr<LogStore> store = *std::move(opened);

  std::vector<raftpb::Entry> entries(batch);
  for (raftpb::Entry& e : entries) {
    e.set_term(1);
    e.set_data(std::string(kEntryBytes, 'x'));
  }
  raftpb::HardState hs;
  hs.set_term(1);
  hs.set_vote(1);
  uint64_t next = 1;
  for (auto _ : state) {
    for (raftpb::Entry& e : entries) e.set_index(next++);
    hs.set_commit(next - 1);
    absl::Status s = store->Append(entries, &hs);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetBytesProcessed(state.iterations() * batch * kEntryBytes);
  state.counters["batches_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
  store.reset();
  std::filesystem::remove_all(options.dir);
}

BENCHMARK(BM_Append)
    ->ArgNames({"batch", "sync"})
    ->ArgsProduct({{1, 16, 256}, {1, 0}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace raftkv::storage
