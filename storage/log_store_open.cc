// LogStore: Options, Open and recovery (the checks a store must pass to
// start). The read and write paths are in log_store.cc.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "storage/encoding.h"
#include "storage/fail_stop_file_system.h"
#include "storage/info_log.h"
#include "storage/log_store.h"
#include "storage/rocks_status.h"
#include "storage/wal_file_system.h"
#include "storage/wal_repair.h"

namespace raftkv::storage {
namespace {

constexpr char kDefaultColumnFamily[] = "default";

// RocksDB's default CF is unused but always exists; ours follow it.
const std::vector<std::string>& ColumnFamilyNames() {
  static const auto* names = new std::vector<std::string>{
      kDefaultColumnFamily, kLogColumnFamily, kMetaColumnFamily,
      kDataColumnFamily};
  return *names;
}

rocksdb::DBOptions MakeDBOptions(const Options& options, rocksdb::Env* env) {
  rocksdb::DBOptions db;
  db.env = env;
  db.create_if_missing = options.create_if_missing;
  db.create_missing_column_families = options.create_if_missing;
  db.paranoid_checks = true;
  // WAL recovery is DB-wide (one WAL serves every column family). A torn
  // last record is what a crash mid-write leaves and is dropped; damage
  // anywhere before it refuses to open, where RocksDB's default
  // (kPointInTimeRecovery) would silently drop every later write, synced or
  // not. docs/DURABILITY.md gives the reasons.
  db.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  // The MANIFEST records each WAL's creation and closed size: a missing or
  // truncated older WAL refuses to open. The live WAL is covered by the
  // durable mark (storage/durable_mark.h).
  db.track_and_verify_wals_in_manifest = true;
  db.max_background_jobs = 2;
  db.max_file_opening_threads = options.table_open_threads;
  db.keep_log_file_num = 4;  // unused with info_log (InfoLog keeps as many)
  // `meta` sees few writes; cap the WAL so its memtable gets flushed and old
  // WAL files can be dropped.
  db.max_total_wal_size = 128 << 20;
  db.max_open_files = options.max_open_files;
  return db;
}

rocksdb::ColumnFamilyOptions MakeCFOptions(const Options& options, const std::string& name) {
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = 32 << 20;
  if (name == kDataColumnFamily) {
    cf.write_buffer_size = options.data_memtable_bytes;
    // L0 compacts into L1 at level0_file_num_compaction_trigger files: an L1
    // of that size keeps each compaction's rewrite near its input.
    cf.max_bytes_for_level_base =
        options.data_memtable_bytes * std::max(cf.level0_file_num_compaction_trigger, 1);
    cf.target_file_size_base = options.data_memtable_bytes;
    // Point reads of keys that may be absent: a Bloom filter pays off.
    rocksdb::BlockBasedTableOptions table;
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    if (options.data_block_cache_bytes > 0) {
      table.block_cache = rocksdb::NewLRUCache(options.data_block_cache_bytes);
    } else {
      table.no_block_cache = true;
    }
    cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  }
  return cf;
}

absl::Status Prefixed(const std::string& dir, const absl::Status& s) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat("storage dir ", dir, ": ",
                                             s.message()));
}

std::string IdentityString(const storagepb::NodeIdentity& id) {
  return absl::StrCat("cluster ", id.cluster_id(), " node ", id.node_id());
}

}  // namespace

