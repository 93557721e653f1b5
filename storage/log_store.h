// LogStore: a node's stable storage in one RocksDB instance.
//
// Column families (encodings in storage/encoding.h):
//   log   Raft entries keyed by index (8-byte big-endian).
//   meta  hard state, the node's identity (cluster id, node id), the metadata
//         of the snapshot the log starts after, and the applied index.
//   data  the replicated key-value data. Every change to it is written in the
//         same WriteBatch as the applied index it brings the store to, so a
//         restart knows exactly which entries are reflected in `data`.
//
// Implements raft::LogReader for the consensus core, plus the driver's write
// side: Append (entries + hard state), Compact, ApplySnapshot, ApplyBatch.
//
// Durability: with Options::sync (the default) every write is one WriteBatch
// committed with WriteOptions::sync (Append: written, then the WAL synced,
// which does not hold up other threads' unsynced writes during the flush),
// so when a write method returns OK its
// effect survives a crash, and a crash never leaves half of it. Two
// exceptions, both safe to lose and made durable by the next synced write:
// an Append that only moves the commit index, and ApplyBatch (sync_data). A write that
// fails returns the error and leaves the in-memory view unchanged; the caller
// must treat it as fatal (the batch may or may not be on disk). The store
// then refuses every later write (write_failure()) without calling RocksDB:
// RocksDB 7.8 aborts on an assertion when a WAL it failed to write is
// written or synced again. A full disk is reported as ResourceExhausted;
// other I/O errors as Internal. Reads go on working.
//
// Invariants, checked by Open (a store violating them refuses to open):
//   * the log holds exactly the indexes snapshot.index+1 .. LastIndex(), no
//     holes, each value an Entry whose index matches its key;
//   * hard_state.commit <= LastIndex() < 2^64-1 (so no index wraps);
//   * applied_index >= snapshot.index.
// The applied index is not checked here against LastIndex() (the Raft core
// refuses one past it on start, raft/raft_log.h), nor against the commit
// index, which may lag it: the commit index alone is written unsynced.
//
// Integrity: every read verifies the checksum of each block it reads
// (ReadOptions::verify_checksums) and every iterator's status is checked
// after its loop, so a corrupt block fails the read with DataLoss naming the
// directory and RocksDB's message; a read never returns fewer keys instead.
// The database is opened with paranoid_checks. LiveSstFiles lists the files
// a scrub (storage/scrubber.h) verifies.
//
// Ownership: the LogStore owns the RocksDB instance; destroying it closes the
// database and releases the directory lock. Returned values are copies.
//
// Thread safety: all methods may be called from any thread. Log-side methods
// (Append, Compact, ApplySnapshot, Bootstrap and the LogReader methods) are
// serialized by one mutex, taken shared by the readers, except that Append
// releases it while its write is synced (writers still wait for it). An
// Append that only adds entries past LastIndex() leaves what readers see of
// [FirstIndex(), LastIndex()] unchanged until it returns; one that replaces
// a suffix does not, so a reader must not read the replaced indexes
// meanwhile (the node's loop makes such appends itself, and the Raft core
// reads the store only below its unstable tail). ApplyBatch takes a
// second mutex, so one apply thread may write `data` while the driver thread
// appends. The intended use is a single writer per side: one driver thread
// for the log (which is also the LogReader caller), optionally one apply
// thread. Get() reads RocksDB directly and never blocks on either mutex.
#ifndef RAFTKV_STORAGE_LOG_STORE_H_
#define RAFTKV_STORAGE_LOG_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/raft.pb.h"
#include "proto/storage.pb.h"
#include "raft/log_reader.h"
#include "storage/data_batch.h"
#include "storage/durable_mark.h"
#include "storage/entry_cache.h"

namespace rocksdb {
class ColumnFamilyHandle;
struct ReadOptions;
class DB;
class Env;
class WriteBatch;
}  // namespace rocksdb

namespace raftkv::storage {

class DataSnapshot;
class DataCursor;

struct Options {
  // The RocksDB directory. Required.
  std::string dir;

  // Create the directory and an empty store if there is none. When false,
  // opening a directory without a store is NotFound.
  bool create_if_missing = true;

  // fsync every write (WriteOptions::sync). Turn off only in tests and
  // benchmarks: without it an acknowledged write may be lost in a crash.
  bool sync = true;

