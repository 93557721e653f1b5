// The apply path: KvStateMachine::Apply of committed put entries (parse the
// command, check the session, read the old version, one RocksDB WriteBatch
// with the applied index), in batches of 1, 16 and 64 entries, with and
// without exactly-once sessions. Apply writes are not synced (the log is
// the durable copy), as in the server.
//
//   bazel run -c opt //server:apply_benchmark
//
// items_per_second counts entries applied. Keys: 8 bytes from a 100k key
// space; values: 256 bytes (the shape of tools/compare_etcd's put rows).
// The store lives in $RAFTKV_BENCH_DIR, else $TEST_TMPDIR, else the system
// temp directory.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "benchmark/benchmark.h"
#include "proto/kv.pb.h"
#include "proto/raft.pb.h"
#include "server/state_machine.h"
#include "storage/bench_dir.h"
#include "storage/log_store.h"

namespace raftkv::server {
namespace {

constexpr uint64_t kKeys = 100000;
constexpr size_t kValueBytes = 256;

void BM_Apply(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const bool sessions = state.range(1) != 0;
  storage::Options options;
  options.dir = storage::BenchDir(absl::StrCat("apply_bench.", batch, ".", sessions));
  std::filesystem::remove_all(options.dir);
  auto opened = storage::LogStore::Open(options);
  if (!opened.ok()) {
    state.SkipWithError(opened.status().ToString().c_str());
    return;
  }
  std::unique_ptr<storage::LogStore> store = *std::move(opened);
  auto sm = KvStateMachine::Open(store.get());
  if (!sm.ok()) {
    state.SkipWithError(sm.status().ToString().c_str());
    return;
  }

  std::mt19937_64 rng(1);
  const std::string value(kValueBytes, 'v');
  uint64_t index = 0;
  uint64_t seq = 0;
  constexpr uint64_t kClients = 64;  // sessions: 64 clients in turn
  std::vector<raftpb::Entry> entries(batch);
  for (auto _ : state) {
    state.PauseTiming();
    for (raftpb::Entry& e : entries) {
      kvpb::Command c;
      if (sessions) {
        const uint64_t client = 1 + index % kClients;
        c.mutable_header()->set_client_id(client);
        c.mutable_header()->set_seq(1 + seq / kClients);
        c.mutable_header()->set_first_incomplete(1 + seq / kClients);
        ++seq;
      }
      c.mutable_put()->set_key(absl::StrFormat("%08d", rng() % kKeys));
      c.mutable_put()->set_value(value);
      e.set_index(++index);
      e.set_term(1);
      e.set_data(c.SerializeAsString());
    }
    state.ResumeTiming();
    auto r = (*sm)->Apply(entries);
    if (!r.ok() || r->size() != entries.size()) {
      state.SkipWithError(r.ok() ? "wrong result count" : r.status().ToString().c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["batches_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Apply)
    ->ArgNames({"batch", "sessions"})
    ->ArgsProduct({{1, 16, 64}, {0, 1}})
    ->UseRealTime();

}  // namespace
}  // namespace raftkv::server
