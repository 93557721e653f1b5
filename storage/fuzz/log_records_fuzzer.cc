// Fuzz target: the records a LogStore reads at start-up (storage/encoding.h:
// log entries, hard state, snapshot metadata, applied index and membership,
// identity, format version, data generation, peer incarnations; and the
// durable mark file). The input is a list of records written straight into
// a fresh store's RocksDB (well-formed ones with fuzzed fields, damaged
// ones, raw bytes), then the store is opened as a node starts it: LogStore
// Open, then the Raft core restored from it and run for a few ticks.
//
// Never a crash; a store is refused with a Status or used whole: if Open
// accepts it, its log reads back as a contiguous run of entries from the
// snapshot on (or every read of a damaged entry fails), its hard state and
// applied index are within the log, and the core restored from it (if it
// accepts it) keeps its invariants.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/scratch_env.h"
#include "fuzz/temp_dir.h"
#include "glog/logging.h"
#include "proto/raft.pb.h"
#include "proto/storage.pb.h"
#include "raft/raft.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "storage/durable_mark.h"
#include "storage/encoding.h"
#include "storage/log_store.h"

namespace raftkv::storage {
namespace {

using fuzz::FuzzInput;

enum Cf { kLog = 1, kMeta = 2, kData = 3 };

class QuietLogger : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}
};

// Writes records into a store directory with RocksDB directly.
class RawStore {
 public:
  explicit RawStore(const std::string& dir) {
    rocksdb::DBOptions o;
    o.create_if_missing = true;
    o.create_missing_column_families = true;
    o.env = fuzz::ScratchEnv();
    // A thread per column family and opening thread otherwise (16 by
    // default), and an info log: most of an open's cost.
    o.max_file_opening_threads = 1;
    o.info_log = std::make_shared<QuietLogger>();
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const char* name : {"default", kLogColumnFamily, kMetaColumnFamily, kDataColumnFamily}) {
      rocksdb::ColumnFamilyOptions cf;
      cf.write_buffer_size = 64 << 10;
      cfs.emplace_back(name, cf);
    }
    rocksdb::Status s = rocksdb::DB::Open(o, dir, cfs, &handles_, &db_);
    CHECK(s.ok()) << s.ToString();
  }
  ~RawStore() {
    for (auto* h : handles_) CHECK(db_->DestroyColumnFamilyHandle(h).ok());
    CHECK(db_->Close().ok());
    delete db_;
  }
  void Put(Cf cf, const std::string& k, const std::string& v) {
    CHECK(db_->Put(rocksdb::WriteOptions(), handles_[cf], k, v).ok());
  }
  void Delete(Cf cf, const std::string& k) {
    CHECK(db_->Delete(rocksdb::WriteOptions(), handles_[cf], k).ok());
  }

 private:
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

const char* const kMetaKeys[] = {kFormatVersionKey, kIdentityKey,   kHardStateKey,
                                 kSnapshotKey,      kAppliedIndexKey, kAppliedConfKey,
                                 kDataGenerationKey};

class Builder {
 public:
  Builder(FuzzInput* in, RawStore* db) : in_(*in), db_(*db) {
    // Indexes cluster around a base, so records meet each other.
    const uint64_t bases[] = {0, 1000, uint64_t{1} << 32, UINT64_MAX - 40};
    base_ = bases[in_.U8() % 4];
  }

  uint64_t Index() {
    switch (in_.U8() % 8) {
      case 0: return in_.U64();
      case 1: return in_.Range(0, 40);
      default: return base_ + in_.Range(0, 40);
    }
  }
  uint64_t Term() { return in_.U8() % 16 == 15 ? in_.U64() : in_.Range(0, 9); }

  // `v`, maybe damaged: cut short or with one byte changed.
  std::string Damage(std::string v) {
    const uint8_t d = in_.U8();
    if (d < 224 || v.empty()) return v;
    if (d < 240) {
      v.resize(in_.Range(0, v.size() - 1));
    } else {
      v[in_.Range(0, v.size() - 1)] ^= static_cast<char>(1 + in_.U8() % 255);
    }
    return v;
  }