  // If set, Open refuses a store that belongs to another cluster or node.
  // A store without an identity yet (never bootstrapped) is accepted, and
  // Bootstrap then only accepts this identity.
  std::optional<storagepb::NodeIdentity> expected_identity;

  // Open scans every key of the log to prove it has no holes (cost: one pass
  // over the log's keys). When false only the first and last keys are read.
  bool verify_log_on_open = true;

  // fsync ApplyBatch writes too (see ApplyBatch: not needed for safety).
  bool sync_data = false;

  // Memtable size of the `data` column family. Every applied write is a
  // skip-list insert at a random key, and in a memtable larger than the CPU
  // caches each level of the search misses: 4 MiB applies ~1.4x faster than
  // 32 MiB (//server:apply_benchmark). Level 1 is sized to four memtables so
  // compactions stay proportionate. At least 64 KiB.
  size_t data_memtable_bytes = 4 << 20;

  // Block cache of the `data` column family (uncompressed blocks, LRU). A
  // read that misses it costs a pread and a decompression. 0: no cache.
  size_t data_block_cache_bytes = 64 << 20;

  // Table files RocksDB keeps open at most (RocksDB's max_open_files; -1:
  // all of them, as many as the store has). The server bounds it so that
  // the store fits in its share of the descriptor limit (server/fd_limit.h).
  int max_open_files = -1;

  // How often a changed durable mark (storage/durable_mark.h) is written;
  // with sync, a store records there how far its log was durable, and Open
  // refuses a store whose log fell behind its mark (a disk that lost synced
  // writes). Zero: no mark is kept or checked (tests, benchmarks).
  absl::Duration durable_mark_interval = absl::Milliseconds(100);

  // Copies of the most recently appended log entries kept in memory
  // (storage/entry_cache.h), bounded by their serialized size: Entries and
  // Term read them without RocksDB. 0: none.
  size_t entry_cache_bytes = 4 << 20;

  // Called on the thread of a failed file write in the store (an append,
  // sync or file creation: ENOSPC, EIO; also of the durable mark), with the
  // error naming the file, before RocksDB sees the error; empty: none. The server's handler ends
  // the process (server/storage_failure.h), which makes a failed write
  // fail-stop: RocksDB 7.8 aborts on an assertion when another thread syncs
  // the WAL after a write to it failed, and the only sure way to rule that
  // out is to stop before the error reaches RocksDB. If the handler returns,
  // the write fails as usual (see "A write that fails" above).
  std::function<void(const absl::Status&)> on_write_failure;

  // Threads RocksDB starts per column family to open the table files at
  // Open (RocksDB's max_file_opening_threads; its default). The fuzz
  // targets, which open a store per input, use 1: thread start-up was most
  // of an open's cost under AddressSanitizer. At least 1.
  int table_open_threads = 16;

  // The Env RocksDB reads and writes files through (not owned; must outlive
  // the store). Null: WalPreallocatingEnv() (storage/wal_file_system.h).
  // Tests give a FaultFileSystem here (storage/fault_file_system.h).
  rocksdb::Env* env = nullptr;

  // OK, or InvalidArgument naming the bad field.
  absl::Status Validate() const;
};

class LogStore final : public raft::LogReader {
 public:
  // Opens (or creates) the store in options.dir and recovers its state.
  // Errors, each naming the directory:
  //   InvalidArgument     bad options;
  //   NotFound            no store and !create_if_missing;
  //   FailedPrecondition  directory locked by another process or LogStore,
  //                       not a raftkv store, unknown format, or identity
  //                       differing from options.expected_identity;
  //   DataLoss            RocksDB corruption, a broken invariant (above), or
  //                       a log or hard state behind the durable mark;
  //   others              RocksDB's errors.
  static absl::StatusOr<std::unique_ptr<LogStore>> Open(const Options& options);

  ~LogStore() override;
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  // ---- Identity ----------------------------------------------------------

  // Records the node's identity and the initial snapshot metadata (index 0,
  // term 0, `initial_conf`) on a node's first start. Idempotent: OK without
  // writing if the same identity is already recorded.
  // Errors: InvalidArgument (a zero id); FailedPrecondition if another
  // identity is recorded or options.expected_identity differs, or if the
  // store already holds log entries, hard state or applied data.
  absl::Status Bootstrap(const storagepb::NodeIdentity& identity,
                         const raftpb::ConfState& initial_conf);

