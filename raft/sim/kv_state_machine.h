// KvStateMachine: the simulator's replicated state machine.
//
// A tiny key-value map plus everything the harness needs to check it: the
// index it has applied, a hash chained over every applied entry (two nodes
// at one index hold the same chain hash iff they applied the same entries),
// and the membership as of `applied` (needed as the ConfState of a snapshot
// taken at that index).
//
// Commands are "key=value" (ENTRY_NORMAL; empty data is a leader's no-op).
// Conf changes are applied to the membership exactly as the core does:
// invalid ones are skipped.
//
// Durability model (see simulator.h): the state machine is persisted
// atomically with its applied index at every apply, so it survives crashes.
#ifndef RAFTKV_RAFT_SIM_KV_STATE_MACHINE_H_
#define RAFTKV_RAFT_SIM_KV_STATE_MACHINE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/raft.pb.h"

namespace raftkv::raft::sim {

// 64-bit FNV-1a followed by a finalizer (deterministic across runs).
uint64_t HashBytes(absl::string_view s, uint64_t seed = 0);
uint64_t Mix(uint64_t a, uint64_t b);
// Hash of an entry's term, type and data (not its index).
uint64_t EntryHash(const raftpb::Entry& e);

class KvStateMachine {
 public:
  KvStateMachine() = default;
  explicit KvStateMachine(raftpb::ConfState initial) : conf_(std::move(initial)) {}

  // Applies the next entry. Error (and no change) if e.index() != applied()+1.
  absl::Status Apply(const raftpb::Entry& e);

  // The snapshot image, and its inverse.
  std::string Serialize() const;
  static absl::StatusOr<KvStateMachine> Parse(absl::string_view data);

  uint64_t applied() const { return applied_; }
  uint64_t chain() const { return chain_; }
  const raftpb::ConfState& conf() const { return conf_; }
  std::optional<std::string> Get(const std::string& key) const;

  static std::string EncodePut(const std::string& key, const std::string& value);
  // False for anything that is not a put (no-ops).
  static bool DecodePut(absl::string_view data, std::string* key, std::string* value);

 private:
  uint64_t applied_ = 0;
  uint64_t chain_ = 0;
  raftpb::ConfState conf_;
  std::map<std::string, std::string> kv_;
};

}  // namespace raftkv::raft::sim

#endif  // RAFTKV_RAFT_SIM_KV_STATE_MACHINE_H_
