// LogStore: the read (LogReader) and write paths. Open and recovery are in
// log_store_open.cc.
#include "storage/log_store.h"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "storage/encoding.h"
#include "storage/rocks_status.h"

namespace raftkv::storage {
namespace {

bool SameIdentity(const storagepb::NodeIdentity& a,
                  const storagepb::NodeIdentity& b) {
  return a.cluster_id() == b.cluster_id() && a.node_id() == b.node_id();
}

std::string IdentityString(const storagepb::NodeIdentity& id) {
  return absl::StrCat("cluster ", id.cluster_id(), " node ", id.node_id());
}

// The LogReader's error for an index the log no longer holds.
absl::Status Compacted(uint64_t i, uint64_t first_index) {
  return absl::FailedPreconditionError(absl::StrCat(
      "compacted: index ", i, " is no longer in the log (first index ",
      first_index, ")"));
}

}  // namespace

rocksdb::ReadOptions LogStore::ReadOpts() {
  rocksdb::ReadOptions ro;
  // RocksDB's default, made explicit: every block read is checked against
  // its checksum, so a corrupt block fails the read (Corruption -> DataLoss)
  // and is never returned as data or skipped.
  ro.verify_checksums = true;
  return ro;
}

std::vector<LogStore::SstFile> LogStore::LiveSstFiles() const {
  std::vector<rocksdb::LiveFileMetaData> live;
  db_->GetLiveFilesMetaData(&live);
  std::vector<SstFile> out;
  out.reserve(live.size());
  for (const rocksdb::LiveFileMetaData& f : live) {
    // name is "/000012.sst", relative to db_path.
    out.push_back(SstFile{f.db_path + f.name, f.column_family_name, f.size});
  }
  return out;
}

LogStore::DataSize LogStore::DataSizes() const {
  DataSize out;
  // Properties of the open column family: no I/O. A missing one reads as 0.
  uint64_t v = 0;
  if (db_->GetIntProperty(data_cf_, rocksdb::DB::Properties::kLiveSstFilesSize, &v)) {
    out.sst_bytes = v;
  }
  if (db_->GetIntProperty(data_cf_, rocksdb::DB::Properties::kSizeAllMemTables, &v)) {
    out.memtable_bytes = v;
  }
  if (db_->GetIntProperty(data_cf_, rocksdb::DB::Properties::kEstimateLiveDataSize, &v)) {
    out.live_bytes_estimate = v;
  }
  return out;
}

absl::Status LogStore::CompactData() {
  rocksdb::CompactRangeOptions o;
  o.exclusive_manual_compaction = false;
  o.max_subcompactions = 1;
  o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  return FromRocks(db_->CompactRange(o, data_cf_, nullptr, nullptr), "compacting data");
}

// ---- Writes -----------------------------------------------------------------

absl::Status LogStore::Write(rocksdb::WriteBatch* batch,
                             absl::string_view what) {
  return Write(batch, what, options_.sync);
}

absl::Status LogStore::Write(rocksdb::WriteBatch* batch,
                             absl::string_view what, bool sync) {
  if (absl::Status refused = RefuseAfterFailure(what); !refused.ok()) return refused;
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::Status s = db_->Write(wo, batch);
  if (!s.ok()) {
    LOG(ERROR) << "storage dir " << dir() << ": " << what
               << " failed: " << s.ToString();
    absl::Status failed = Annotate(FromRocks(s, what));
    LatchFailure(failed);
    return failed;
  }
  return absl::OkStatus();
}

void LogStore::LatchFailure(const absl::Status& s) {
  absl::MutexLock lock(&failure_mu_);
  if (!write_failure_.ok()) return;
  write_failure_ = s;
  write_failed_.store(true);
}

absl::Status LogStore::write_failure() const {
  if (!write_failed_.load()) return absl::OkStatus();
  absl::MutexLock lock(&failure_mu_);
  return write_failure_;
}

absl::Status LogStore::RefuseAfterFailure(absl::string_view what) const {
  absl::Status failure = write_failure();
  if (failure.ok()) return failure;
  return absl::Status(failure.code(),
                      absl::StrCat(what, " refused: an earlier write failed: ", failure.message()));
}

void LogStore::DeleteLogRange(rocksdb::WriteBatch* batch, uint64_t lo,
                              uint64_t hi) {
  if (lo >= hi) return;
  batch->DeleteRange(log_cf_, LogKey(lo), LogKey(hi));
}

absl::Status LogStore::ClearData(rocksdb::WriteBatch* batch) {
  ClearGeneration(batch, generation_.load());
  return absl::OkStatus();
}

void LogStore::ClearGeneration(rocksdb::WriteBatch* batch, char g) {
  // [g, g+1) is the whole key space of generation g.
  batch->DeleteRange(data_cf_, std::string(1, g), std::string(1, static_cast<char>(g + 1)));
}

void LogStore::AddDataChanges(rocksdb::WriteBatch* batch,
                              const DataBatch& changes, char generation) {
  std::string key;
  for (const DataBatch::Op& op : changes.ops()) {
    key.assign(1, generation);
    key += op.key;
    if (op.type == DataBatch::OpType::kPut) {
      batch->Put(data_cf_, key, op.value);
    } else {
      batch->Delete(data_cf_, key);
    }
  }
}

absl::Status LogStore::Bootstrap(const storagepb::NodeIdentity& identity,
                                 const raftpb::ConfState& initial_conf) {
  if (identity.cluster_id() == 0 || identity.node_id() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Bootstrap: zero id in ", IdentityString(identity)));
  }
  absl::MutexLock write_lock(&write_mu_);
  absl::MutexLock lock(&mu_);
  if (identity_.has_value()) {
    if (SameIdentity(*identity_, identity)) return absl::OkStatus();
    return Annotate(absl::FailedPreconditionError(absl::StrCat(
        "identity mismatch: the store belongs to ", IdentityString(*identity_),
        ", refusing to bootstrap it as ", IdentityString(identity))));
  }
  if (options_.expected_identity.has_value() &&
      !SameIdentity(*options_.expected_identity, identity)) {
    return Annotate(absl::FailedPreconditionError(absl::StrCat(
        "identity mismatch: opened for ",
        IdentityString(*options_.expected_identity),
        ", refusing to bootstrap it as ", IdentityString(identity))));
  }
  if (last_index_ != 0 || snapshot_.index() != 0 || hard_state_.term() != 0 ||
      hard_state_.vote() != 0 || hard_state_.commit() != 0 ||
      applied_index_.load() != 0) {
    return Annotate(absl::FailedPreconditionError(
        "refusing to bootstrap: the store has state but no identity"));
  }
  raftpb::SnapshotMetadata snapshot;
  *snapshot.mutable_conf_state() = initial_conf;
  rocksdb::WriteBatch batch;
  batch.Put(meta_cf_, kIdentityKey, identity.SerializeAsString());
  batch.Put(meta_cf_, kSnapshotKey, snapshot.SerializeAsString());
  if (absl::Status s = Write(&batch, "Bootstrap"); !s.ok()) return s;
  identity_ = identity;
  snapshot_ = std::move(snapshot);
  return absl::OkStatus();
}

std::optional<storagepb::NodeIdentity> LogStore::identity() const {
  absl::ReaderMutexLock lock(&mu_);
  return identity_;
}

absl::Status LogStore::SetIncarnation(uint64_t incarnation) {
  absl::MutexLock write_lock(&write_mu_);
  absl::MutexLock lock(&mu_);
  if (!identity_.has_value() || identity_->incarnation() != 0 || incarnation == 0) {
    return Annotate(absl::FailedPreconditionError(
        "SetIncarnation: only a bootstrapped store without one gets an incarnation"));
  }
  storagepb::NodeIdentity id = *identity_;
  id.set_incarnation(incarnation);
  rocksdb::WriteBatch batch;
  batch.Put(meta_cf_, kIdentityKey, id.SerializeAsString());
  if (absl::Status s = Write(&batch, "SetIncarnation", /*sync=*/true); !s.ok()) return s;
  identity_ = std::move(id);
  return absl::OkStatus();
}

std::map<uint64_t, uint64_t> LogStore::PeerIncarnations() const {
  absl::ReaderMutexLock lock(&mu_);
  return peer_incarnations_;
}

absl::Status LogStore::RecordPeerIncarnation(uint64_t node_id, uint64_t incarnation) {
  absl::MutexLock write_lock(&write_mu_);
  absl::MutexLock lock(&mu_);
  const std::string key = std::string(kPeerIncarnationPrefix) + EncodeFixed64BE(node_id);
  rocksdb::WriteBatch batch;
  if (incarnation == 0) {
    batch.Delete(meta_cf_, key);
  } else {
    batch.Put(meta_cf_, key, EncodeFixed64BE(incarnation));
  }
  if (absl::Status s = Write(&batch, "RecordPeerIncarnation", /*sync=*/true); !s.ok()) return s;
  if (incarnation == 0) {
    peer_incarnations_.erase(node_id);
  } else {
    peer_incarnations_[node_id] = incarnation;
  }
  return absl::OkStatus();
}

absl::Status LogStore::Append(const std::vector<raftpb::Entry>& entries,
                              const raftpb::HardState* hs) {
  if (entries.empty() && hs == nullptr) return absl::OkStatus();
  // Only writers change the log side, and they hold write_mu_: what is
  // checked under the shared lock below still holds when the write is done.
  absl::MutexLock write_lock(&write_mu_);
  if (absl::Status s = MarkerError(); !s.ok()) return s;
  rocksdb::WriteBatch batch;
  uint64_t new_last;
  bool must_sync;
  std::optional<DurableMark> lowered;  // set if the write removes the marked entry
  {
    absl::ReaderMutexLock lock(&mu_);
    new_last = last_index_;
    if (!entries.empty()) {
      const uint64_t first = entries.front().index();
      if (first <= snapshot_.index()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Append: first index ", first, " is not past the snapshot index ",
            snapshot_.index()));
      }
      if (first > last_index_ + 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "Append: first index ", first, " leaves a gap after the last index ",
            last_index_));
      }
      for (size_t i = 1; i < entries.size(); ++i) {
        if (entries[i].index() != first + i) {
          return absl::InvalidArgumentError(absl::StrCat(
              "Append: entries not contiguous: index ", entries[i].index(),
              " at position ", i, " after first index ", first));
        }
      }
      new_last = entries.back().index();
      if (new_last == ~uint64_t{0}) {
        return absl::InvalidArgumentError("Append: index overflow");
      }
      // Replacing a suffix that holds the marked entry: the new entries may
      // end with an older term (a newer leader's log), which the old mark
      // would call a rollback. Only conflicts get here, never the hot path.
      if (KeepsMark() && first <= durable_.last_index) {
        absl::StatusOr<uint64_t> t = TermLocked(first - 1);
        if (!t.ok()) return t.status();
        lowered = durable_;
        lowered->last_index = first - 1;
        lowered->last_term = *t;
      }
    }
    const uint64_t new_commit = hs != nullptr ? hs->commit() : hard_state_.commit();
    if (new_commit > new_last) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Append: commit index ", new_commit, " would pass the last index ",
          new_last));
    }
    std::string buf;
    for (const raftpb::Entry& e : entries) {
      buf.clear();
      e.SerializeToString(&buf);
      batch.Put(log_cf_, LogKey(e.index()), buf);
    }
    if (!entries.empty()) DeleteLogRange(&batch, new_last + 1, last_index_ + 1);
    if (hs != nullptr) batch.Put(meta_cf_, kHardStateKey, hs->SerializeAsString());
    // Entries, term and vote must be durable before anyone hears of them
    // (§5.1, Figure 2); the commit index alone need not (it is volatile state
    // in Figure 2: a crash only recovers an older one, re-learned from the
    // leader, or raised to the applied index on restart).
    must_sync = !entries.empty() ||
                (hs != nullptr && (hs->term() != hard_state_.term() ||
                                   hs->vote() != hard_state_.vote()));
  }
  if (lowered.has_value()) {
    // Written without mu_, so readers go on meanwhile; write_mu_ keeps
    // other writers (and so durable_) still.
    uint64_t seq;
    {
      absl::MutexLock lock(&mu_);
      seq = SetDurableLocked(*lowered);
    }
    if (absl::Status s = WriteMarkIfNewer(*lowered, seq); !s.ok()) return s;
  }
  // Written unsynced, then the WAL synced: unlike a synced Write, this does
  // not hold RocksDB's write queue for the flush, so the state machine's
  // (unsynced) writes from another thread are not stalled behind it.
  if (absl::Status s = Write(&batch, "Append", /*sync=*/false); !s.ok()) return s;
  if (must_sync && options_.sync) {
    if (absl::Status s = SyncWal(); !s.ok()) {
      LOG(ERROR) << "storage dir " << dir() << ": Append: " << s;
      return s;
    }
  }
  absl::MutexLock lock(&mu_);
  if (!entries.empty()) {
    last_index_ = new_last;
    last_term_ = entries.back().term();
    cache_.Append(entries);
  }
  if (hs != nullptr) hard_state_ = *hs;
  if (must_sync && options_.sync) NoteDurableLocked();
  return absl::OkStatus();
}