  // The recorded identity; nullopt before Bootstrap.
  std::optional<storagepb::NodeIdentity> identity() const;

  // Gives a bootstrapped store made before incarnations existed one (synced).
  // FailedPrecondition if it has one already or has no identity.
  absl::Status SetIncarnation(uint64_t incarnation);

  // Incarnations of other nodes as first heard from them (synced when
  // recorded; incarnation 0 forgets the node). Kept in `meta`: local to
  // this node, not replicated.
  std::map<uint64_t, uint64_t> PeerIncarnations() const;
  absl::Status RecordPeerIncarnation(uint64_t node_id, uint64_t incarnation);

  // ---- Log writes (the driver) ---------------------------------------------

  // Appends `entries` and saves `*hs`, in one write, synced unless it only
  // moves the commit index (entries or a new term/vote: synced). Existing entries
  // at indexes >= entries[0].index are replaced, and any beyond the last new
  // entry are deleted (a conflicting suffix is dropped). Either argument may
  // be empty/null; with both empty nothing is written. Replacing entries
  // costs one more fsync: the durable mark is lowered first (durable_mark.h).
  // REQUIRES (else InvalidArgument): entries contiguous and ascending;
  //   snapshot index < entries[0].index <= LastIndex() + 1; the resulting
  //   commit index (hs->commit, or the stored one) <= the resulting
  //   LastIndex().
  absl::Status Append(const std::vector<raftpb::Entry>& entries,
                      const raftpb::HardState* hs);

  // Deletes the log prefix up to and including `index` (a range delete) and
  // records SnapshotMetadata{index, term, conf_state}, in one synced write.
  // Term(index) keeps answering `term`; FirstIndex() becomes index + 1.
  // REQUIRES: snapshot index < index (else FailedPrecondition "compacted");
  //   index <= applied_index() (else FailedPrecondition);
  //   index <= LastIndex() (else OutOfRange); term == Term(index) (else
  //   InvalidArgument).
  absl::Status Compact(uint64_t index, uint64_t term,
                       const raftpb::ConfState& conf_state);

  // Installs a snapshot received from the leader (etcd's ApplySnapshot): in
  // one synced write, records `meta` as the snapshot metadata; if the log
  // holds meta.index with meta.term, keeps the entries after it and deletes
  // the rest, otherwise discards the whole log (LastIndex() becomes
  // meta.index; the durable mark is lowered first, as by Append); raises the hard state's commit to meta.index if lower.
  // With `data`, the snapshot's image replaces the whole `data` column
  // family (every existing key deleted, then `data` applied) and the applied
  // index becomes meta.index, in the same write.
  // REQUIRES: meta.index > snapshot index (else FailedPrecondition
  //   "snapshot out of date"); without `data`, applied_index() >= meta.index
  //   (the image was applied already; else FailedPrecondition); with `data`,
  //   applied_index() <= meta.index (else FailedPrecondition).
  absl::Status ApplySnapshot(const raftpb::SnapshotMetadata& meta,
                             const DataBatch* data);

  // The current hard state (as GetInitialState().hard_state).
  raftpb::HardState hard_state() const;

  // ---- State machine (the apply thread) -----------------------------------

  // Writes `changes` to the `data` column family and sets the applied index
  // to `applied_index`, in one write, synced only if options.sync_data.
  // Not syncing is safe: the entries applied are already durable in the
  // log, so a crash that loses this write rolls data and applied index back
  // together and the entries are applied again. Every store shares one WAL,
  // so the next synced write (e.g. Append) makes this one durable too. `changes` may be empty (an
  // entry without effect on the data still advances the applied index).
  // REQUIRES: applied_index > applied_index() (else InvalidArgument). The
  // caller applies only committed entries; this is not checked.
  // With `conf`, also records the membership as of applied_index (the
  // batch applied a membership change).
  absl::Status ApplyBatch(const DataBatch& changes, uint64_t applied_index,
                          const raftpb::ConfState* conf = nullptr);

