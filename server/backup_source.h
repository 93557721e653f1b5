// StreamBackup: a member's side of `kvctl snapshot save`. Takes a RocksDB
// snapshot of the state machine's data (storage::DataSnapshot: writes go on,
// never waiting for it) and streams it as a backup file
// (server/backup_file.h) in chunks, reading at a bounded rate.
//
// Thread safety: any thread; several may stream at once.
#ifndef RAFTKV_SERVER_BACKUP_SOURCE_H_
#define RAFTKV_SERVER_BACKUP_SOURCE_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "server/state_machine.h"

namespace raftkv::server {

struct BackupSourceOptions {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  // Read rate of the scan (storage/byte_pacer.h); 0: unthrottled.
  uint64_t bytes_per_sec = 64 << 20;
  // Bytes per chunk handed to the sink (the last one may be shorter).
  size_t chunk_bytes = 1 << 20;
  // Pads the backup (with one record a restore drops, KvStateMachine::
  // kBackupPaddingKey) to a size of 32 modulo 512 bytes: `etcdctl snapshot
  // save` refuses a file of another size (etcd's is bbolt pages plus their
  // SHA-256; a backup too ends with the SHA-256 of all before it).
  bool etcd_size = false;

  // OK, or InvalidArgument naming the field.
  absl::Status Validate() const;
};

struct BackupSummary {
  uint64_t applied_index = 0;
  uint64_t term = 0;
  uint64_t records = 0;
  uint64_t keys = 0;
  uint64_t bytes = 0;
};

// Streams the state of `sm` as of one applied index to `sink`, which
// returns false when the receiver is gone (then Cancelled). A storage error
// (DataLoss for corruption) ends the stream with it: the receiver never
// gets a trailer, so never a file that verifies.
absl::StatusOr<BackupSummary> StreamBackup(const KvStateMachine& sm,
                                           const BackupSourceOptions& options,
                                           const std::function<bool(std::string chunk)>& sink);

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_BACKUP_SOURCE_H_
