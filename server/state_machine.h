// KvStateMachine: the replicated key-value map, kept in the store's `data`
// column family, with the client session table for exactly-once writes
// (Raft dissertation §6.3).
//
// Layout of `data` (encodings private to state_machine.cc):
//   the keys and their history: the MVCC store's (mvcc/store.h, keys
//                       starting 'h', 'v', 'r', 'x'); a native write is one
//                       write transaction, and the native API's version of a
//                       key is the log index of its last write (kept in each
//                       revision), not its etcd mod_revision
//   "s" + client id  -> statepb::SessionRecord
//   "m" + node id    -> the member's address (from conf-change contexts)
//   "i" + node id    -> the member's incarnation (fixed64): the first one
//                       recorded while it is a member; dropped on removal
//   "c"              -> index of the last applied membership change (fixed64)
//   "a" + ...        -> etcd's alarms (server/etcd/alarm_store.h)
//   "A" + ...        -> etcd's users, roles, auth switch (server/etcd/auth_store.h)
//
// Apply() is deterministic: every replica applying the same entries reaches
// the same bytes, including session eviction. It is called by one thread
// (the node's loop); Get/Scan/Digest may run on any thread concurrently
// (they read RocksDB snapshots) and see the state as of some applied index.
#ifndef RAFTKV_SERVER_STATE_MACHINE_H_
#define RAFTKV_SERVER_STATE_MACHINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "mvcc/store.h"
#include "proto/kv.pb.h"
#include "proto/raft.pb.h"
#include "proto/state.pb.h"
#include "server/etcd/alarm_store.h"
#include "server/etcd/auth_store.h"
#include "storage/log_store.h"

namespace raftkv::server {

struct Limits {
  static constexpr size_t kMaxKeyBytes = 4096;
  // Sessions kept; the least recently written one is evicted past this.
  // Part of the replicated behaviour: the same on every node.
  static constexpr size_t kMaxSessions = 10000;
  // Results kept per session (a client with more writes in flight loses
  // the oldest results).
  static constexpr size_t kMaxResultsPerSession = 1024;
};

// The outcome of one applied command, for the client that proposed it.
struct ApplyResult {
  uint64_t index = 0;
  uint64_t term = 0;
  absl::StatusOr<kvpb::WriteResult> result;
};

struct ScanResult {
  std::vector<kvpb::KeyValue> kvs;
  bool more = false;
  uint64_t applied_index = 0;  // of the state the page was read from
};

class KvStateMachine {
 public:
  // Loads the session table. `store` is not owned and must outlive this.
  // FailedPrecondition for a store whose data an older raftkv wrote (keys
  // without revisions).
  static absl::StatusOr<std::unique_ptr<KvStateMachine>> Open(
      storage::LogStore* store, const mvcc::StoreOptions& mvcc_options = mvcc::StoreOptions());

  // Applies committed entries in order, as one ApplyBatch; returns a result
  // for each normal entry that carried a command. Empty entries only advance
  // the applied index; conf-change entries also record the membership they
  // result in, with the applied index. A storage error, in a read (DataLoss
  // for corruption) or the write, is returned and nothing is written: the
  // entries cannot be applied (fatal to the node).
  absl::StatusOr<std::vector<ApplyResult>> Apply(const std::vector<raftpb::Entry>& entries);

  uint64_t applied_index() const { return store_->applied_index(); }

  // Reloads the session table after the store's data was replaced by a
  // snapshot (LogStore::InstallStaged).
  absl::Status Reload();

  // NotFound if the key is absent. With `applied`: set to the applied index
  // of the state read (at least the key's version; applied_index() read
  // after the value may still lag it).
  absl::StatusOr<kvpb::KeyValue> Get(const std::string& key, uint64_t* applied = nullptr) const;
  // At most `limit` keys and, past the first key, about `max_bytes` of keys
  // and values (so a page always fits in one gRPC message); `more` says a
  // later page holds the rest. A storage error (DataLoss for corruption)
  // fails the whole scan: never a page with keys missing.
  absl::StatusOr<ScanResult> Scan(const std::string& prefix, const std::string& start_after,
                                  size_t limit, size_t max_bytes = kMaxScanBytes) const;
  static constexpr size_t kMaxScanBytes = 2 << 20;
  // A hash of every key, value and version (not sessions), and the key
  // count: equal on replicas with equal data.
  absl::StatusOr<std::pair<uint64_t, uint64_t>> Digest() const;

  // Addresses of members added with one (ConfChange.context), as of the
  // applied index; removed members are dropped.
  absl::StatusOr<std::map<uint64_t, std::string>> MemberAddresses() const;

  // The incarnation recorded for member `id` (server/peer_incarnations.h),
  // as of the applied index. Any thread.
  std::optional<uint64_t> Incarnation(uint64_t id) const ABSL_LOCKS_EXCLUDED(incarnations_mu_);
  std::map<uint64_t, uint64_t> Incarnations() const ABSL_LOCKS_EXCLUDED(incarnations_mu_);
  // The membership as of the applied index and the index of the change that
  // made it (0: the founding one). Any thread.
  std::pair<uint64_t, raftpb::ConfState> Membership() const ABSL_LOCKS_EXCLUDED(incarnations_mu_);
  // Bumped whenever the incarnation records or the membership change.
  uint64_t records_version() const { return records_version_.load(); }

  // The command that records `incarnation` for member `node_id`, proposed
  // at membership `conf_index` (Membership().first).
  static std::string IncarnationCommand(uint64_t node_id, uint64_t incarnation,
                                        uint64_t conf_index);

