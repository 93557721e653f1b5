// Store: the multi-version key-value store (mvcc/kv.h) kept in a LogStore's
// `data` column family (layout in mvcc/encoding.h), next to the state
// machine's other records.
//
// Writes happen on the apply thread, in batches that become one
// LogStore::ApplyBatch: BeginBatch, then one Txn per command (committed or
// dropped), then Finish, which adds the batch's records to the DataBatch
// the caller writes. Every replica applying the same commands writes the
// same records: revisions depend on nothing but the commands.
//
// Compaction has two halves. Batch::Compact (a command in the log) raises
// the compact revision: reads below it fail, and the history it hides is
// unreachable at once. CompactStep removes that history from disk a bounded
// number of records at a time, from any thread; it only ever removes records
// no read can reach (a key's records older than its newest at the compact
// revision, and that one too if it is a delete, oldest first), so reads and
// hashes are the same however far it got.
//
// Reads (Read) run on any thread against a consistent view of the latest
// applied state.
//
// A write learns a key's newest record (to number its version) from the
// batch's own writes, then a bounded cache of recently written keys
// (mvcc/latest_cache.h), then the disk; a read of one key at the latest
// revision inside a write transaction (a compare, a delete) does too, and
// fetches the value with a point read.
#ifndef RAFTKV_MVCC_STORE_H_
#define RAFTKV_MVCC_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/container/flat_hash_map.h"
#include "mvcc/kv.h"
#include "mvcc/latest_cache.h"
#include "storage/data_batch.h"
#include "storage/log_store.h"

namespace raftkv::mvcc {

// A read-only view of the store; see Reader. Must not outlive the Store's
// LogStore (or the DataSnapshot it was opened on).
class View : public Reader {
 public:
  ~View() override;
  int64_t revision() const override;
  int64_t compact_revision() const override;
  absl::StatusOr<RangeResult> Range(absl::string_view key, absl::string_view end,
                                    const RangeOptions& options) const override;
  // Calls fn for the latest value of each key in [key, end) (etcd's range
  // rules) in key order until it returns false; for paged native scans.
  absl::Status ForEachLatest(absl::string_view key, absl::string_view end,
                             absl::FunctionRef<bool(const KeyValue&)> fn) const;
  // The applied index of the state the view shows.
  uint64_t applied_index() const;

