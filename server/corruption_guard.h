// CorruptionGuard: what a node does once its data proves corrupt (a read, a
// snapshot stream or the scrub met a block whose checksum fails, or an
// undecodable record): it raises the CORRUPT alarm with the first such
// error as the reason (logged once, loudly), and from then on refuses every
// KV read, which it can no longer vouch for, with DATA_LOSS; the client
// library then reads from another member. As leader the node refuses
// writes and hands leadership over (NodeOptions::data_corrupt); Raft
// membership and Admin.Status are unaffected (see docs/INTEGRITY.md for the
// whole policy).
//
// The alarm survives restarts when Alarms::PersistCorrupt is on (the server
// stores it in the data dir): a restarted corrupt node refuses reads at once.
//
// Thread safety: every method may be called from any thread.
#ifndef RAFTKV_SERVER_CORRUPTION_GUARD_H_
#define RAFTKV_SERVER_CORRUPTION_GUARD_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/alarms.h"

namespace raftkv::server {

class CorruptionGuard {
 public:
  // `alarms` is not owned and must outlive the guard.
  CorruptionGuard(uint64_t node_id, Alarms* alarms) : node_id_(node_id), alarms_(alarms) {}

  // `s` unchanged unless it is DATA_LOSS. Then raises CORRUPT (if it is not
  // raised yet, with `s` as its reason) and returns DATA_LOSS
  // "node N: data corruption: <s>; this node no longer serves reads".
  absl::Status Check(const absl::Status& s) ABSL_LOCKS_EXCLUDED(mu_);

  // True while CORRUPT is raised. Lock-free.
  bool corrupt() const { return alarms_->Active(AlarmType::kCorrupt); }

  // OK, or while CORRUPT is raised the refusal of a read: DATA_LOSS
  // "node N does not serve reads: alarm CORRUPT: <reason>".
  absl::Status AdmitRead() const {
    if (!corrupt()) return absl::OkStatus();
    return Refusal();
  }

 private:
  absl::Status Refusal() const;

  const uint64_t node_id_;
  Alarms* const alarms_;
  absl::Mutex mu_;  // serializes raising, so the first reason stays
};

// Corruption met where the node cannot go on (applying entries, or a write
// RocksDB refuses after a compaction met a damaged block) is a disk fault,
// not a bug: if `s` is DATA_LOSS, logs one line, "node N stops: <what>:
// <s>. The data dir is damaged: ...", and exits with status 1 (no abort, no
// stack trace). Otherwise returns. `node_id` 0: "this node".
void ExitIfCorrupt(uint64_t node_id, absl::string_view what, const absl::Status& s);

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_CORRUPTION_GUARD_H_