  // The membership recorded by the last ApplyBatch with a conf, or by a
  // snapshot install; nullopt if none was ever recorded.
  std::optional<raftpb::ConfState> applied_conf() const;

  // Makes every write so far durable (syncs the WAL). Call before deleting
  // log entries whose application was written unsynced.
  absl::Status SyncWal();

  // OK, or the error of the first write (or sync) that failed, after which
  // every write method returns it (prefixed "an earlier write failed").
  absl::Status write_failure() const ABSL_LOCKS_EXCLUDED(failure_mu_);

  // ---- Snapshots of `data` ------------------------------------------------

  // A consistent, point-in-time view of the live data and the applied index
  // it reflects, for streaming to a follower. Safe alongside writes.
  absl::StatusOr<std::unique_ptr<DataSnapshot>> OpenDataSnapshot() const;

  // Receiving a snapshot, in bounded memory: BeginStaging clears the spare
  // generation of `data`; StageData writes a chunk of the image into it
  // (unsynced, invisible to readers); InstallStaged makes it live in one
  // synced write, together with the snapshot metadata, the applied index
  // (= meta.index), the applied membership and the log (kept after the
  // snapshot if it holds meta.index with meta.term, else discarded), then
  // drops the old generation. A crash at any point leaves the old state or
  // the new one; Open clears a half-staged generation.
  // REQUIRES (InstallStaged): meta.index > snapshot index and
  // >= applied_index() (else FailedPrecondition).
  absl::Status BeginStaging();
  absl::Status StageData(const DataBatch& puts);
  absl::Status InstallStaged(const raftpb::SnapshotMetadata& meta);

  // Index of the last entry whose changes `data` reflects.
  uint64_t applied_index() const { return applied_index_.load(); }

  // The value of `key` in `data`; NotFound if absent. With `applied`: set
  // to the applied index of the state the value was read from (never below
  // the entry that wrote it: applied_index() alone may lag a read that
  // races an ApplyBatch).
  absl::StatusOr<std::string> Get(absl::string_view key, uint64_t* applied = nullptr) const;

  // Calls fn(key, value) for the keys of `data` from `start` (inclusive) in
  // order, on one consistent point-in-time view, until fn returns false or
  // the keys run out. Safe alongside ApplyBatch on another thread. With
  // `applied`: set to that view's applied index, as for Get.
  absl::Status ScanData(absl::string_view start,
                        absl::FunctionRef<bool(absl::string_view, absl::string_view)> fn,
                        uint64_t* applied = nullptr) const;

  // A seekable cursor over one consistent point-in-time view of `data`, and
  // the applied index of that view (as ScanData's). Must not outlive the
  // store. Safe alongside ApplyBatch on another thread. With `point_reads`
  // the cursor holds an explicit RocksDB snapshot (a lock of the DB's mutex
  // to take and to release), so DataCursor::Get reads the same view.
  std::unique_ptr<DataCursor> OpenDataCursor(bool point_reads = false) const;

  // Removes `keys` from `data` as the cursor `read_from` saw it, unsynced,
  // without touching the applied index: for records no read can reach any
  // more (mvcc's compacted history), whose loss in a crash is harmless. A
  // no-op if a snapshot install replaced the data since the cursor opened.
  // Any thread.
  absl::Status RemoveUnreachable(const std::vector<std::string>& keys,
                                 const DataCursor& read_from);

  // ---- raft::LogReader --------------------------------------------------

  absl::StatusOr<raft::InitialState> GetInitialState() const override;
  absl::StatusOr<std::vector<raftpb::Entry>> Entries(
      uint64_t lo, uint64_t hi, uint64_t max_bytes) const override;
  absl::StatusOr<uint64_t> Term(uint64_t i) const override;
  uint64_t FirstIndex() const override;
  uint64_t LastIndex() const override;
  // The snapshot metadata; the data is always empty (the server streams
  // the image from `data` itself).
  absl::StatusOr<raftpb::Snapshot> GetSnapshot() const override;

  const std::string& dir() const { return options_.dir; }

  // ---- Integrity ------------------------------------------------------------

  struct SstFile {
    std::string path;           // absolute
    std::string column_family;  // "log", "meta" or "data"
    uint64_t bytes = 0;
  };
  // The live SST files of every column family. A compaction may delete a
  // listed file at any time.
  std::vector<SstFile> LiveSstFiles() const;