  raftpb::ConfState Conf() {
    raftpb::ConfState cs;
    for (int n = in_.U8() % 4; n > 0; --n) cs.add_voters(in_.Range(0, 5));
    for (int n = in_.U8() % 3; n > 0; --n) cs.add_learners(in_.Range(0, 5));
    return cs;
  }

  raftpb::Entry Entry(uint64_t index, uint64_t term) {
    raftpb::Entry e;
    e.set_index(index);
    e.set_term(term);
    const uint8_t t = in_.U8();
    if (t % 8 == 7) {
      e.set_type(raftpb::ENTRY_CONF_CHANGE);
      raftpb::ConfChange cc;
      cc.set_type(static_cast<raftpb::ConfChangeType>(in_.U8() % 3));
      cc.set_node_id(in_.Range(0, 5));
      *cc.mutable_result() = Conf();
      e.set_data(Damage(cc.SerializeAsString()));
    } else {
      if (t % 8 == 6) e.set_type(static_cast<raftpb::EntryType>(in_.Range(2, 3)));
      e.set_data(in_.Bytes(24));
    }
    return e;
  }

  // A well-formed store: format, identity, snapshot at base+k, entries
  // after it, hard state and applied index within them.
  void WholeStore() {
    const uint64_t snap = base_ + in_.Range(0, 8), n = in_.Range(0, 12);
    const uint64_t term = 1 + in_.Range(0, 3);
    db_.Put(kMeta, kFormatVersionKey, EncodeFixed64BE(kFormatVersion));
    storagepb::NodeIdentity id;
    id.set_cluster_id(7);
    id.set_node_id(1);
    id.set_incarnation(9);
    db_.Put(kMeta, kIdentityKey, id.SerializeAsString());
    raftpb::SnapshotMetadata meta;
    meta.set_index(snap);
    meta.set_term(snap == 0 ? 0 : term);
    for (uint64_t v : {1, 2, 3}) meta.mutable_conf_state()->add_voters(v);
    db_.Put(kMeta, kSnapshotKey, meta.SerializeAsString());
    uint64_t t = meta.term();
    for (uint64_t i = snap + 1; i <= snap + n; ++i) {
      if (in_.U8() % 4 == 0) t += 1;
      t = std::max<uint64_t>(t, 1);
      db_.Put(kLog, LogKey(i), Entry(i, t).SerializeAsString());
    }
    raftpb::HardState hs;
    hs.set_term(t + in_.Range(0, 1));
    hs.set_vote(in_.Range(0, 3));
    hs.set_commit(snap + in_.Range(0, n));
    db_.Put(kMeta, kHardStateKey, hs.SerializeAsString());
    db_.Put(kMeta, kAppliedIndexKey, EncodeFixed64BE(snap + in_.Range(0, hs.commit() - snap)));
  }

