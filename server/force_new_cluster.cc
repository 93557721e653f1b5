#include "server/force_new_cluster.h"

#include "absl/strings/str_cat.h"
#include "raft/membership.h"

namespace raftkv::server {

absl::StatusOr<raft::ForcedLog> ForceNewCluster(storage::LogStore* store, uint64_t self) {
  absl::StatusOr<raft::ForcedLog> forced =
      raft::PlanForceNewCluster(*store, self, store->applied_index());
  if (!forced.ok()) return forced.status();
  if (absl::Status s = store->Append(forced->entries, &forced->hard_state); !s.ok()) return s;
  return forced;
}

std::string DescribeForcedLog(const raft::ForcedLog& forced, uint64_t self) {
  return absl::StrCat(
      "--force_new_cluster: node ", self, " is now the only member of its cluster (was ",
      raft::ConfStateString(forced.old_conf), "), in term ", forced.hard_state.term(),
      ". Kept its log through its commit index ", forced.commit, "; dropped ", forced.dropped,
      forced.dropped == 1 ? " entry" : " entries",
      " past it (never known committed here). Writes this node had "
      "not received, or not seen committed, are gone. Add members back with --join (or kvctl "
      "member add), and start this node without the flag from now on");
}

}  // namespace raftkv::server