absl::Status Options::Validate() const {
  if (dir.empty()) return absl::InvalidArgumentError("Options.dir is empty");
  if (data_memtable_bytes < (64 << 10)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Options.data_memtable_bytes is ", data_memtable_bytes, "; at least 65536"));
  }
  if (max_open_files != -1 && max_open_files < 20) {
    return absl::InvalidArgumentError(
        absl::StrCat("Options.max_open_files is ", max_open_files, "; -1 or at least 20"));
  }
  if (table_open_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("Options.table_open_threads is ", table_open_threads, "; at least 1"));
  }
  if (expected_identity.has_value() &&
      (expected_identity->cluster_id() == 0 ||
       expected_identity->node_id() == 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Options.expected_identity has a zero id: ",
                     IdentityString(*expected_identity)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LogStore>> LogStore::Open(
    const Options& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  const std::string& dir = options.dir;

  std::error_code ec;
  const bool exists = std::filesystem::exists(dir + "/CURRENT", ec);
  if (!exists) {
    if (!options.create_if_missing) {
      return absl::NotFoundError(absl::StrCat(
          "storage dir ", dir, ": no store there (create_if_missing is false)"));
    }
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat(
          "storage dir ", dir, ": cannot create it: ", ec.message()));
    }
  }

  // The file system: the given Env's or the WAL-preallocating one
  // (wal_file_system.h), wrapped to report failed writes if asked.
  rocksdb::Env* env = options.env != nullptr ? options.env : WalPreallocatingEnv();
  std::unique_ptr<rocksdb::Env> own_env;
  if (options.on_write_failure) {
    auto fs = std::make_shared<FailStopFileSystem>(
        env->GetFileSystem(),
        [dir, handler = options.on_write_failure](const std::string& what,
                                                  const rocksdb::IOStatus& s) {
          handler(Prefixed(dir, FromRocks(s, what)));
        });
    own_env = rocksdb::NewCompositeEnv(fs);
    env = own_env.get();
  }
  rocksdb::DBOptions db_options = MakeDBOptions(options, env);
  // RocksDB's own info logger aborts the process once a full disk failed
  // one of its lines (info_log.h).
  db_options.info_log = InfoLog::Open(dir);
  if (exists) {
    std::vector<std::string> existing;
    rocksdb::Status s =
        rocksdb::DB::ListColumnFamilies(db_options, dir, &existing);
    if (!s.ok()) {
      return FromRocks(s, absl::StrCat("storage dir ", dir,
                                       ": listing column families"));
    }
    for (const std::string& name : existing) {
      bool known = false;
      for (const std::string& ours : ColumnFamilyNames()) known |= name == ours;
      if (!known) {
        return absl::FailedPreconditionError(absl::StrCat(
            "storage dir ", dir, ": not a raftkv store (column families ",
            absl::StrJoin(existing, ","), ")"));
      }
    }
  }

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : ColumnFamilyNames()) {
    descriptors.emplace_back(name, MakeCFOptions(options, name));
  }
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s =
      rocksdb::DB::Open(db_options, dir, descriptors, &handles, &db);
  if (s.IsCorruption() && exists) {
    // A crash mid-write leaves a torn record before the WAL's preallocated
    // zeros, which RocksDB refuses (wal_repair.h): cut it and open again.
    absl::StatusOr<std::optional<TornWalTail>> torn = RepairTornWalTail(dir);
    if (!torn.ok()) {
      LOG(ERROR) << "storage dir " << dir << ": " << torn.status();
    } else if (torn->has_value()) {
      LOG(WARNING) << "storage dir " << dir << ": the WAL " << (*torn)->wal
                   << " ended in a torn record (a crash mid-write; never synced, so never "
                   << "acknowledged): cut at byte " << (*torn)->cut_at << ", dropping "
                   << (*torn)->dropped << " bytes of it";
      s = rocksdb::DB::Open(db_options, dir, descriptors, &handles, &db);
    }
  }
  if (!s.ok()) {
    return FromRocks(s, absl::StrCat("storage dir ", dir, ": opening RocksDB"));
  }
  // From here on the LogStore owns db and handles (its destructor closes).
  std::unique_ptr<LogStore> store(
      new LogStore(options, std::move(own_env), db, std::move(handles)));
  if (absl::Status r = store->Recover(); !r.ok()) return r;
  if (store->KeepsMark()) {
    if (absl::Status w = store->WriteCurrentMark(); !w.ok()) return w;
    store->marker_ = std::thread([s = store.get()] { s->MarkerLoop(); });
  }
  return store;
}

