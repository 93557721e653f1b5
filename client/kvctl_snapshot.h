// kvctl snapshot save / status: the client's side of a backup (the file
// format is server/backup_file.h; restore is server/backup_restore.h).
#ifndef RAFTKV_CLIENT_KVCTL_SNAPSHOT_H_
#define RAFTKV_CLIENT_KVCTL_SNAPSHOT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "server/backup_file.h"

namespace raftkv::kvctl {

struct SavedBackup {
  server::BackupInfo info;  // as verified on disk
  absl::Duration elapsed;
};

// Streams a backup from the member at `endpoint` (Admin.Snapshot, read at
// `bytes_per_sec`, 0: the member's default) into "<path>.part", syncs it,
// verifies it (VerifyBackup) and renames it to `path` (replacing an older
// file only then), syncing the directory. On any error the partial file is
// removed and `path` is left as it was. `timeout` bounds reaching the
// member and every wait for the stream's next chunk: a member that sends
// nothing for that long fails the save (DEADLINE_EXCEEDED), so a hung
// member never hangs the caller; a slow but moving stream runs until done.
// `credentials`: the channel's (client/tls_credentials.h).
absl::StatusOr<SavedBackup> SaveBackup(const std::string& endpoint,
                                       std::shared_ptr<grpc::ChannelCredentials> credentials,
                                       const std::string& path, uint64_t bytes_per_sec,
                                       absl::Duration timeout);

// The header and trailer of a verified backup: "name: value" lines, or one
// JSON object (`json`), each ending in a newline.
std::string DescribeBackup(const server::BackupInfo& info, bool json);

}  // namespace raftkv::kvctl

#endif  // RAFTKV_CLIENT_KVCTL_SNAPSHOT_H_