  // ---- Space ----------------------------------------------------------------

  // What `data` occupies (both generations): its live SST files and its
  // memtables, and RocksDB's estimate of the live bytes among them.
  struct DataSize {
    uint64_t sst_bytes = 0;
    uint64_t memtable_bytes = 0;
    uint64_t live_bytes_estimate = 0;
    uint64_t total() const { return sst_bytes + memtable_bytes; }
  };
  DataSize DataSizes() const;
  // Compacts all of `data` down to the last level (RocksDB's CompactRange,
  // one subcompaction, not exclusive: background compactions and writes go
  // on), dropping deleted and overwritten records. Blocks until done.
  absl::Status CompactData();

 private:
  LogStore(const Options& options, std::unique_ptr<rocksdb::Env> env, rocksdb::DB* db,
           std::vector<rocksdb::ColumnFamilyHandle*> handles);

  // Open's second half: reads `meta`, scans `log`, checks the invariants.
  absl::Status Recover();
  absl::Status CheckFormat();
  absl::Status ScanLog();
  absl::Status LoadPeerIncarnations() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads meta key `key` into `out`; false (and `out` untouched) if absent.
  absl::StatusOr<bool> ReadMeta(absl::string_view key, std::string* out) const;

  // Commits `batch`, synced if `sync`.
  absl::Status Write(rocksdb::WriteBatch* batch, absl::string_view what);
  absl::Status Write(rocksdb::WriteBatch* batch, absl::string_view what,
                     bool sync);
  // Adds the deletion of log indexes [lo, hi) to `batch`.
  void DeleteLogRange(rocksdb::WriteBatch* batch, uint64_t lo, uint64_t hi);
  // Adds the deletion of every key in `data` to `batch`.
  absl::Status ClearData(rocksdb::WriteBatch* batch);
  void AddDataChanges(rocksdb::WriteBatch* batch, const DataBatch& changes,
                      char generation);
  // Adds the deletion of generation g's whole key space to `batch`.
  void ClearGeneration(rocksdb::WriteBatch* batch, char g);
  std::string DataKey(absl::string_view key) const {
    return std::string(1, generation_.load()) + std::string(key);
  }

  // Term(i) with mu_ held; FirstIndex()-1 <= i <= LastIndex().
  absl::StatusOr<uint64_t> TermLocked(uint64_t i) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::StatusOr<raftpb::Entry> ReadEntry(uint64_t i) const;

  // Open's check of the recovered log against the durable mark file.
  absl::Status CheckDurableMark() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a mark file is kept (Options::sync and durable_mark_interval).
  bool KeepsMark() const {
    return options_.sync && options_.durable_mark_interval > absl::ZeroDuration();
  }
  // Records the current log and hard state as durable (after a synced write).
  void NoteDurableLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets durable_ to `mark`; returns its sequence number.
  uint64_t SetDurableLocked(const DurableMark& mark) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Before a write that removes the entry the mark names, the writer lowers
  // durable_ to an entry the write keeps and writes the mark file itself:
  // a crash right after the write must not find a mark the log no longer
  // holds (Open would refuse a healthy store). For a snapshot install that
  // discards the log: lowered to the current snapshot, if the log held
  // entries past meta.index. The mark holds before and after the install.
  absl::Status LowerMarkForDiscardLocked(const raftpb::SnapshotMetadata& meta)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The marker thread: writes durable_ to the mark file when it changed.
  void MarkerLoop();
  // Writes durable_ as of now (WriteMarkIfNewer).
  absl::Status WriteCurrentMark() ABSL_LOCKS_EXCLUDED(mu_, marker_mu_);
  // Writes `mark`, durable_ as of sequence number `seq`, unless a mark of a
  // later sequence number is written already: writers race (the marker
  // thread, a lowering writer), and an older mark must never replace a
  // newer, lower one. The first failure is kept and returned from then on.
  absl::Status WriteMarkIfNewer(const DurableMark& mark, uint64_t seq)
      ABSL_LOCKS_EXCLUDED(marker_mu_);
  // marker_error_ if a mark write failed, else OK. Cheap when none did.
  absl::Status MarkerError() const ABSL_LOCKS_EXCLUDED(marker_mu_);
  // The options of every read: verify_checksums (see Integrity above).
  static rocksdb::ReadOptions ReadOpts();