LogStore::LogStore(const Options& options, std::unique_ptr<rocksdb::Env> env, rocksdb::DB* db,
                   std::vector<rocksdb::ColumnFamilyHandle*> handles)
    : options_(options),
      env_(std::move(env)),
      db_(db),
      log_cf_(handles.at(1)),
      meta_cf_(handles.at(2)),
      data_cf_(handles.at(3)),
      handles_(std::move(handles)),
      cache_(options.entry_cache_bytes) {}

LogStore::~LogStore() {
  if (marker_.joinable()) {
    {
      absl::MutexLock l(&marker_mu_);
      marker_stop_ = true;
    }
    marker_.join();
    // Every write is done: the mark becomes exact.
    absl::Status s = WriteCurrentMark();
    LOG_IF(ERROR, !s.ok()) << "storage dir " << dir() << ": " << s;
  }
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    db_->DestroyColumnFamilyHandle(h);
  }
  rocksdb::Status s = db_->Close();
  if (!s.ok()) LOG(WARNING) << "storage dir " << dir() << ": close: " << s.ToString();
  delete db_;
}

void LogStore::NoteDurableLocked() {
  DurableMark now;
  now.term = hard_state_.term();
  now.commit = hard_state_.commit();
  now.last_index = last_index_;
  now.last_term = last_term_;
  if (now != durable_) SetDurableLocked(now);
}

uint64_t LogStore::SetDurableLocked(const DurableMark& mark) {
  durable_ = mark;
  return ++durable_seq_;
}

absl::Status LogStore::LowerMarkForDiscardLocked(const raftpb::SnapshotMetadata& meta) {
  if (!KeepsMark() || meta.index() >= durable_.last_index) return absl::OkStatus();
  DurableMark lowered = durable_;
  lowered.last_index = snapshot_.index();
  lowered.last_term = snapshot_.term();
  return WriteMarkIfNewer(lowered, SetDurableLocked(lowered));
}

absl::Status LogStore::MarkerError() const {
  if (!marker_failed_.load()) return absl::OkStatus();
  absl::MutexLock l(&marker_mu_);
  return marker_error_;
}

absl::Status LogStore::WriteCurrentMark() {
  DurableMark now;
  uint64_t seq;
  {
    absl::ReaderMutexLock l(&mu_);
    now = durable_;
    seq = durable_seq_;
  }
  return WriteMarkIfNewer(now, seq);
}

absl::Status LogStore::WriteMarkIfNewer(const DurableMark& mark, uint64_t seq) {
  // The check and the write under one lock: a mark read before a lowering
  // (an older seq) can never be written after it.
  absl::MutexLock l(&marker_mu_);
  if (!marker_error_.ok()) return marker_error_;
  if (seq <= marker_written_seq_) return absl::OkStatus();
  if (mark != marker_written_) {
    if (absl::Status s = WriteDurableMark(dir(), mark); !s.ok()) {
      // A failed write like any other (log_store.h): latched, and handed to
      // on_write_failure (the server stops there).
      marker_error_ = Annotate(
          absl::Status(s.code(), absl::StrCat("writing the durable mark: ", s.message())));
      marker_failed_.store(true);
      LatchFailure(marker_error_);
      if (options_.on_write_failure) options_.on_write_failure(marker_error_);
      return marker_error_;
    }
    marker_written_ = mark;
  }
  marker_written_seq_ = seq;
  return absl::OkStatus();
}

void LogStore::MarkerLoop() {
  while (true) {
    {
      absl::MutexLock l(&marker_mu_);
      marker_mu_.AwaitWithTimeout(absl::Condition(&marker_stop_), options_.durable_mark_interval);
      if (marker_stop_) return;
      if (!marker_error_.ok()) return;  // Append reports it
    }
    absl::Status s = WriteCurrentMark();
    LOG_IF(ERROR, !s.ok()) << "storage dir " << dir() << ": " << s;
  }
}

