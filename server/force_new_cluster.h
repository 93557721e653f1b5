// ForceNewCluster: server --force_new_cluster's rewrite of a survivor's
// store (raft/force_new_cluster.h), done at start before the core and the
// state machine open: one synced LogStore::Append that replaces the entries
// past the commit index with the removal of every other member, in a new
// term, and commits them. The store's durable mark (storage/durable_mark.h)
// is lowered by Append before the dropped entries go, so the store opens
// again afterwards, with or without the flag. The state machine applies the
// removals on start like any other (addresses and incarnation records of
// the removed members dropped), so their ids may join again as fresh nodes.
//
// REQUIRES: nothing else uses `store` meanwhile (no core, no apply thread).
#ifndef RAFTKV_SERVER_FORCE_NEW_CLUSTER_H_
#define RAFTKV_SERVER_FORCE_NEW_CLUSTER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "raft/force_new_cluster.h"
#include "storage/log_store.h"

namespace raftkv::server {

// Rewrites `store` for node `self`; returns what was done. The errors of
// raft::PlanForceNewCluster and of the write.
absl::StatusOr<raft::ForcedLog> ForceNewCluster(storage::LogStore* store, uint64_t self);

// The log line: what was kept, what was dropped, what is lost.
std::string DescribeForcedLog(const raft::ForcedLog& forced, uint64_t self);

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_FORCE_NEW_CLUSTER_H_