absl::Status LogStore::Compact(uint64_t index, uint64_t term,
                               const raftpb::ConfState& conf_state) {
  absl::MutexLock write_lock(&write_mu_);
  absl::MutexLock lock(&mu_);
  if (index <= snapshot_.index()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "compacted: Compact(", index, ") is not past the snapshot index ",
        snapshot_.index()));
  }
  if (index > applied_index_.load()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Compact(", index, "): not applied yet (applied index ",
        applied_index_.load(), ")"));
  }
  if (index > last_index_) {
    return absl::OutOfRangeError(absl::StrCat(
        "Compact(", index, ") is past the last index ", last_index_));
  }
  absl::StatusOr<uint64_t> stored = TermLocked(index);
  if (!stored.ok()) return stored.status();
  if (*stored != term) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Compact(", index, "): term ", term, " differs from the log's ",
        *stored));
  }
  raftpb::SnapshotMetadata snapshot;
  snapshot.set_index(index);
  snapshot.set_term(term);
  *snapshot.mutable_conf_state() = conf_state;

  rocksdb::WriteBatch batch;
  // From 0, not the first index: also sweeps any stray key below it.
  DeleteLogRange(&batch, 0, index + 1);
  batch.Put(meta_cf_, kSnapshotKey, snapshot.SerializeAsString());
  if (absl::Status s = Write(&batch, "Compact"); !s.ok()) return s;
  snapshot_ = std::move(snapshot);
  cache_.DropThrough(index);
  if (options_.sync) NoteDurableLocked();
  return absl::OkStatus();
}