absl::Status LogStore::CheckDurableMark() {
  absl::StatusOr<std::optional<DurableMark>> read = ReadDurableMark(dir());
  if (!read.ok()) return Annotate(read.status());
  NoteDurableLocked();  // the recovered state is on disk
  if (!read->has_value() || !options_.sync) return absl::OkStatus();
  const DurableMark& mark = **read;
  auto lost = [&](const std::string& what) {
    return Annotate(absl::DataLossError(absl::StrCat(
        "the store lost writes it had made durable: ", what, " (", DurableMarkPath(dir()),
        " records ", mark.DebugString(), "; the store has ", durable_.DebugString(),
        "). Its disk dropped synced data (a truncated or rolled-back WAL). Do not start this "
        "node on this data: remove it from the cluster (kvctl member remove ID) and add a "
        "fresh node with --join")));
  };
  if (mark.term > hard_state_.term()) {
    return lost(absl::StrCat("the hard state's term ", hard_state_.term(),
                             " is behind the durable term ", mark.term));
  }
  if (mark.commit > last_index_) {
    return lost(absl::StrCat("the log ends at index ", last_index_,
                             " but entries up to ", mark.commit, " were committed"));
  }
  if (mark.last_index > snapshot_.index()) {
    bool holds = false;
    if (mark.last_index <= last_index_) {
      absl::StatusOr<uint64_t> t = TermLocked(mark.last_index);
      if (!t.ok()) return t.status();
      holds = *t == mark.last_term;
    }
    // A newer leader may have replaced the suffix (its entries have a higher
    // term); otherwise the log must still hold the marked entry.
    if (!holds && last_term_ <= mark.last_term) {
      return lost(absl::StrCat("the log ends at index ", last_index_, " of term ", last_term_,
                               " but held index ", mark.last_index, " of term ",
                               mark.last_term));
    }
  }
  return absl::OkStatus();
}

absl::Status LogStore::Annotate(const absl::Status& s) const {
  return Prefixed(options_.dir, s);
}

absl::StatusOr<bool> LogStore::ReadMeta(absl::string_view key,
                                        std::string* out) const {
  rocksdb::Status s = db_->Get(ReadOpts(), meta_cf_,
                               rocksdb::Slice(key.data(), key.size()), out);
  if (s.IsNotFound()) return false;
  if (!s.ok()) {
    return Annotate(FromRocks(s, absl::StrCat("reading meta key ", key)));
  }
  return true;
}

absl::Status LogStore::CheckFormat() {
  std::string value;
  absl::StatusOr<bool> found = ReadMeta(kFormatVersionKey, &value);
  if (!found.ok()) return found.status();
  if (*found) {
    std::optional<uint64_t> version = DecodeFixed64BE(value);
    if (!version.has_value()) {
      return Annotate(absl::DataLossError("malformed format version"));
    }
    if (*version != kFormatVersion) {
      return Annotate(absl::FailedPreconditionError(
          absl::StrCat("unsupported store format version ", *version,
                       " (this binary reads version ", kFormatVersion, ")")));
    }
    return absl::OkStatus();
  }
  // No marker: only a brand-new, empty store may get one.
  // handles_ includes RocksDB's default CF, which a raftkv store never uses.
  for (rocksdb::ColumnFamilyHandle* cf : handles_) {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(ReadOpts(), cf));
    it->SeekToFirst();
    if (!it->status().ok()) {
      return Annotate(FromRocks(it->status(), "checking for an empty store"));
    }
    if (it->Valid()) {
      return Annotate(absl::FailedPreconditionError(absl::StrCat(
          "column family ", cf->GetName(),
          " holds data but the store has no format version: not a raftkv "
          "store, or a damaged one")));
    }
  }
  rocksdb::WriteBatch batch;
  batch.Put(meta_cf_, kFormatVersionKey, EncodeFixed64BE(kFormatVersion));
  return Write(&batch, "writing the format version");
}