  // Applies one record operation; false when the input is used up.
  bool Step() {
    if (in_.exhausted()) return false;
    switch (in_.U8() % 16) {
      case 0: {  // a log entry, maybe under another index's key
        const uint64_t i = Index();
        raftpb::Entry e = Entry(i, Term());
        const uint64_t key = in_.U8() % 8 == 0 ? Index() : i;
        db_.Put(kLog, LogKey(key), Damage(e.SerializeAsString()));
        break;
      }
      case 1: {  // a run of entries with non-decreasing terms
        uint64_t i = Index(), t = Term();
        for (uint64_t n = in_.Range(1, 16); n > 0; --n, ++i) {
          if (in_.U8() % 4 == 0) ++t;
          db_.Put(kLog, LogKey(i), Entry(i, t).SerializeAsString());
        }
        break;
      }
      case 2: {
        raftpb::HardState hs;
        hs.set_term(Term());
        hs.set_vote(in_.Range(0, 5));
        hs.set_commit(Index());
        db_.Put(kMeta, kHardStateKey, Damage(hs.SerializeAsString()));
        break;
      }
      case 3: {
        raftpb::SnapshotMetadata meta;
        meta.set_index(Index());
        meta.set_term(Term());
        *meta.mutable_conf_state() = Conf();
        db_.Put(kMeta, kSnapshotKey, Damage(meta.SerializeAsString()));
        break;
      }
      case 4:
        db_.Put(kMeta, kAppliedIndexKey, Damage(EncodeFixed64BE(Index())));
        break;
      case 5:
        db_.Put(kMeta, kAppliedConfKey, Damage(Conf().SerializeAsString()));
        break;
      case 6: {
        storagepb::NodeIdentity id;
        id.set_cluster_id(in_.Range(0, 2));
        id.set_node_id(in_.Range(0, 5));
        id.set_incarnation(in_.U8());
        id.set_restored_spec_id(in_.U8() % 4 == 0 ? in_.U64() : 0);
        db_.Put(kMeta, kIdentityKey, Damage(id.SerializeAsString()));
        break;
      }
      case 7:
        db_.Put(kMeta, kFormatVersionKey, Damage(EncodeFixed64BE(in_.Range(0, 3))));
        break;
      case 8:
        db_.Put(kMeta, kDataGenerationKey, Damage(in_.Bool() ? "a" : "b"));
        break;
      case 9: {
        std::string key = kPeerIncarnationPrefix;
        key += Damage(EncodeFixed64BE(in_.Range(0, 5)));
        db_.Put(kMeta, key, Damage(EncodeFixed64BE(in_.U8())));
        break;
      }
      case 10: {  // any value under a meta key
        const std::string key = in_.U8() % 8 == 0 ? in_.Bytes(24) : kMetaKeys[in_.U8() % 7];
        db_.Put(kMeta, key, in_.Bytes(32));
        break;
      }
      case 11:
        db_.Put(kLog, in_.Bytes(12), in_.Bytes(32));
        break;
      case 12:
        db_.Put(kData, in_.Bytes(12), in_.Bytes(16));
        break;
      case 13: {
        const uint8_t which = in_.U8() % 3;
        if (which == 0) {
          db_.Delete(kLog, LogKey(Index()));
        } else if (which == 1) {
          db_.Delete(kMeta, kMetaKeys[in_.U8() % 7]);
        } else {
          db_.Delete(kData, in_.Bytes(12));
        }
        break;
      }
      case 14: {
        DurableMark m;
        m.term = Term();
        m.last_index = Index();
        m.last_term = Term();
        m.commit = Index();
        mark_ = in_.U8() % 4 == 0 ? in_.Bytes(100)
                                  : Damage(absl::StrCat("raftkv durable mark v1\nterm ", m.term,
                                                        "\nlast_index ", m.last_index,
                                                        "\nlast_term ", m.last_term, "\ncommit ",
                                                        m.commit, "\n"));
        break;
      }
      default:
        WholeStore();
        break;
    }
    return true;
  }

  const std::optional<std::string>& mark() const { return mark_; }

 private:
  FuzzInput& in_;
  RawStore& db_;
  uint64_t base_ = 0;
  std::optional<std::string> mark_;
};