absl::Status LogStore::ApplySnapshot(const raftpb::SnapshotMetadata& meta,
                                     const DataBatch* data) {
  absl::MutexLock write_lock(&write_mu_);
  absl::MutexLock lock(&mu_);
  absl::MutexLock apply_lock(&apply_mu_);
  if (meta.index() <= snapshot_.index()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot out of date: index ", meta.index(),
        " is not past the current snapshot index ", snapshot_.index()));
  }
  const uint64_t applied = applied_index_.load();
  if (data == nullptr && applied < meta.index()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "ApplySnapshot without data: applied index ", applied,
        " is below the snapshot index ", meta.index()));
  }
  if (data != nullptr && applied > meta.index()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "ApplySnapshot: the data already reflects index ", applied,
        ", past the snapshot index ", meta.index()));
  }
  bool keep_suffix = false;
  if (meta.index() <= last_index_) {
    absl::StatusOr<uint64_t> t = TermLocked(meta.index());
    if (!t.ok()) return t.status();
    keep_suffix = *t == meta.term();
  }

  if (!keep_suffix) {
    if (absl::Status s = LowerMarkForDiscardLocked(meta); !s.ok()) return s;
  }

  rocksdb::WriteBatch batch;
  uint64_t new_last = last_index_;
  uint64_t new_last_term = last_term_;
  if (keep_suffix) {
    DeleteLogRange(&batch, 0, meta.index() + 1);
  } else {
    DeleteLogRange(&batch, 0, last_index_ + 1);
    new_last = meta.index();
    new_last_term = meta.term();
  }
  batch.Put(meta_cf_, kSnapshotKey, meta.SerializeAsString());
  raftpb::HardState hs = hard_state_;
  if (hs.commit() < meta.index()) {
    hs.set_commit(meta.index());
    batch.Put(meta_cf_, kHardStateKey, hs.SerializeAsString());
  }
  if (data != nullptr) {
    if (absl::Status s = ClearData(&batch); !s.ok()) return s;
    AddDataChanges(&batch, *data, generation_.load());
    batch.Put(meta_cf_, kAppliedIndexKey, EncodeFixed64BE(meta.index()));
  }
  std::optional<DataChange> change;
  if (data != nullptr) change.emplace(this);
  if (absl::Status s = Write(&batch, "ApplySnapshot"); !s.ok()) return s;

  if (keep_suffix) {
    cache_.DropThrough(meta.index());
  } else {
    cache_.Clear();
  }
  snapshot_ = meta;
  hard_state_ = std::move(hs);
  last_index_ = new_last;
  last_term_ = new_last_term;
  if (data != nullptr) applied_index_.store(meta.index());
  if (options_.sync) NoteDurableLocked();
  return absl::OkStatus();
}

