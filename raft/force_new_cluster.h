// ForceNewCluster: the log rewrite that makes one surviving member of a
// cluster that lost its majority a single-member cluster (etcd's
// --force-new-cluster). Pure: it reads the log and returns what to write;
// the caller persists it (LogStore::Append) before the core starts.
//
// The rewrite keeps every entry at or below the commit index (the highest
// of the hard state's commit and the applied index: the commit index alone
// is written unsynced, so it may lag what was applied) and replaces the
// entries past it, which this node never learned were committed, with one
// CONF_REMOVE_NODE entry per other member of the membership as of that
// commit index (learners first), each with its resulting membership, ending
// with {voters: [self]}; with no other member, one empty entry instead. The
// new entries are in a new term, one above any term the hard state or log
// held, and the hard state commits them: with a single voter they are
// committed by definition, so the node applies them on start (the state
// machine then drops the removed members' addresses and incarnation records
// as for any removal) and later starts, with or without the flag, replay
// the same single-member membership from the log.
#ifndef RAFTKV_RAFT_FORCE_NEW_CLUSTER_H_
#define RAFTKV_RAFT_FORCE_NEW_CLUSTER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/raft.pb.h"
#include "raft/log_reader.h"

namespace raftkv::raft {

struct ForcedLog {
  // To append after index `commit` (replacing the entries past it), with
  // `hard_state`, in one write.
  std::vector<raftpb::Entry> entries;
  raftpb::HardState hard_state;
  uint64_t commit = 0;          // the last entry kept as it was
  uint64_t dropped = 0;         // entries past `commit` discarded
  raftpb::ConfState old_conf;   // the membership as of `commit`
};

// The rewrite of `log` for node `self`, whose applied index is `applied`.
// FailedPrecondition if `self` is not a voter of the membership as of the
// commit index, or the log is empty and was never bootstrapped with a
// membership; the log's own read errors.
absl::StatusOr<ForcedLog> PlanForceNewCluster(const LogReader& log, uint64_t self,
                                              uint64_t applied);

}  // namespace raftkv::raft

#endif  // RAFTKV_RAFT_FORCE_NEW_CLUSTER_H_
