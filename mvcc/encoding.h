// How the MVCC store lays out its records in the `data` column family. The
// store shares `data` with the state machine's other records; its keys start
// with bytes no other record uses ('h', 'v', 'r', 'x').
//
//   'h' + Escaped(key) + be64(~mod_revision) -> Record   (a key's history)
//   'v' + be64(revision) + be32(sub)         -> key      (revision index)
//   'r'                                      -> be64(latest revision)
//   'x'                                      -> be64(compact revision)
//
// Escaped() keeps the order of keys and ends each with a terminator, so one
// key's records are contiguous, keys sort as etcd's (bytewise), and a key's
// records run newest first (the revision is inverted): the first record at or
// after Seek('h' + Escaped(key) + be64(~R)) is the key's newest at or before
// revision R, if it belongs to the key. The revision index lists the writes in
// revision order (physical compaction walks it; so will Watch).
#ifndef RAFTKV_MVCC_ENCODING_H_
#define RAFTKV_MVCC_ENCODING_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace raftkv::mvcc::encoding {

constexpr char kHistory = 'h';
constexpr char kRevisionIndex = 'v';
constexpr char kLatestRevision = 'r';
constexpr char kCompactRevision = 'x';

// 0x00 becomes 0x00 0xFF; the key ends with 0x00 0x01.
std::string Escaped(absl::string_view key);
// The start of `key`'s records: 'h' + Escaped(key).
std::string HistoryPrefix(absl::string_view key);
// The first data key after every record of the key with this prefix (and
// before every record of later keys).
std::string PastKey(absl::string_view history_prefix);
// 'h' + Escaped(key) + be64(~revision).
std::string HistoryKey(absl::string_view key, int64_t revision);

// A history key split in its parts; false if it is not one.
struct ParsedHistoryKey {
  absl::string_view prefix;  // 'h' + Escaped(key)
  int64_t revision = 0;
};
bool ParseHistoryKey(absl::string_view data_key, ParsedHistoryKey* out);
// The user key of an escaped history prefix; false if malformed.
bool Unescape(absl::string_view history_prefix, std::string* key);

std::string RevisionIndexKey(int64_t revision, uint32_t sub);
bool ParseRevisionIndexKey(absl::string_view data_key, int64_t* revision, uint32_t* sub);

std::string FixedRevision(int64_t revision);  // be64
bool ParseFixedRevision(absl::string_view bytes, int64_t* revision);

// One revision of a key. A tombstone marks its delete (no value, version 0).
struct Record {
  bool tombstone = false;
  int64_t create_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
  uint64_t index = 0;  // log index of the entry that wrote it
  std::string value;
};
std::string EncodeRecord(const Record& r);
// DataLoss naming the problem if `bytes` is not a record.
absl::StatusOr<Record> DecodeRecord(absl::string_view bytes);

}  // namespace raftkv::mvcc::encoding

#endif  // RAFTKV_MVCC_ENCODING_H_
