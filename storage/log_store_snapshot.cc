// LogStore: point-in-time views of `data`, and staging and installing a
// snapshot received from the leader (see log_store.h).
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "storage/encoding.h"
#include "storage/log_store.h"
#include "storage/rocks_status.h"

namespace raftkv::storage {

std::optional<raftpb::ConfState> LogStore::applied_conf() const {
  absl::MutexLock lock(&apply_mu_);
  return applied_conf_;
}

absl::Status LogStore::SyncWal() {
  if (absl::Status refused = RefuseAfterFailure("SyncWAL"); !refused.ok()) return refused;
  rocksdb::Status s = db_->SyncWAL();
  if (!s.ok()) {
    absl::Status failed = Annotate(FromRocks(s, "SyncWAL"));
    LatchFailure(failed);
    return failed;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DataSnapshot>> LogStore::OpenDataSnapshot() const {
  // Taken under apply_mu_, so the view, applied index, membership and
  // generation all belong to one moment.
  absl::MutexLock lock(&apply_mu_);
  const rocksdb::Snapshot* snap = db_->GetSnapshot();
  return std::unique_ptr<DataSnapshot>(new DataSnapshot(
      this, snap, generation_.load(), applied_index_.load(), applied_conf_));
}

DataSnapshot::~DataSnapshot() {
  store_->db_->ReleaseSnapshot(static_cast<const rocksdb::Snapshot*>(snapshot_));
}

absl::Status DataSnapshot::Scan(
    absl::string_view start_after,
    absl::FunctionRef<bool(absl::string_view, absl::string_view)> fn) const {
  rocksdb::ReadOptions ro = LogStore::ReadOpts();
  ro.snapshot = static_cast<const rocksdb::Snapshot*>(snapshot_);
  ro.fill_cache = false;  // a one-pass bulk read
  std::unique_ptr<rocksdb::Iterator> it(store_->db_->NewIterator(ro, store_->data_cf_));
  std::string start(1, generation_);
  start.append(start_after.data(), start_after.size());
  it->Seek(start);
  if (!start_after.empty() && it->Valid() && it->key() == rocksdb::Slice(start)) it->Next();
  for (; it->Valid(); it->Next()) {
    if (it->key().size() == 0 || it->key()[0] != generation_) break;
    if (!fn(absl::string_view(it->key().data() + 1, it->key().size() - 1),
            absl::string_view(it->value().data(), it->value().size()))) {
      break;
    }
  }
  if (!it->status().ok()) return store_->Annotate(FromRocks(it->status(), "snapshot scan"));
  return absl::OkStatus();
}

std::unique_ptr<DataCursor> DataSnapshot::OpenCursor() const {
  rocksdb::ReadOptions ro = LogStore::ReadOpts();
  ro.snapshot = static_cast<const rocksdb::Snapshot*>(snapshot_);
  return std::unique_ptr<DataCursor>(new DataCursor(store_,
                                                    store_->db_->NewIterator(ro, store_->data_cf_),
                                                    snapshot_, /*owns_snapshot=*/false,
                                                    generation_, applied_index_));
}

absl::Status LogStore::BeginStaging() {
  rocksdb::WriteBatch batch;
  ClearGeneration(&batch, OtherGeneration(generation_.load()));
  return Write(&batch, "BeginStaging", /*sync=*/false);
}

absl::Status LogStore::StageData(const DataBatch& puts) {
  rocksdb::WriteBatch batch;
  AddDataChanges(&batch, puts, OtherGeneration(generation_.load()));
  return Write(&batch, "StageData", /*sync=*/false);
}

absl::Status LogStore::InstallStaged(const raftpb::SnapshotMetadata& meta) {
  // The staged writes were not synced: make them durable before the write
  // that makes them live.
  if (absl::Status s = SyncWal(); !s.ok()) return s;
  absl::MutexLock write_lock(&write_mu_);
  absl::MutexLock lock(&mu_);
  absl::MutexLock apply_lock(&apply_mu_);
  if (meta.index() <= snapshot_.index()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot out of date: index ", meta.index(), " is not past the current snapshot index ",
        snapshot_.index()));
  }
  if (applied_index_.load() > meta.index()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the data already reflects index ", applied_index_.load(), ", past the snapshot index ",
        meta.index()));
  }
  bool keep_suffix = false;
  if (meta.index() <= last_index_) {
    absl::StatusOr<uint64_t> t = TermLocked(meta.index());
    keep_suffix = t.ok() && *t == meta.term();
  }
  if (!keep_suffix) {
    if (absl::Status s = LowerMarkForDiscardLocked(meta); !s.ok()) return s;
  }
  const char old_gen = generation_.load();
  const char new_gen = OtherGeneration(old_gen);
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
  batch.Put(meta_cf_, kAppliedIndexKey, EncodeFixed64BE(meta.index()));
  batch.Put(meta_cf_, kAppliedConfKey, meta.conf_state().SerializeAsString());
  batch.Put(meta_cf_, kDataGenerationKey, std::string(1, new_gen));
  DataChange change(this);
  if (absl::Status s = Write(&batch, "InstallStaged", /*sync=*/true); !s.ok()) return s;

  if (keep_suffix) {
    cache_.DropThrough(meta.index());
  } else {
    cache_.Clear();
  }
  snapshot_ = meta;
  hard_state_ = std::move(hs);
  last_index_ = new_last;
  last_term_ = new_last_term;
  applied_index_.store(meta.index());
  applied_conf_ = meta.conf_state();
  generation_.store(new_gen);
  NoteDurableLocked();

  rocksdb::WriteBatch cleanup;
  ClearGeneration(&cleanup, old_gen);
  absl::Status s = Write(&cleanup, "dropping the old data generation", /*sync=*/false);
  LOG_IF(WARNING, !s.ok()) << s << " (it is cleared at the next start)";
  return absl::OkStatus();
}

}  // namespace raftkv::storage
