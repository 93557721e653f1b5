// RestoreBackup: `kvctl snapshot restore` (offline). Writes a data dir from
// which `server --id=N --cluster=SPEC` starts as member N of a new cluster
// with membership SPEC (all voters) and the state of a backup
// (server/backup_file.h) as of its applied index.
//
// The restored store: an identity with a new cluster id (below), a fresh
// incarnation and restored_spec_id = ClusterIdOf(SPEC); the backup's data,
// less the old cluster's membership records (KvStateMachine::KeptOnRestore),
// installed as a snapshot at the backup's (index, term) with SPEC's
// membership; an empty log after it; hard state (term, commit) = (term,
// index). Every member restored from the same file with the same SPEC gets
// the same store except for its id and incarnation, so they start as one
// cluster, and new writes get versions above every restored one.
//
// The new cluster id is derived, deterministically, from the file's SHA-256
// and SPEC's canonical text (as etcd derives a restored cluster's from its
// --initial-cluster and token): the members agree on it without talking,
// while a member of the old cluster (whose id came from its own --cluster,
// or from another backup or membership) is refused by every restored peer.
// It never equals the backup's cluster id nor ClusterIdOf(SPEC).
//
// Thread-compatible: one restore per data dir.
#ifndef RAFTKV_SERVER_BACKUP_RESTORE_H_
#define RAFTKV_SERVER_BACKUP_RESTORE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "server/backup_file.h"
#include "server/cluster_spec.h"

namespace raftkv::server {

struct RestoreOptions {
  std::string backup_path;
  std::string data_dir;  // must not exist, or be empty
  uint64_t node_id = 0;  // one of `cluster`
  ClusterSpec cluster;   // the new cluster's members, all voters

  // OK, or InvalidArgument naming the field.
  absl::Status Validate() const;
};

struct RestoreResult {
  BackupInfo backup;
  uint64_t cluster_id = 0;  // the new cluster's
  uint64_t records = 0;     // restored (the membership records are not)
};

// Refuses, writing nothing: bad options (InvalidArgument), a data dir that
// holds anything (FailedPrecondition), a backup that does not verify
// (VerifyBackup's errors) or is at index 0. A failure while writing removes
// what it wrote.
absl::StatusOr<RestoreResult> RestoreBackup(const RestoreOptions& options);

// The new cluster id for a backup whose checksum is `sha256_hex`, taken
// from cluster `old_cluster_id`, restored as `spec`.
uint64_t RestoredClusterId(const std::string& sha256_hex, const ClusterSpec& spec,
                           uint64_t old_cluster_id);

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_BACKUP_RESTORE_H_