absl::Status LogStore::Recover() {
  absl::MutexLock write_lock(&write_mu_);
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckFormat(); !s.ok()) return s;

  std::string value;
  absl::StatusOr<bool> found = ReadMeta(kIdentityKey, &value);
  if (!found.ok()) return found.status();
  if (*found) {
    storagepb::NodeIdentity id;
    if (!id.ParseFromString(value)) {
      return Annotate(absl::DataLossError("malformed node identity"));
    }
    identity_ = id;
  }
  if (options_.expected_identity.has_value() && identity_.has_value() &&
      (identity_->cluster_id() != options_.expected_identity->cluster_id() ||
       identity_->node_id() != options_.expected_identity->node_id())) {
    return Annotate(absl::FailedPreconditionError(absl::StrCat(
        "identity mismatch: the store belongs to ", IdentityString(*identity_),
        ", but this node is ", IdentityString(*options_.expected_identity))));
  }

  found = ReadMeta(kSnapshotKey, &value);
  if (!found.ok()) return found.status();
  if (*found && !snapshot_.ParseFromString(value)) {
    return Annotate(absl::DataLossError("malformed snapshot metadata"));
  }
  found = ReadMeta(kHardStateKey, &value);
  if (!found.ok()) return found.status();
  if (*found && !hard_state_.ParseFromString(value)) {
    return Annotate(absl::DataLossError("malformed hard state"));
  }
  found = ReadMeta(kAppliedIndexKey, &value);
  if (!found.ok()) return found.status();
  if (*found) {
    std::optional<uint64_t> applied = DecodeFixed64BE(value);
    if (!applied.has_value()) {
      return Annotate(absl::DataLossError("malformed applied index"));
    }
    applied_index_.store(*applied);
  }

  found = ReadMeta(kAppliedConfKey, &value);
  if (!found.ok()) return found.status();
  if (*found) {
    raftpb::ConfState conf;
    if (!conf.ParseFromString(value)) {
      return Annotate(absl::DataLossError("malformed applied membership"));
    }
    absl::MutexLock apply_lock(&apply_mu_);
    applied_conf_ = std::move(conf);
  }
  found = ReadMeta(kDataGenerationKey, &value);
  if (!found.ok()) return found.status();
  if (*found) {
    if (value.size() != 1 || (value[0] != kDataGenerationA && value[0] != kDataGenerationB)) {
      return Annotate(absl::DataLossError("malformed data generation"));
    }
    generation_.store(value[0]);
  }
  {
    // A snapshot staged but not installed, or an old generation not yet
    // dropped, when the process stopped: clear it.
    rocksdb::WriteBatch cleanup;
    ClearGeneration(&cleanup, OtherGeneration(generation_.load()));
    if (absl::Status s = Write(&cleanup, "clearing the spare data generation", false);
        !s.ok()) {
      return s;
    }
  }

  if (absl::Status s = ScanLog(); !s.ok()) return s;
  if (absl::Status s = LoadPeerIncarnations(); !s.ok()) return s;

  // No index follows 2^64-1: FirstIndex() and LastIndex() + 1 would wrap.
  if (last_index_ == UINT64_MAX) {
    return Annotate(absl::DataLossError(absl::StrCat(
        "inconsistent store: the log reaches index ", last_index_, " (snapshot index ",
        snapshot_.index(), "), which no log can")));
  }
  if (hard_state_.commit() > last_index_) {
    return Annotate(absl::DataLossError(absl::StrCat(
        "inconsistent store: hard state commit ", hard_state_.commit(),
        " > last log index ", last_index_)));
  }
  if (applied_index_.load() < snapshot_.index()) {
    return Annotate(absl::DataLossError(absl::StrCat(
        "inconsistent store: applied index ", applied_index_.load(),
        " < snapshot index ", snapshot_.index())));
  }
  if (options_.durable_mark_interval > absl::ZeroDuration()) return CheckDurableMark();
  return absl::OkStatus();
}