 private:
  friend class Store;
  struct Impl;
  explicit View(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct StoreOptions {
  // The cache of keys' newest records (see Store); 0 turns it off. An entry
  // costs the key's bytes plus LatestCache::kEntryOverhead.
  size_t latest_cache_bytes = 64 << 20;
};

class Store {
 public:
  using Options = StoreOptions;

  // Reads the revision counters. `log_store` is not owned and must outlive
  // the store.
  static absl::StatusOr<std::unique_ptr<Store>> Open(storage::LogStore* log_store,
                                                     const Options& options = Options());
  ~Store();

  // Re-reads the counters and reloads the cache (one pass over the keys'
  // newest records, while they fit) after a snapshot replaced the data.
  // Apply thread.
  absl::Status Reload();

  // A view of the latest applied state. Any thread.
  std::unique_ptr<View> Read() const;
  // A view of `snapshot`, which must outlive it. Any thread.
  static std::unique_ptr<View> ReadSnapshot(const storage::DataSnapshot& snapshot);

  class Batch;
  // A write transaction of a batch (see WriteTxn). Nothing it wrote is seen
  // outside it until Commit(); destroying it uncommitted drops its writes.
  class Txn final : public WriteTxn {
   public:
    ~Txn() override;
    int64_t revision() const override;
    int64_t compact_revision() const override;
    absl::StatusOr<RangeResult> Range(absl::string_view key, absl::string_view end,
                                      const RangeOptions& options) const override;
    absl::StatusOr<std::optional<KeyValue>> Put(absl::string_view key, absl::string_view value,
                                                int64_t lease, PrevKv want) override;
    absl::StatusOr<std::vector<KeyValue>> DeleteRange(absl::string_view key,
                                                      absl::string_view end) override;
    // Whether a write changed something (the transaction took a revision).
    bool changed() const { return changed_; }
    void Commit();

   private:
    friend class Batch;
    Txn(Batch* batch, uint64_t index);
    // The key's newest record as this transaction sees it.
    absl::StatusOr<Newest> NewestOf(absl::string_view key) const;
    // The value of the key's newest record `n`. REQUIRES: n.live.
    absl::StatusOr<std::string> ValueOf(absl::string_view key, const Newest& n) const;
    // Range of the single key `key` at the latest revision.
    absl::StatusOr<RangeResult> RangeLatestKey(absl::string_view key,
                                               const RangeOptions& options) const;
    void Write(absl::string_view key, const Newest& n, std::string record);

    Batch* const batch_;
    const uint64_t index_;
    bool changed_ = false;
    int64_t revision_ = 0;  // the revision it writes at, once changed_
    uint32_t sub_ = 0;
    std::map<std::string, std::string> writes_;  // data key -> value
    absl::flat_hash_map<std::string, Newest> newest_;  // of the keys it wrote
  };

  // The writes of one LogStore::ApplyBatch. Apply thread; one at a time.
  class Batch {
   public:
    ~Batch();
    // A transaction of the command at log index `index`. One open at a time.
    std::unique_ptr<Txn> Begin(uint64_t index);
    // Raises the compact revision (etcd's Compact): CompactedError() if
    // `revision` <= compact_revision(), FutureRevisionError() if above the
    // latest revision.
    absl::Status Compact(int64_t revision);
    int64_t revision() const { return latest_; }
    int64_t compact_revision() const { return compact_; }
    // Adds the batch's records to `out`; the store counts them as written
    // (the caller must write `out`, or stop: a failed apply is fatal).
    void Finish(storage::DataBatch* out);

   private:
    friend class Store;
    friend class Txn;
    explicit Batch(Store* store);

    Store* const store_;
    // The state before the batch, opened on first use (the apply thread is
    // the only writer, so a cursor opened later sees the same state).
    storage::DataCursor* base() const;
    mutable std::unique_ptr<storage::DataCursor> base_;
    std::map<std::string, std::string> writes_;  // committed txns' records
    absl::flat_hash_map<std::string, Newest> newest_;  // of the keys they wrote
    int64_t latest_;
    int64_t compact_;
    bool txn_open_ = false;
  };
  std::unique_ptr<Batch> BeginBatch();

  // The counters as of the last Finish (apply thread) or of the store.
  int64_t revision() const { return latest_.load(); }
  int64_t compact_revision() const { return compact_.load(); }

  // Removes up to about `max_records` unreachable records (see above);
  // returns true if more remain below the compact revision. One caller at
  // a time; any thread.
  absl::StatusOr<bool> CompactStep(size_t max_records) ABSL_LOCKS_EXCLUDED(compact_mu_);
  // The compact revision whose history is all removed from disk (0: none).
  int64_t physically_compacted() const { return physically_compacted_.load(); }

  // For hashes of the state: whether the record at data key `key` (any key of
  // `data`) is part of the store's logical content in a view whose compact
  // revision is `compact`. Calls must come in key order, one view at a time,
  // on one filter object: the revision index and history no read can reach
  // are left out, so members hash alike however far compaction got.
  class HashFilter {
   public:
    explicit HashFilter(int64_t compact) : compact_(compact) {}
    bool Include(absl::string_view key, absl::string_view value);

   private:
    const int64_t compact_;
    std::string prefix_;  // the key whose records are being read
    bool past_compact_ = false;  // its newest record at `compact_` was seen
  };
  // The compact revision recorded in a view, for a HashFilter.
  static absl::StatusOr<int64_t> CompactRevisionOf(const storage::DataSnapshot& view);

  // Whether `key` of `data` belongs to the store.
  static bool IsStoreKey(absl::string_view key);
  // Whether `key` of `data` is a history record (one revision of a key);
  // if so, sets `*revision` to its revision.
  static bool IsHistoryKey(absl::string_view key, int64_t* revision);
  // Whether the history record at data key `key` with value `value` is a
  // live key's latest revision (for counting a backup's keys): only the
  // newest record of a key, and not a delete. Calls in key order.
  static bool IsLatestLive(absl::string_view key, absl::string_view value,
                           std::string* last_prefix);

 private:
  Store(storage::LogStore* log_store, const Options& options)
      : log_store_(log_store), latest_cache_(options.latest_cache_bytes) {}

  storage::LogStore* const log_store_;
  // Fills the cache with every live key's newest record while they fit
  // (a storage error leaves it empty: keys are then read from disk).
  absl::Status LoadLatestCache();

  LatestCache latest_cache_;  // apply thread (Batch, Txn, Reload)
  std::atomic<int64_t> latest_{1};
  std::atomic<int64_t> compact_{0};
  std::atomic<int64_t> physically_compacted_{0};
  absl::Mutex compact_mu_;
  // Where the current pass of CompactStep goes on, and for which revision.
  std::string compact_cursor_ ABSL_GUARDED_BY(compact_mu_);
  int64_t compact_pass_ ABSL_GUARDED_BY(compact_mu_) = 0;
};

}  // namespace raftkv::mvcc

#endif  // RAFTKV_MVCC_STORE_H_