  // Prefixes `s`'s message with the directory.
  absl::Status Annotate(const absl::Status& s) const;
  // Records the first failed write; later writes are refused (see above).
  void LatchFailure(const absl::Status& s) ABSL_LOCKS_EXCLUDED(failure_mu_);
  // OK, or the refusal of `what` after a failed write.
  absl::Status RefuseAfterFailure(absl::string_view what) const ABSL_LOCKS_EXCLUDED(failure_mu_);

  const Options options_;
  // The Env the store built (options.on_write_failure); null if it uses
  // options.env or the default. Outlives db_.
  std::unique_ptr<rocksdb::Env> env_;
  rocksdb::DB* const db_;  // owned; deleted after the handles
  rocksdb::ColumnFamilyHandle* const log_cf_;
  rocksdb::ColumnFamilyHandle* const meta_cf_;
  rocksdb::ColumnFamilyHandle* const data_cf_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // owned, all CFs

  // Serializes the log side's writers. Append holds only this one (not mu_)
  // while its write is synced, so the core's reads of durable entries go on
  // during a flush (asynchronous writes, raft.h); the others hold both.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // Guards the log side: the `log` CF, hard state, snapshot, identity.
  mutable absl::Mutex mu_;
  // Serializes writes of the applied index (ApplyBatch, ApplySnapshot).
  // Lock order: mu_ before apply_mu_.
  mutable absl::Mutex apply_mu_ ABSL_ACQUIRED_AFTER(mu_);

  // In-memory copies of what is on disk, updated after each successful write.
  raftpb::HardState hard_state_ ABSL_GUARDED_BY(mu_);
  raftpb::SnapshotMetadata snapshot_ ABSL_GUARDED_BY(mu_);
  std::optional<storagepb::NodeIdentity> identity_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, uint64_t> peer_incarnations_ ABSL_GUARDED_BY(mu_);
  uint64_t last_index_ ABSL_GUARDED_BY(mu_) = 0;  // snapshot index if empty
  uint64_t last_term_ ABSL_GUARDED_BY(mu_) = 0;   // Term(last_index_)
  // The log's newest entries; told of every change to the log after it is
  // written.
  EntryCache cache_ ABSL_GUARDED_BY(mu_);
  // Written under apply_mu_; read anywhere.
  std::atomic<uint64_t> applied_index_{0};
  // A sequence lock over `data`, applied_index_ and generation_: odd while
  // a change to them is being written (DataChange, under apply_mu_), so a
  // reader knows whether the applied index it loaded matches what it read
  // (ReadConsistent).
  std::atomic<uint64_t> data_seq_{0};
  // Marks a change in progress for its lifetime. REQUIRES: apply_mu_ held.
  class DataChange {
   public:
    explicit DataChange(LogStore* store) : store_(store) { store_->data_seq_.fetch_add(1); }
    ~DataChange() { store_->data_seq_.fetch_add(1); }
    DataChange(const DataChange&) = delete;
    DataChange& operator=(const DataChange&) = delete;

   private:
    LogStore* const store_;
  };
  // Runs `read` (the start of a read of `data`) and returns the applied
  // index of the state it read; takes apply_mu_ if changes keep racing it.
  template <typename F>
  uint64_t ReadConsistent(F read) const;
  std::atomic<char> generation_{'a'};  // the live generation of `data`
  std::optional<raftpb::ConfState> applied_conf_ ABSL_GUARDED_BY(apply_mu_);

  // The durable mark: durable_ is what the log side has made durable,
  // written to the mark file by marker_ (see Options::durable_mark_interval)
  // or, when lowered, by the writer itself. durable_seq_ counts its changes.
  DurableMark durable_ ABSL_GUARDED_BY(mu_);
  uint64_t durable_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // Held while the mark file is written (lock order: mu_, then marker_mu_).
  mutable absl::Mutex marker_mu_ ABSL_ACQUIRED_AFTER(mu_);
  bool marker_stop_ ABSL_GUARDED_BY(marker_mu_) = false;
  // What the mark file holds, and the sequence number it was written for.
  DurableMark marker_written_ ABSL_GUARDED_BY(marker_mu_);
  uint64_t marker_written_seq_ ABSL_GUARDED_BY(marker_mu_) = 0;
  // A failed mark write; the next Append returns it (fatal to the node).
  // marker_failed_ is set with it, so Append checks without marker_mu_
  // (never waiting for the marker thread's fsync).
  absl::Status marker_error_ ABSL_GUARDED_BY(marker_mu_);
  std::atomic<bool> marker_failed_{false};
  std::thread marker_;