raftpb::HardState LogStore::hard_state() const {
  absl::ReaderMutexLock lock(&mu_);
  return hard_state_;
}

template <typename F>
uint64_t LogStore::ReadConsistent(F read) const {
  for (int tries = 0; tries < 3; ++tries) {
    const uint64_t seq = data_seq_.load();
    if (seq % 2 == 0) {
      const uint64_t index = applied_index_.load();
      read();
      std::atomic_thread_fence(std::memory_order_acquire);
      if (data_seq_.load() == seq) return index;
    }
    std::this_thread::yield();
  }
  absl::MutexLock lock(&apply_mu_);  // no change starts meanwhile
  read();
  return applied_index_.load();
}

absl::Status LogStore::ApplyBatch(const DataBatch& changes,
                                  uint64_t applied_index,
                                  const raftpb::ConfState* conf) {
  absl::MutexLock lock(&apply_mu_);
  const uint64_t current = applied_index_.load();
  if (applied_index <= current) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ApplyBatch: applied index ", applied_index,
        " does not advance the current ", current));
  }
  rocksdb::WriteBatch batch;
  AddDataChanges(&batch, changes, generation_.load());
  batch.Put(meta_cf_, kAppliedIndexKey, EncodeFixed64BE(applied_index));
  DataChange change(this);
  if (conf != nullptr) batch.Put(meta_cf_, kAppliedConfKey, conf->SerializeAsString());
  if (absl::Status s =
          Write(&batch, "ApplyBatch", options_.sync && options_.sync_data);
      !s.ok()) {
    return s;
  }
  applied_index_.store(applied_index);
  if (conf != nullptr) applied_conf_ = *conf;
  return absl::OkStatus();
}