absl::Status LogStore::LoadPeerIncarnations() {
  const std::string prefix = kPeerIncarnationPrefix;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ReadOpts(), meta_cf_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::optional<uint64_t> id = DecodeFixed64BE(
        absl::string_view(it->key().data() + prefix.size(), it->key().size() - prefix.size()));
    std::optional<uint64_t> inc =
        DecodeFixed64BE(absl::string_view(it->value().data(), it->value().size()));
    if (!id.has_value() || !inc.has_value()) {
      return Annotate(absl::DataLossError("malformed peer incarnation record"));
    }
    peer_incarnations_[*id] = *inc;
  }
  if (!it->status().ok()) {
    return Annotate(FromRocks(it->status(), "reading peer incarnations"));
  }
  return absl::OkStatus();
}

absl::Status LogStore::ScanLog() {
  const uint64_t expected_first = snapshot_.index() + 1;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(ReadOpts(), log_cf_));
  auto key_of = [&](uint64_t* index) -> absl::Status {
    std::optional<uint64_t> k = DecodeLogKey(
        absl::string_view(it->key().data(), it->key().size()));
    if (!k.has_value()) {
      return Annotate(absl::DataLossError(
          absl::StrCat("malformed log key 0x",
                       absl::BytesToHexString(absl::string_view(
                           it->key().data(), it->key().size())))));
    }
    *index = *k;
    return absl::OkStatus();
  };
  auto entry_at = [&](uint64_t index) -> absl::StatusOr<raftpb::Entry> {
    raftpb::Entry e;
    if (!e.ParseFromArray(it->value().data(),
                          static_cast<int>(it->value().size())) ||
        e.index() != index) {
      return Annotate(absl::DataLossError(
          absl::StrCat("malformed log entry at index ", index)));
    }
    return e;
  };

  it->SeekToFirst();
  if (!it->Valid()) {
    if (!it->status().ok()) return Annotate(FromRocks(it->status(), "scanning the log"));
    last_index_ = snapshot_.index();
    last_term_ = snapshot_.term();
    return absl::OkStatus();
  }
  uint64_t first = 0;
  if (absl::Status s = key_of(&first); !s.ok()) return s;
  if (first != expected_first) {
    return Annotate(absl::DataLossError(absl::StrCat(
        "inconsistent store: the log starts at index ", first,
        " but the snapshot covers through index ", snapshot_.index(),
        " (expected first index ", expected_first, ")")));
  }
  if (absl::StatusOr<raftpb::Entry> e = entry_at(first); !e.ok()) {
    return e.status();
  }

  uint64_t last = first;
  if (options_.verify_log_on_open) {
    uint64_t expected = first;
    for (; it->Valid(); it->Next()) {
      uint64_t index = 0;
      if (absl::Status s = key_of(&index); !s.ok()) return s;
      if (index != expected) {
        return Annotate(absl::DataLossError(absl::StrCat(
            "inconsistent store: the log has a hole: index ", index,
            " follows ", expected - 1)));
      }
      ++expected;
    }
    if (!it->status().ok()) return Annotate(FromRocks(it->status(), "scanning the log"));
    it->SeekToLast();
  } else {
    it->SeekToLast();
  }
  if (!it->Valid()) {
    if (!it->status().ok()) {
      return Annotate(FromRocks(it->status(), "reading the last log key"));
    }
    return Annotate(absl::InternalError("the log emptied while scanning it"));
  }
  if (absl::Status s = key_of(&last); !s.ok()) return s;
  absl::StatusOr<raftpb::Entry> e = entry_at(last);
  if (!e.ok()) return e.status();
  last_index_ = last;
  last_term_ = e->term();
  return absl::OkStatus();
}

}  // namespace raftkv::storage