  // Consistency checks (server/hash_checker.h): when Apply meets a hash
  // check entry it writes everything up to it, then hands `hook` that
  // entry's index and a view of the state exactly as of it, on Apply's
  // thread (the hook must not block: hash the view elsewhere).
  using CheckpointHook =
      std::function<void(uint64_t index, std::unique_ptr<storage::DataSnapshot> view)>;
  void set_checkpoint_hook(CheckpointHook hook) { checkpoint_hook_ = std::move(hook); }
  static std::string HashCheckCommand();
  // A hash of everything the state machine holds in `view` (keys, values
  // and versions, sessions, member addresses and incarnations): equal on
  // members with equal state at the same index.
  // Cancelled once `*cancel` (if given) becomes true, or `pace` (if given;
  // called with each record's bytes, e.g. a BytePacer's Account, to keep
  // the scan under a rate) returns false.
  static absl::StatusOr<uint64_t> StateHash(const storage::DataSnapshot& view,
                                            const std::atomic<bool>* cancel = nullptr,
                                            const std::function<bool(size_t bytes)>& pace = {});

  size_t session_count() const { return sessions_.size(); }

  // The store the state machine lives in (for backups: a view of it, and
  // the term of its applied index).
  storage::LogStore* store() const { return store_; }

  // The multi-version store the keys live in (reads: any thread).
  mvcc::Store* mvcc() const { return mvcc_.get(); }

  // etcd's alarms as of the applied index (reads: any thread).
  const etcd::AlarmStore& etcd_alarms() const { return etcd_alarms_; }
  // etcd's auth state as of the applied index (reads: any thread; its
  // invalidation hook is set before the node starts).
  const etcd::AuthStore& etcd_auth() const { return etcd_auth_; }
  etcd::AuthStore* mutable_etcd_auth() { return &etcd_auth_; }
  // The key of a record a backup may end with to reach a size it needs
  // (server/backup_source.h); no data key sorts after it, and a restore
  // drops it.
  static constexpr absl::string_view kBackupPaddingKey = "\xff" "padding";

  // Backups (server/backup_file.h) carry the raw pairs of `data`. A
  // KeyCounter counts the live keys among pairs given in key order (a
  // backup's key count); KeptOnRestore says whether a restore into a new
  // cluster keeps the pair: it drops the old cluster's membership records
  // (member addresses, incarnations, the membership index), which the new
  // cluster founds afresh from its --cluster.
  class KeyCounter {
   public:
    void Add(absl::string_view k, absl::string_view v) {
      if (mvcc::Store::IsLatestLive(k, v, &last_)) ++count_;
    }
    uint64_t count() const { return count_; }

   private:
    std::string last_;
    uint64_t count_ = 0;
  };
  static bool KeptOnRestore(absl::string_view k);

 private:
  explicit KvStateMachine(storage::LogStore* store) : store_(store) {}

  // Everything Reload loads but the MVCC store's own state.
  absl::Status LoadOwnState();

  // The batch being built: later commands in a batch see earlier writes.
  struct Overlay {
    std::unique_ptr<mvcc::Store::Batch> keys;  // opened by the first write
    storage::DataBatch batch;
    // A read of the store failed: the batch must not be written.
    absl::Status storage_error;
  };

  absl::StatusOr<kvpb::WriteResult> ApplyCommand(const kvpb::Command& cmd, uint64_t index,
                                                 Overlay* overlay);
  absl::StatusOr<kvpb::WriteResult> Execute(const kvpb::Command& cmd, uint64_t index,
                                            Overlay* overlay);
  // An etcd write (server/etcd/kv_apply.h): its answer, or etcd's error.
  absl::StatusOr<kvpb::WriteResult> ExecuteEtcd(const kvpb::EtcdWrite& w, uint64_t index,
                                                Overlay* overlay);
  // OK, or etcd's ErrNoSpace for a native Put or CAS while a NOSPACE alarm
  // (server/etcd/alarm_store.h) is active; deletes go on. With etcd's auth
  // on, every native write is refused (the native API has no credentials).
  absl::Status AdmitNativeWrite(bool deletes = false) const;
  // A write transaction of `overlay`'s MVCC batch for entry `index`.
  std::unique_ptr<mvcc::Store::Txn> BeginTxn(uint64_t index, Overlay* overlay);
  // Writes `overlay` (its MVCC batch included) with applied index `index`.
  absl::Status Flush(Overlay* overlay, uint64_t index, const raftpb::ConfState* conf);
  // A storage error met by a transaction: recorded in overlay->storage_error
  // (the batch must not be written) and returned.
  absl::Status StorageError(const absl::Status& s, Overlay* overlay) const;
  void SaveSession(const statepb::SessionRecord& s, Overlay* overlay);
  void MaybeEvictSession(Overlay* overlay);

  // Records a member's incarnation unless it has one, or the record was
  // proposed at another membership than the one applied (`conf_index`).
  void RecordIncarnation(const kvpb::MemberIncarnation& r, uint64_t conf_index,
                         Overlay* overlay);

  storage::LogStore* const store_;
  std::unique_ptr<mvcc::Store> mvcc_;
  etcd::AlarmStore etcd_alarms_;
  etcd::AuthStore etcd_auth_;
  CheckpointHook checkpoint_hook_;
  mutable absl::Mutex incarnations_mu_;
  std::map<uint64_t, uint64_t> incarnations_ ABSL_GUARDED_BY(incarnations_mu_);
  uint64_t conf_index_ ABSL_GUARDED_BY(incarnations_mu_) = 0;
  raftpb::ConfState conf_ ABSL_GUARDED_BY(incarnations_mu_);
  std::atomic<uint64_t> records_version_{0};
  // Session table, mirrored in `data`. by_last_index_ orders eviction.
  std::map<uint64_t, statepb::SessionRecord> sessions_;
  std::set<std::pair<uint64_t, uint64_t>> by_last_index_;  // (last_index, client)
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_STATE_MACHINE_H_