absl::StatusOr<std::string> LogStore::Get(absl::string_view key, uint64_t* applied) const {
  std::string value;
  rocksdb::Status s;
  auto read = [&] {
    value.clear();
    s = db_->Get(ReadOpts(), data_cf_, DataKey(key), &value);
  };
  if (applied != nullptr) {
    *applied = ReadConsistent(read);
  } else {
    read();
  }
  if (s.IsNotFound()) return absl::NotFoundError("key not found");
  if (!s.ok()) return Annotate(FromRocks(s, "Get"));
  return value;
}

absl::Status LogStore::ScanData(absl::string_view start,
                                absl::FunctionRef<bool(absl::string_view, absl::string_view)> fn,
                                uint64_t* applied) const {
  // An iterator reads from an implicit snapshot taken at its creation.
  std::unique_ptr<rocksdb::Iterator> it;
  char g = 0;
  auto open = [&] {
    it.reset(db_->NewIterator(ReadOpts(), data_cf_));
    g = generation_.load();
  };
  if (applied != nullptr) {
    *applied = ReadConsistent(open);
  } else {
    open();
  }
  for (it->Seek(DataKey(start)); it->Valid(); it->Next()) {
    if (it->key().size() == 0 || it->key()[0] != g) break;
    if (!fn(absl::string_view(it->key().data() + 1, it->key().size() - 1),
            absl::string_view(it->value().data(), it->value().size()))) {
      break;
    }
  }
  if (!it->status().ok()) return Annotate(FromRocks(it->status(), "ScanData"));
  return absl::OkStatus();
}