  // Set once, by the first failed write; never cleared.
  std::atomic<bool> write_failed_{false};
  mutable absl::Mutex failure_mu_;
  absl::Status write_failure_ ABSL_GUARDED_BY(failure_mu_);

  friend class DataSnapshot;
  friend class DataCursor;
  friend class LogStoreTestPeer;  // durable_mark_test: the marker's steps, one by one
};

// A point-in-time view of a LogStore's live data (see OpenDataSnapshot).
// Must not outlive the store. Thread-compatible.
class DataSnapshot {
 public:
  ~DataSnapshot();
  DataSnapshot(const DataSnapshot&) = delete;
  DataSnapshot& operator=(const DataSnapshot&) = delete;

  // The applied index the view reflects.
  uint64_t applied_index() const { return applied_index_; }
  // The membership as of applied_index (nullopt if never recorded).
  const std::optional<raftpb::ConfState>& conf() const { return conf_; }

  // Calls fn(key, value) for the keys after `start_after` ("" = from the
  // first), in order, until fn returns false.
  absl::Status Scan(absl::string_view start_after,
                    absl::FunctionRef<bool(absl::string_view, absl::string_view)> fn) const;
  // A cursor over this view (must not outlive it).
  std::unique_ptr<DataCursor> OpenCursor() const;

 private:
  friend class LogStore;
  DataSnapshot(const LogStore* store, const void* snapshot, char generation,
               uint64_t applied_index, std::optional<raftpb::ConfState> conf)
      : store_(store), snapshot_(snapshot), generation_(generation),
        applied_index_(applied_index), conf_(std::move(conf)) {}

  const LogStore* store_;
  const void* snapshot_;  // a const rocksdb::Snapshot*
  char generation_;
  uint64_t applied_index_;
  std::optional<raftpb::ConfState> conf_;
};

// A cursor over one view of `data` (LogStore::OpenDataCursor,
// DataSnapshot::OpenCursor). Thread-compatible. Not valid before the first
// Seek; key() and value() stay valid until the next Seek or Next. A storage
// error (DataLoss for a corrupt block) makes it invalid with status() set:
// check status() whenever Valid() turns false.
class DataCursor {
 public:
  ~DataCursor();
  DataCursor(const DataCursor&) = delete;
  DataCursor& operator=(const DataCursor&) = delete;

  uint64_t applied_index() const { return applied_index_; }
  void Seek(absl::string_view key);  // to the first key >= key
  void Next();                       // REQUIRES: Valid()
  // The value of `key` in the cursor's view (a point read: cheaper than a
  // Seek, which positions every level of the tree); NotFound if absent.
  // Leaves the cursor's position alone. REQUIRES: opened with point reads
  // (OpenDataCursor(true), or DataSnapshot::OpenCursor).
  absl::StatusOr<std::string> Get(absl::string_view key) const;
  bool Valid() const;
  absl::string_view key() const;    // REQUIRES: Valid()
  absl::string_view value() const;  // REQUIRES: Valid()
  absl::Status status() const;

 private:
  friend class LogStore;
  friend class DataSnapshot;
  DataCursor(const LogStore* store, void* iterator, const void* snapshot, bool owns_snapshot,
             char generation, uint64_t applied_index)
      : store_(store),
        it_(iterator),
        snapshot_(snapshot),
        owns_snapshot_(owns_snapshot),
        generation_(generation),
        applied_index_(applied_index) {}

  const LogStore* store_;
  void* it_;  // an owned rocksdb::Iterator*
  const void* snapshot_;  // the rocksdb::Snapshot* the iterator reads
  bool owns_snapshot_;
  char generation_;
  uint64_t applied_index_;
};

}  // namespace raftkv::storage

#endif  // RAFTKV_STORAGE_LOG_STORE_H_
