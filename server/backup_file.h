// The backup file (kvctl snapshot save / status / restore): a member's whole
// state machine as of one applied index, self-describing and checksummed.
//
// Layout (integers little-endian):
//   "RAFTKVBK"             8 bytes, the magic
//   u32 format version     kBackupFormatVersion
//   u32 H, H bytes         the header, a backuppb::BackupHeader
//   records, each          0x01, u32 key bytes, u32 value bytes, key, value
//                          (the raw pairs of the store's `data`, in key order)
//   trailer                0x00, u64 record count, u64 key count (user keys),
//                          32 bytes: SHA-256 of every byte before them
// and nothing after. The counts are in the trailer because the member only
// knows them once its scan ends; the checksum covers header and counts.
//
// Reading never trusts a length it has not checked against the file's size,
// so a damaged file costs no more memory than its largest real record.
#ifndef RAFTKV_SERVER_BACKUP_FILE_H_
#define RAFTKV_SERVER_BACKUP_FILE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/backup.pb.h"

namespace raftkv::server {

inline constexpr char kBackupMagic[] = "RAFTKVBK";  // 8 bytes, without the NUL
// 2: keys as the MVCC store keeps them (mvcc/encoding.h); 1 (raftkv before
// revisions) is not read.
inline constexpr uint32_t kBackupFormatVersion = 2;

// Produces a backup's bytes, appended to a caller-drained buffer.
// Thread-compatible.
class BackupWriter {
 public:
  // Appends the magic, version and `header` to *out. `out` is not owned and
  // must outlive the writer.
  BackupWriter(const backuppb::BackupHeader& header, std::string* out);
  ~BackupWriter();
  BackupWriter(const BackupWriter&) = delete;
  BackupWriter& operator=(const BackupWriter&) = delete;

  // Appends one record. REQUIRES: not finished; sizes below 4 GiB.
  void Add(absl::string_view key, absl::string_view value);
  // Appends the trailer: the record count, `keys` (the user keys among the
  // records, counted by the caller) and the checksum. Call once, last.
  void Finish(uint64_t keys);

  uint64_t records() const { return records_; }
  // Bytes produced so far, the trailer included once finished.
  uint64_t bytes() const { return bytes_; }

 private:
  void Emit(absl::string_view bytes);  // appends and hashes

  std::string* const out_;
  struct Hasher;
  std::unique_ptr<Hasher> hash_;
  uint64_t records_ = 0;
  uint64_t bytes_ = 0;
};

// What a verified backup holds.
struct BackupInfo {
  backuppb::BackupHeader header;
  uint64_t records = 0;
  uint64_t keys = 0;
  uint64_t bytes = 0;       // the file's size
  std::string sha256_hex;   // the checksum, 64 hex digits
};

// Reads `path` through once: checks its structure, the checksum over every
// byte and the trailer's counts. Errors name the file and what is wrong:
// NotFound / PermissionDenied (cannot open), InvalidArgument (not a backup,
// or a format version this build does not read), DataLoss (truncated or
// corrupt: where, and how).
absl::StatusOr<BackupInfo> VerifyBackup(const std::string& path);

// VerifyBackup, then a second pass calling fn(key, value) for each record
// in order; a non-OK status from fn ends the read with it. The second pass
// checks the checksum again: a file changed between the passes fails at the
// end with DataLoss, after fn has seen (some of) its records.
absl::StatusOr<BackupInfo> ReadBackup(
    const std::string& path,
    const std::function<absl::Status(absl::string_view key, absl::string_view value)>& fn);

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_BACKUP_FILE_H_