std::unique_ptr<DataCursor> LogStore::OpenDataCursor(bool point_reads) const {
  rocksdb::Iterator* it = nullptr;
  const rocksdb::Snapshot* snap = nullptr;
  char g = 0;
  const uint64_t applied = ReadConsistent([&] {
    delete it;
    if (snap != nullptr) db_->ReleaseSnapshot(snap);
    // Without a snapshot the iterator takes an implicit one of its own.
    snap = point_reads ? db_->GetSnapshot() : nullptr;
    rocksdb::ReadOptions ro = ReadOpts();
    ro.snapshot = snap;
    it = db_->NewIterator(ro, data_cf_);
    g = generation_.load();
  });
  return std::unique_ptr<DataCursor>(
      new DataCursor(this, it, snap, /*owns_snapshot=*/true, g, applied));
}

absl::Status LogStore::RemoveUnreachable(const std::vector<std::string>& keys,
                                         const DataCursor& read_from) {
  if (keys.empty()) return absl::OkStatus();
  // apply_mu_ keeps a snapshot install from switching generations between
  // the check and the write.
  absl::MutexLock lock(&apply_mu_);
  if (generation_.load() != read_from.generation_) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  for (const std::string& k : keys) {
    std::string key(1, read_from.generation_);
    key += k;
    batch.Delete(data_cf_, key);
  }
  return Write(&batch, "RemoveUnreachable", /*sync=*/false);
}

DataCursor::~DataCursor() {
  delete static_cast<rocksdb::Iterator*>(it_);
  if (owns_snapshot_ && snapshot_ != nullptr) {
    store_->db_->ReleaseSnapshot(static_cast<const rocksdb::Snapshot*>(snapshot_));
  }
}

absl::StatusOr<std::string> DataCursor::Get(absl::string_view key) const {
  CHECK(snapshot_ != nullptr) << "DataCursor::Get on a cursor opened without point reads";
  rocksdb::ReadOptions ro = LogStore::ReadOpts();
  ro.snapshot = static_cast<const rocksdb::Snapshot*>(snapshot_);
  std::string k(1, generation_);
  k.append(key.data(), key.size());
  std::string value;
  rocksdb::Status s = store_->db_->Get(ro, store_->data_cf_, k, &value);
  if (s.IsNotFound()) return absl::NotFoundError("key not found");
  if (!s.ok()) return store_->Annotate(FromRocks(s, "reading data"));
  return value;
}

void DataCursor::Seek(absl::string_view key) {
  std::string k(1, generation_);
  k.append(key.data(), key.size());
  static_cast<rocksdb::Iterator*>(it_)->Seek(k);
}

void DataCursor::Next() { static_cast<rocksdb::Iterator*>(it_)->Next(); }

bool DataCursor::Valid() const {
  auto* it = static_cast<rocksdb::Iterator*>(it_);
  return it->Valid() && it->key().size() > 0 && it->key()[0] == generation_;
}

absl::string_view DataCursor::key() const {
  rocksdb::Slice k = static_cast<rocksdb::Iterator*>(it_)->key();
  return absl::string_view(k.data() + 1, k.size() - 1);
}

absl::string_view DataCursor::value() const {
  rocksdb::Slice v = static_cast<rocksdb::Iterator*>(it_)->value();
  return absl::string_view(v.data(), v.size());
}

absl::Status DataCursor::status() const {
  rocksdb::Status s = static_cast<rocksdb::Iterator*>(it_)->status();
  if (s.ok()) return absl::OkStatus();
  return store_->Annotate(FromRocks(s, "reading data"));
}

// ---- raft::LogReader ----------------------------------------------------------

absl::StatusOr<raft::InitialState> LogStore::GetInitialState() const {
  absl::ReaderMutexLock lock(&mu_);
  raft::InitialState state;
  state.hard_state = hard_state_;
  state.snapshot = snapshot_;
  return state;
}

