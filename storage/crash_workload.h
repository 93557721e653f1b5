// A deterministic stream of LogStore writes and an in-memory model of the
// state each prefix of it produces, for crash testing (crash_test.cc).
//
// A child process runs Workload(initial, seed) against a LogStore and reports
// how many ops completed; the parent, SIGKILLing it at a random moment, replays
// the same Workload on the model alone and checks that the recovered store
// equals the model after the reported count of ops or after one more (the op
// in flight may or may not have become durable), never anything else.
//
// Not thread-safe; test-only.
#ifndef RAFTKV_STORAGE_CRASH_WORKLOAD_H_
#define RAFTKV_STORAGE_CRASH_WORKLOAD_H_

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/raft.pb.h"
#include "storage/data_batch.h"
#include "storage/log_store.h"

namespace raftkv::storage::crash {

// The keys of `data` the workload touches (and ReadState reads).
inline constexpr int kNumKeys = 16;
std::string KeyName(int i);

// The payload of the entry at (index, term): its size and bytes are a
// function of both, so a recovered entry can be checked byte for byte.
std::string Payload(uint64_t index, uint64_t term);

struct ModelState {
  uint64_t snapshot_index = 0;
  uint64_t snapshot_term = 0;
  std::map<uint64_t, uint64_t> terms;  // index -> term, snapshot_index+1..last
  raftpb::HardState hard_state;
  uint64_t applied_index = 0;
  std::map<std::string, std::string> data;

  uint64_t LastIndex() const;
  uint64_t LastTerm() const;
  uint64_t TermAt(uint64_t index) const;  // REQUIRES: in [snapshot, last]
  bool operator==(const ModelState& o) const;
  std::string Summary() const;
};

// What differs between a and b ("" if equal).
std::string Diff(const ModelState& a, const ModelState& b);

// Reads everything the workload can write from `store`, checking each
// entry's payload and that the log has no holes. REQUIRES: only Workload ops
// (and Bootstrap) wrote to the store.
absl::StatusOr<ModelState> ReadState(const LogStore& store);

struct Op {
  enum class Kind { kAppend, kApply, kCompact, kSnapshot };
  Kind kind = Kind::kAppend;
  std::vector<raftpb::Entry> entries;  // kAppend
  bool has_hard_state = false;         // kAppend
  raftpb::HardState hard_state;        // kAppend
  DataBatch changes;                   // kApply; kSnapshot: the image
  uint64_t index = 0;                  // kApply/kCompact/kSnapshot
  uint64_t term = 0;                   // kCompact/kSnapshot
};

// Performs `op` on `store` (one synced write).
absl::Status Execute(const Op& op, LogStore* store);

class Workload {
 public:
  Workload(ModelState initial, uint64_t seed);

  // The next op, valid for the current model state; also applies it to the
  // model. The sequence depends only on the initial state and the seed.
  Op Next();

  const ModelState& state() const { return model_; }

 private:
  uint64_t Uniform(uint64_t lo, uint64_t hi);  // in [lo, hi]
  bool Chance(int percent);
  Op NextAppend();
  Op NextConflictingAppend();
  Op NextApply();
  Op NextCompact();
  Op NextSnapshot();

  std::mt19937_64 rng_;
  ModelState model_;
};

}  // namespace raftkv::storage::crash

#endif  // RAFTKV_STORAGE_CRASH_WORKLOAD_H_
