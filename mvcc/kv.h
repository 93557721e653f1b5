// The interface of raftkv's multi-version key-value store, as etcd's MVCC
// defines it (etcd's mvcc package: revisions, keyIndex, compaction).
//
// Every write transaction that changes something gets the next revision of
// one store-wide counter; each key it writes gets that revision as its
// mod_revision (a transaction writes a key at most once: etcd's rule, checked
// by the caller). A key's create_revision is the revision that created it
// (since its last delete) and its version counts its writes since then (1 on
// creation); a delete ends the key's life (its next put creates it again).
// Old revisions stay readable until compacted: a Range at revision R sees the
// store as it was right after the transaction of revision R committed.
//
// Key ranges are etcd's: `end` empty means the single key `key`; `end` equal
// to "\0" (one zero byte) means every key >= `key`; otherwise [key, end).
// `key` "\0" with `end` "\0" is every key.
#ifndef RAFTKV_MVCC_KV_H_
#define RAFTKV_MVCC_KV_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace raftkv::mvcc {

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
  // The Raft log index of the entry that wrote this revision (the native
  // API's "version"; not part of etcd's API).
  uint64_t index = 0;

  friend bool operator==(const KeyValue& a, const KeyValue& b) {
    return a.key == b.key && a.value == b.value && a.create_revision == b.create_revision &&
           a.mod_revision == b.mod_revision && a.version == b.version && a.lease == b.lease &&
           a.index == b.index;
  }
};

struct RangeOptions {
  int64_t revision = 0;  // <= 0: the latest
  // At most this many keys in `kvs` (<= 0: no limit); `count` still counts
  // every key of the range.
  int64_t limit = 0;
  bool keys_only = false;   // values left empty
  bool count_only = false;  // no kvs, only count
  // > 0: a range whose kvs would hold more than this many bytes of keys and
  // values fails with TooLargeError() (a bound on a read's memory, not a
  // page: the caller asks for fewer keys).
  int64_t max_bytes = 0;
};

struct RangeResult {
  std::vector<KeyValue> kvs;  // in key order
  int64_t count = 0;          // keys in the range at that revision
  bool more = false;          // kvs stopped at `limit` with keys left
};

// A Range at a revision below compact_revision() fails with
// CompactedError(), one above revision() with FutureRevisionError(); their
// messages are etcd's (mvcc.ErrCompacted, mvcc.ErrFutureRev), which the
// etcd services map to etcd's gRPC errors (OUT_OF_RANGE with these texts).
absl::Status CompactedError();
absl::Status FutureRevisionError();
bool IsCompacted(const absl::Status& s);
bool IsFutureRevision(const absl::Status& s);
// RESOURCE_EXHAUSTED: a Range over RangeOptions::max_bytes.
absl::Status TooLargeError();
bool IsTooLarge(const absl::Status& s);

// A consistent view of the store. Other errors than the two above are
// storage errors (DataLoss for corrupt data): the read failed as a whole.
class Reader {
 public:
  virtual ~Reader() = default;
  // The latest revision this view holds (1 for an empty store, as etcd's).
  virtual int64_t revision() const = 0;
  // Revisions below this one are compacted (0: none).
  virtual int64_t compact_revision() const = 0;
  virtual absl::StatusOr<RangeResult> Range(absl::string_view key, absl::string_view end,
                                            const RangeOptions& options) const = 0;
};

// One write transaction (an etcd Put, DeleteRange or Txn; a native write).
// Reads see the transaction's own writes; revision() is the store's latest
// revision until the first write changes something, then the revision the
// transaction writes at. A transaction that changes nothing (only reads, or
// a delete that found no key) takes no revision.
// A view of `view` (not owned; must outlive it) whose Ranges hold at most
// `max_bytes` of keys and values (RangeOptions::max_bytes; a caller's
// smaller bound wins): what a server gives a client's read.
class BoundedReader final : public Reader {
 public:
  BoundedReader(const Reader& view, int64_t max_bytes) : view_(view), max_(max_bytes) {}
  int64_t revision() const override { return view_.revision(); }
  int64_t compact_revision() const override { return view_.compact_revision(); }
  absl::StatusOr<RangeResult> Range(absl::string_view key, absl::string_view end,
                                    const RangeOptions& options) const override {
    RangeOptions o = options;
    if (o.max_bytes <= 0 || o.max_bytes > max_) o.max_bytes = max_;
    return view_.Range(key, end, o);
  }

 private:
  const Reader& view_;
  const int64_t max_;
};

// Whether a Put returns the key's previous value (etcd's prev_kv). Skipping
// it saves a read of the old record.
enum class PrevKv { kSkip, kReturn };

class WriteTxn : public Reader {
 public:
  // Writes `key` (not empty). With PrevKv::kReturn, returns the key's
  // previous value if it had one; with kSkip, always nullopt.
  virtual absl::StatusOr<std::optional<KeyValue>> Put(absl::string_view key,
                                                      absl::string_view value, int64_t lease,
                                                      PrevKv prev) = 0;
  // Deletes the keys in the range as of now; returns them (their last values).
  virtual absl::StatusOr<std::vector<KeyValue>> DeleteRange(absl::string_view key,
                                                            absl::string_view end) = 0;
};

}  // namespace raftkv::mvcc

#endif  // RAFTKV_MVCC_KV_H_