// What Open accepted must read back whole.
void CheckOpened(LogStore& store, bool tick) {
  const raftpb::SnapshotMetadata snap = store.GetSnapshot()->metadata();
  const uint64_t first = store.FirstIndex(), last = store.LastIndex();
  CHECK_EQ(first, snap.index() + 1) << "the log must start right after the snapshot";
  CHECK_GE(last, snap.index());
  absl::StatusOr<raft::InitialState> st = store.GetInitialState();
  CHECK(st.ok()) << st.status();
  CHECK_LE(st->hard_state.commit(), last) << "Open accepted a commit index past the log";
  CHECK_GE(store.applied_index(), snap.index());
  absl::StatusOr<uint64_t> snap_term = store.Term(snap.index());
  CHECK(snap_term.ok() && *snap_term == snap.term()) << snap_term.status();

  // Every entry reads back with its own index, or the read fails.
  bool readable = true;
  std::vector<raftpb::Entry> entries;
  if (last - snap.index() <= 4096) {
    absl::StatusOr<std::vector<raftpb::Entry>> ents = store.Entries(first, last + 1, UINT64_MAX);
    if (ents.ok()) {
      entries = *ents;
      CHECK_EQ(ents->size(), last - snap.index()) << "a short read of the log";
      for (uint64_t k = 0; k < ents->size(); ++k) {
        const raftpb::Entry& e = (*ents)[k];
        CHECK_EQ(e.index(), first + k) << "an entry read under another index";
        absl::StatusOr<uint64_t> t = store.Term(e.index());
        CHECK(t.ok()) << "entry " << e.index() << " reads but its term does not: " << t.status();
        CHECK_EQ(*t, e.term()) << "entry " << e.index() << ": Term() and Entries() disagree";
      }
    } else {
      readable = false;
      CHECK(ents.status().code() == absl::StatusCode::kDataLoss) << ents.status();
    }
  }

  // The node restores its core from the store: refused, or used whole.
  raft::Config config;
  config.id = store.identity() && store.identity()->node_id() != 0 ? store.identity()->node_id()
                                                                    : 1;
  config.applied = store.applied_index();
  config.election_ticks = 2;
  absl::StatusOr<std::unique_ptr<raft::Raft>> core = raft::Raft::Create(config, &store);
  if (!core.ok()) return;
  CHECK(readable) << "the core took a log whose entries do not read";
  raft::Raft& r = **core;
  CHECK(r.CheckInvariants().ok()) << r.CheckInvariants();
  // A log a node wrote: terms never decrease along it (from the snapshot's),
  // and none is past the node's own term (it appends only in its term).
  uint64_t prev = snap.term();
  for (const raftpb::Entry& e : entries) {
    CHECK_GE(e.term(), prev) << "the core took a log whose terms decrease at " << e.index();
    prev = e.term();
  }
  CHECK_LE(prev, r.term()) << "the core took a log with terms past its own term";
  if (!tick) return;
  // A lone voter elects itself and appends: run the driver loop briefly.
  for (int t = 0; t < 8; ++t) {
    r.Tick();
    while (r.HasReady()) {
      raft::Ready rd = r.GetReady();
      if (rd.snapshot.has_value()) return;  // none without peers
      const raftpb::HardState* hs = rd.hard_state ? &*rd.hard_state : nullptr;
      if (!store.Append(rd.entries, hs).ok()) return;
      r.Advance(rd);
    }
    CHECK(r.CheckInvariants().ok()) << r.CheckInvariants();
  }
}

}  // namespace
}  // namespace raftkv::storage

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace raftkv::storage;
  static const bool quiet = [] {
    FLAGS_minloglevel = 2;  // refusals are logged at WARNING and ERROR
    return true;
  }();
  (void)quiet;
  const std::string dir = raftkv::fuzz::ProcessTempDir("log_records") + "/store";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  raftkv::fuzz::FuzzInput in(data, size);
  const uint8_t flags = in.U8();
  std::optional<std::string> mark;
  {
    RawStore raw(dir);
    Builder b(&in, &raw);
    for (int n = 0; n < 64 && b.Step(); ++n) {
    }
    mark = b.mark();
  }
  if (mark.has_value()) {
    std::ofstream f(DurableMarkPath(dir), std::ios::binary | std::ios::trunc);
    f << *mark;
  }
  Options o;
  o.dir = dir;
  o.create_if_missing = false;
  o.sync = mark.has_value();  // the mark is checked (and kept) only with sync
  o.durable_mark_interval = mark.has_value() ? absl::Hours(1) : absl::ZeroDuration();
  o.verify_log_on_open = (flags & 1) == 0;
  o.data_memtable_bytes = 64 << 10;
  o.data_block_cache_bytes = 0;
  o.env = raftkv::fuzz::ScratchEnv();
  o.table_open_threads = 1;
  absl::StatusOr<std::unique_ptr<LogStore>> store = LogStore::Open(o);
  if (store.ok()) CheckOpened(**store, (flags & 2) != 0);
  return 0;
}