absl::StatusOr<raftpb::Entry> LogStore::ReadEntry(uint64_t i) const {
  std::string value;
  rocksdb::Status s =
      db_->Get(ReadOpts(), log_cf_, LogKey(i), &value);
  if (s.IsNotFound()) {
    return Annotate(absl::DataLossError(
        absl::StrCat("log entry ", i, " is missing")));
  }
  if (!s.ok()) return Annotate(FromRocks(s, absl::StrCat("reading entry ", i)));
  raftpb::Entry e;
  if (!e.ParseFromString(value) || e.index() != i) {
    return Annotate(absl::DataLossError(
        absl::StrCat("malformed log entry at index ", i)));
  }
  return e;
}

absl::StatusOr<uint64_t> LogStore::TermLocked(uint64_t i) const {
  if (i < snapshot_.index()) return Compacted(i, snapshot_.index() + 1);
  if (i == snapshot_.index()) return snapshot_.term();
  if (i > last_index_) {
    return absl::OutOfRangeError(absl::StrCat(
        "index ", i, " is past the last index ", last_index_));
  }
  if (i == last_index_) return last_term_;
  if (std::optional<uint64_t> t = cache_.Term(i)) return *t;
  absl::StatusOr<raftpb::Entry> e = ReadEntry(i);
  if (!e.ok()) return e.status();
  return e->term();
}

absl::StatusOr<uint64_t> LogStore::Term(uint64_t i) const {
  absl::ReaderMutexLock lock(&mu_);
  return TermLocked(i);
}

absl::StatusOr<std::vector<raftpb::Entry>> LogStore::Entries(
    uint64_t lo, uint64_t hi, uint64_t max_bytes) const {
  absl::ReaderMutexLock lock(&mu_);
  if (lo > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("Entries: lo ", lo, " > hi ", hi));
  }
  if (lo <= snapshot_.index()) return Compacted(lo, snapshot_.index() + 1);
  if (hi > last_index_ + 1) {
    return absl::OutOfRangeError(absl::StrCat(
        "Entries: hi ", hi, " is past the last index ", last_index_, " + 1"));
  }
  std::vector<raftpb::Entry> out;
  if (lo == hi) return out;
  if (cache_.Get(lo, hi, max_bytes, &out)) return out;

  const std::string upper = LogKey(hi);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro = ReadOpts();
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, log_cf_));
  uint64_t expected = lo;
  uint64_t total = 0;
  bool budget_hit = false;
  for (it->Seek(LogKey(lo)); it->Valid(); it->Next()) {
    std::optional<uint64_t> index = DecodeLogKey(
        absl::string_view(it->key().data(), it->key().size()));
    if (index != expected) {
      return Annotate(absl::DataLossError(
          absl::StrCat("log entry ", expected, " is missing")));
    }
    const rocksdb::Slice v = it->value();
    if (!out.empty() && (total > max_bytes || v.size() > max_bytes - total)) {
      budget_hit = true;
      break;
    }
    total += v.size();
    raftpb::Entry& e = out.emplace_back();
    if (!e.ParseFromArray(v.data(), static_cast<int>(v.size())) ||
        e.index() != expected) {
      return Annotate(absl::DataLossError(
          absl::StrCat("malformed log entry at index ", expected)));
    }
    ++expected;
  }
  if (!it->status().ok()) {
    return Annotate(FromRocks(it->status(), "reading entries"));
  }
  if (!budget_hit && expected != hi) {
    return Annotate(absl::DataLossError(
        absl::StrCat("log entry ", expected, " is missing")));
  }
  return out;
}

uint64_t LogStore::FirstIndex() const {
  absl::ReaderMutexLock lock(&mu_);
  return snapshot_.index() + 1;
}

uint64_t LogStore::LastIndex() const {
  absl::ReaderMutexLock lock(&mu_);
  return last_index_;
}

absl::StatusOr<raftpb::Snapshot> LogStore::GetSnapshot() const {
  absl::ReaderMutexLock lock(&mu_);
  raftpb::Snapshot snapshot;
  *snapshot.mutable_metadata() = snapshot_;
  return snapshot;
}

}  // namespace raftkv::storage
