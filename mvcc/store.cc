#include "mvcc/store.h"

#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "mvcc/encoding.h"

namespace raftkv::mvcc {
namespace enc = encoding;

namespace {

// An ordered source of data records: a store cursor, a map of pending
// writes, or a merge of them.
class Source {
 public:
  virtual ~Source() = default;
  virtual void Seek(absl::string_view key) = 0;
  virtual bool Valid() const = 0;
  virtual void Next() = 0;
  virtual absl::string_view key() const = 0;
  virtual absl::string_view value() const = 0;
  virtual absl::Status status() const = 0;
};

class CursorSource final : public Source {
 public:
  explicit CursorSource(storage::DataCursor* c) : c_(c) {}
  void Seek(absl::string_view key) override { c_->Seek(key); }
  bool Valid() const override { return c_->Valid(); }
  void Next() override { c_->Next(); }
  absl::string_view key() const override { return c_->key(); }
  absl::string_view value() const override { return c_->value(); }
  absl::Status status() const override { return c_->status(); }

 private:
  storage::DataCursor* const c_;
};

class MapSource final : public Source {
 public:
  explicit MapSource(const std::map<std::string, std::string>* m) : m_(m), it_(m->end()) {}
  void Seek(absl::string_view key) override { it_ = m_->lower_bound(std::string(key)); }
  bool Valid() const override { return it_ != m_->end(); }
  void Next() override { ++it_; }
  absl::string_view key() const override { return it_->first; }
  absl::string_view value() const override { return it_->second; }
  absl::Status status() const override { return absl::OkStatus(); }

 private:
  const std::map<std::string, std::string>* const m_;
  std::map<std::string, std::string>::const_iterator it_;
};

// The union of sources; on equal keys the later source wins.
class MergedSource final : public Source {
 public:
  explicit MergedSource(std::vector<Source*> sources) : sources_(std::move(sources)) {}
  void Seek(absl::string_view key) override {
    for (Source* s : sources_) s->Seek(key);
    Pick();
  }
  bool Valid() const override { return current_ != nullptr; }
  void Next() override {
    const std::string k(current_->key());
    for (Source* s : sources_) {
      if (s->Valid() && s->key() == k) s->Next();
    }
    Pick();
  }
  absl::string_view key() const override { return current_->key(); }
  absl::string_view value() const override { return current_->value(); }
  absl::Status status() const override {
    for (Source* s : sources_) {
      if (absl::Status st = s->status(); !st.ok()) return st;
    }
    return absl::OkStatus();
  }

 private:
  void Pick() {
    current_ = nullptr;
    for (Source* s : sources_) {
      if (!s->Valid()) continue;
      if (current_ == nullptr || s->key() <= current_->key()) current_ = s;
    }
    // A source that stopped on an error ends the merge: a read must fail,
    // never skip the records it could not read.
    if (!status().ok()) current_ = nullptr;
  }

  std::vector<Source*> sources_;
  Source* current_ = nullptr;
};

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("mvcc: ", what));
}

// The counter at `key` in `s` (`dflt` if absent).
absl::StatusOr<int64_t> ReadCounter(Source* s, char key, int64_t dflt) {
  const std::string k(1, key);
  s->Seek(k);
  if (!s->Valid()) {
    if (absl::Status st = s->status(); !st.ok()) return st;
    return dflt;
  }
  if (s->key() != k) return dflt;
  int64_t v = 0;
  if (!enc::ParseFixedRevision(s->value(), &v)) return Corrupt("malformed revision counter");
  return v;
}

KeyValue ToKeyValue(std::string key, int64_t mod_revision, enc::Record r, bool keys_only) {
  KeyValue kv;
  kv.key = std::move(key);
  if (!keys_only) kv.value = std::move(r.value);
  kv.create_revision = r.create_revision;
  kv.mod_revision = mod_revision;
  kv.version = r.version;
  kv.lease = r.lease;
  kv.index = r.index;
  return kv;
}

// Visits the newest record at or before `rev` of each key of [key, end) in
// `s` (etcd's range rules); fn gets the escaped prefix, the revision and the
// raw record, and returns false to stop. Deletes are passed too.
absl::Status VisitAt(Source* s, absl::string_view key, absl::string_view end, int64_t rev,
                     absl::FunctionRef<bool(absl::string_view prefix, int64_t revision,
                                            absl::string_view record)>
                         fn) {
  const bool single = end.empty();
  const bool unbounded = end == absl::string_view("\0", 1);
  const std::string first = enc::HistoryPrefix(key);
  const std::string upper = (single || unbounded) ? std::string() : enc::HistoryPrefix(end);
  if (!single && !unbounded && end <= key) return absl::OkStatus();
  std::string target = first;  // where the next key's records start
  s->Seek(target);
  while (s->Valid()) {
    const absl::string_view k = s->key();
    if (k.empty() || k[0] != enc::kHistory) break;
    if (!upper.empty() && k >= upper) break;
    enc::ParsedHistoryKey p;
    if (!enc::ParseHistoryKey(k, &p)) return Corrupt("malformed history key");
    if (single && p.prefix != first) break;
    if (p.revision > rev) {
      // Newer than asked: jump to this key's newest at `rev`.
      std::string at(p.prefix);
      at += enc::HistoryKey("", rev).substr(enc::HistoryPrefix("").size());
      s->Seek(at);
      continue;
    }
    const std::string prefix(p.prefix);
    if (!fn(prefix, p.revision, s->value())) return s->status();
    if (single) break;
    // To the next key: usually the very next record (one revision per key).
    s->Next();
    if (s->Valid() && absl::StartsWith(s->key(), prefix)) s->Seek(enc::PastKey(prefix));
  }
  return s->status();
}

// A Range's answer, gathered from the live keys in key order by
// RangeOptions' rules.
class RangeCollector {
 public:
  explicit RangeCollector(const RangeOptions& opts) : opts_(opts) {}

  // Counts one live key; `make` gives its KeyValue if the answer holds it.
  // False to stop (status() says why).
  bool Add(absl::FunctionRef<absl::StatusOr<KeyValue>()> make) {
    ++out_.count;
    if (opts_.count_only) return true;
    if (opts_.limit > 0 && static_cast<int64_t>(out_.kvs.size()) >= opts_.limit) {
      out_.more = true;
      return true;
    }
    absl::StatusOr<KeyValue> kv = make();
    if (!kv.ok()) {
      stop_ = kv.status();
      return false;
    }
    if (opts_.keys_only) kv->value.clear();
    bytes_held_ += kv->key.size() + kv->value.size();
    out_.kvs.push_back(*std::move(kv));
    if (opts_.max_bytes > 0 && bytes_held_ > opts_.max_bytes) {
      stop_ = TooLargeError();
      return false;
    }
    return true;
  }
  const absl::Status& status() const { return stop_; }
  RangeResult Take() { return std::move(out_); }

 private:
  const RangeOptions& opts_;
  RangeResult out_;
  int64_t bytes_held_ = 0;
  absl::Status stop_;
};

// The revision a Range with `opts` reads at, in a state whose latest
// revision is `latest`; etcd's errors for one out of reach.
absl::StatusOr<int64_t> ReadRevision(const RangeOptions& opts, int64_t latest, int64_t compact) {
  int64_t rev = opts.revision;
  if (rev > latest) return FutureRevisionError();
  if (rev <= 0) rev = latest;
  if (rev < compact) return CompactedError();
  return rev;
}

// Calls fn with the latest value of each live key of [key, end) in `s`, in
// key order, until it returns false.
absl::Status VisitLatestLive(Source* s, absl::string_view key, absl::string_view end,
                             absl::FunctionRef<bool(KeyValue)> fn) {
  absl::Status decode_error;
  absl::Status st = VisitAt(
      s, key, end, std::numeric_limits<int64_t>::max(),
      [&](absl::string_view prefix, int64_t revision, absl::string_view bytes) {
        if (bytes.empty() || bytes[0] == 1) return true;  // a delete
        absl::StatusOr<enc::Record> r = enc::DecodeRecord(bytes);
        std::string k;
        if (!r.ok() || !enc::Unescape(prefix, &k)) {
          decode_error = r.ok() ? Corrupt("malformed history key") : r.status();
          return false;
        }
        return fn(ToKeyValue(std::move(k), revision, *std::move(r), /*keys_only=*/false));
      });
  if (!st.ok()) return st;
  return decode_error;
}

// Range over `s` whose latest revision is `latest`.
absl::StatusOr<RangeResult> RangeIn(Source* s, int64_t latest, int64_t compact,
                                    absl::string_view key, absl::string_view end,
                                    const RangeOptions& opts) {
  absl::StatusOr<int64_t> rev = ReadRevision(opts, latest, compact);
  if (!rev.ok()) return rev.status();
  RangeCollector c(opts);
  absl::Status visit = VisitAt(
      s, key, end, *rev,
      [&](absl::string_view prefix, int64_t revision, absl::string_view bytes) {
        if (bytes.empty() || bytes[0] == 1) return true;  // a delete
        return c.Add([&]() -> absl::StatusOr<KeyValue> {
          absl::StatusOr<enc::Record> r = enc::DecodeRecord(bytes);
          if (!r.ok()) return r.status();
          std::string k;
          if (!enc::Unescape(prefix, &k)) return Corrupt("malformed history key");
          return ToKeyValue(std::move(k), revision, *std::move(r), opts.keys_only);
        });
      });
  if (!visit.ok()) return visit;
  if (!c.status().ok()) return c.status();
  return c.Take();
}

// The newest record of `key` in `s` (tombstones included).
absl::StatusOr<Newest> SeekNewest(Source* s, absl::string_view key) {
  const std::string prefix = enc::HistoryPrefix(key);
  s->Seek(prefix);
  Newest n;
  if (!s->Valid() || !absl::StartsWith(s->key(), prefix)) {
    if (absl::Status st = s->status(); !st.ok()) return st;
    return n;  // never written (or compacted away after a delete)
  }
  enc::ParsedHistoryKey p;
  if (!enc::ParseHistoryKey(s->key(), &p) || p.prefix != prefix) {
    return Corrupt("malformed history key");
  }
  absl::StatusOr<enc::Record> r = enc::DecodeRecord(s->value());
  if (!r.ok()) return r.status();
  n.live = !r->tombstone;
  n.mod_revision = p.revision;
  n.create_revision = r->create_revision;
  n.version = r->version;
  n.lease = r->lease;
  n.index = r->index;
  return n;
}

KeyValue FromNewest(absl::string_view key, const Newest& n) {
  KeyValue kv;
  kv.key = std::string(key);
  kv.create_revision = n.create_revision;
  kv.mod_revision = n.mod_revision;
  kv.version = n.version;
  kv.lease = n.lease;
  kv.index = n.index;
  return kv;
}

}  // namespace

// ---- View ---------------------------------------------------------------------

struct View::Impl {
  std::unique_ptr<storage::DataCursor> cursor;
  mutable std::optional<int64_t> latest;
  mutable std::optional<int64_t> compact;
  mutable absl::Status counter_error;

  void LoadCounters() const {
    if (latest.has_value()) return;
    CursorSource s(cursor.get());
    absl::StatusOr<int64_t> l = ReadCounter(&s, enc::kLatestRevision, 1);
    absl::StatusOr<int64_t> c = ReadCounter(&s, enc::kCompactRevision, 0);
    if (!l.ok() || !c.ok()) {
      counter_error = l.ok() ? c.status() : l.status();
      latest = 1;
      compact = 0;
      return;
    }
    latest = *l;
    compact = *c;
  }
};

View::View(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
View::~View() = default;

int64_t View::revision() const {
  impl_->LoadCounters();
  return *impl_->latest;
}

int64_t View::compact_revision() const {
  impl_->LoadCounters();
  return *impl_->compact;
}

uint64_t View::applied_index() const { return impl_->cursor->applied_index(); }

absl::StatusOr<RangeResult> View::Range(absl::string_view key, absl::string_view end,
                                        const RangeOptions& options) const {
  impl_->LoadCounters();
  if (!impl_->counter_error.ok()) return impl_->counter_error;
  CursorSource s(impl_->cursor.get());
  return RangeIn(&s, *impl_->latest, *impl_->compact, key, end, options);
}

absl::Status View::ForEachLatest(absl::string_view key, absl::string_view end,
                                 absl::FunctionRef<bool(const KeyValue&)> fn) const {
  CursorSource s(impl_->cursor.get());
  return VisitLatestLive(&s, key, end, [&](KeyValue kv) { return fn(kv); });
}

// ---- Store ----------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Store>> Store::Open(storage::LogStore* log_store,
                                                   const Options& options) {
  std::unique_ptr<Store> store(new Store(log_store, options));
  if (absl::Status s = store->Reload(); !s.ok()) return s;
  return store;
}

Store::~Store() = default;

absl::Status Store::Reload() {
  std::unique_ptr<storage::DataCursor> c = log_store_->OpenDataCursor();
  CursorSource s(c.get());
  absl::StatusOr<int64_t> latest = ReadCounter(&s, enc::kLatestRevision, 1);
  if (!latest.ok()) return latest.status();
  absl::StatusOr<int64_t> compact = ReadCounter(&s, enc::kCompactRevision, 0);
  if (!compact.ok()) return compact.status();
  if (*compact > *latest) return Corrupt("compact revision past the latest revision");
  latest_.store(*latest);
  compact_.store(*compact);
  {
    absl::MutexLock l(&compact_mu_);
    compact_cursor_.clear();
    compact_pass_ = 0;
    physically_compacted_.store(0);
  }
  return LoadLatestCache();
}

absl::Status Store::LoadLatestCache() {
  latest_cache_.Clear();
  latest_cache_.MarkComplete();  // until an entry does not fit
  std::unique_ptr<storage::DataCursor> c = log_store_->OpenDataCursor();
  CursorSource s(c.get());
  const std::string all(1, '\0');
  absl::Status st = VisitLatestLive(&s, all, all, [&](KeyValue kv) {
    Newest n;
    n.live = true;
    n.mod_revision = kv.mod_revision;
    n.create_revision = kv.create_revision;
    n.version = kv.version;
    n.lease = kv.lease;
    n.index = kv.index;
    latest_cache_.Set(kv.key, n);
    return latest_cache_.complete();
  });
  if (!st.ok()) {
    // Not fatal here: without the cache every key is read from disk, and a
    // read that meets the damage fails there, as it would have anyway.
    LOG(WARNING) << "mvcc: the key cache is not loaded (keys are read from disk): " << st;
    latest_cache_.Clear();
  }
  return absl::OkStatus();
}

std::unique_ptr<View> Store::Read() const {
  auto impl = std::make_unique<View::Impl>();
  impl->cursor = log_store_->OpenDataCursor();
  return std::unique_ptr<View>(new View(std::move(impl)));
}

std::unique_ptr<View> Store::ReadSnapshot(const storage::DataSnapshot& snapshot) {
  auto impl = std::make_unique<View::Impl>();
  impl->cursor = snapshot.OpenCursor();
  return std::unique_ptr<View>(new View(std::move(impl)));
}

std::unique_ptr<Store::Batch> Store::BeginBatch() {
  return std::unique_ptr<Batch>(new Batch(this));
}

// ---- Batch ----------------------------------------------------------------------

Store::Batch::Batch(Store* store)
    : store_(store),

      latest_(store->latest_.load()),
      compact_(store->compact_.load()) {}

Store::Batch::~Batch() = default;

storage::DataCursor* Store::Batch::base() const {
  if (base_ == nullptr) base_ = store_->log_store_->OpenDataCursor(/*point_reads=*/true);
  return base_.get();
}

std::unique_ptr<Store::Txn> Store::Batch::Begin(uint64_t index) {
  CHECK(!txn_open_) << "mvcc: one transaction at a time";
  txn_open_ = true;
  return std::unique_ptr<Txn>(new Txn(this, index));
}

absl::Status Store::Batch::Compact(int64_t revision) {
  if (revision <= compact_) return CompactedError();
  if (revision > latest_) return FutureRevisionError();
  compact_ = revision;
  return absl::OkStatus();
}

void Store::Batch::Finish(storage::DataBatch* out) {
  CHECK(!txn_open_) << "mvcc: a transaction is still open";
  for (const auto& [k, v] : writes_) out->Put(k, v);
  for (const auto& [k, n] : newest_) store_->latest_cache_.Set(k, n);
  if (latest_ != store_->latest_.load()) {
    out->Put(std::string(1, enc::kLatestRevision), enc::FixedRevision(latest_));
  }
  if (compact_ != store_->compact_.load()) {
    out->Put(std::string(1, enc::kCompactRevision), enc::FixedRevision(compact_));
  }
  store_->latest_.store(latest_);
  store_->compact_.store(compact_);
  writes_.clear();
  newest_.clear();
}

// ---- Txn ------------------------------------------------------------------------

Store::Txn::Txn(Batch* batch, uint64_t index) : batch_(batch), index_(index) {}

Store::Txn::~Txn() { batch_->txn_open_ = false; }

int64_t Store::Txn::revision() const { return changed_ ? revision_ : batch_->latest_; }
int64_t Store::Txn::compact_revision() const { return batch_->compact_; }

absl::StatusOr<RangeResult> Store::Txn::Range(absl::string_view key, absl::string_view end,
                                              const RangeOptions& options) const {
  if (end.empty() && (options.revision <= 0 || options.revision == revision())) {
    return RangeLatestKey(key, options);
  }
  CursorSource base(batch_->base());
  MapSource pending(&batch_->writes_);
  MapSource own(&writes_);
  MergedSource s({&base, &pending, &own});
  return RangeIn(&s, revision(), batch_->compact_, key, end, options);
}

absl::StatusOr<Newest> Store::Txn::NewestOf(absl::string_view key) const {
  // Every key a pending write touched has an entry in its newest_ map.
  if (auto it = newest_.find(key); it != newest_.end()) return it->second;
  if (auto it = batch_->newest_.find(key); it != batch_->newest_.end()) return it->second;
  LatestCache& cache = batch_->store_->latest_cache_;
  if (std::optional<Newest> n = cache.Find(key)) return *n;
  if (cache.complete()) return Newest();  // no live record
  CursorSource base(batch_->base());
  absl::StatusOr<Newest> n = SeekNewest(&base, key);
  if (n.ok()) cache.Set(key, *n);
  return n;
}

absl::StatusOr<std::string> Store::Txn::ValueOf(absl::string_view key, const Newest& n) const {
  const std::string record_key = enc::HistoryKey(key, n.mod_revision);
  absl::StatusOr<std::string> bytes;
  if (auto it = writes_.find(record_key); it != writes_.end()) {
    bytes = it->second;
  } else if (auto it = batch_->writes_.find(record_key); it != batch_->writes_.end()) {
    bytes = it->second;
  } else {
    bytes = batch_->base()->Get(record_key);
    if (absl::IsNotFound(bytes.status())) {
      return Corrupt(absl::StrCat("the newest record of a key (revision ", n.mod_revision,
                                  ") is missing"));
    }
    if (!bytes.ok()) return bytes.status();
  }
  absl::StatusOr<enc::Record> r = enc::DecodeRecord(*bytes);
  if (!r.ok()) return r.status();
  if (r->tombstone) return Corrupt("a live key's newest record is a delete");
  return std::move(r->value);
}

absl::StatusOr<RangeResult> Store::Txn::RangeLatestKey(absl::string_view key,
                                                       const RangeOptions& options) const {
  absl::StatusOr<Newest> n = NewestOf(key);
  if (!n.ok()) return n.status();
  RangeCollector c(options);
  if (n->live) {
    c.Add([&]() -> absl::StatusOr<KeyValue> {
      KeyValue kv = FromNewest(key, *n);
      if (options.keys_only) return kv;
      absl::StatusOr<std::string> v = ValueOf(key, *n);
      if (!v.ok()) return v.status();
      kv.value = *std::move(v);
      return kv;
    });
  }
  if (!c.status().ok()) return c.status();
  return c.Take();
}

void Store::Txn::Write(absl::string_view key, const Newest& n, std::string record) {
  if (!changed_) {
    changed_ = true;
    revision_ = batch_->latest_ + 1;
  }
  writes_[enc::HistoryKey(key, n.mod_revision)] = std::move(record);
  writes_[enc::RevisionIndexKey(revision_, sub_++)] = std::string(key);
  newest_[key] = n;
}

absl::StatusOr<std::optional<KeyValue>> Store::Txn::Put(absl::string_view key,
                                                        absl::string_view value, int64_t lease,
                                                        PrevKv want) {
  if (key.empty()) return absl::InvalidArgumentError("mvcc: empty key");
  absl::StatusOr<Newest> cur = NewestOf(key);
  if (!cur.ok()) return cur.status();
  std::optional<KeyValue> prev;
  if (want == PrevKv::kReturn && cur->live) {
    absl::StatusOr<std::string> v = ValueOf(key, *cur);
    if (!v.ok()) return v.status();
    prev = FromNewest(key, *cur);
    prev->value = *std::move(v);
  }
  const int64_t rev = changed_ ? revision_ : batch_->latest_ + 1;
  Newest n;
  n.live = true;
  n.mod_revision = rev;
  n.create_revision = cur->live ? cur->create_revision : rev;
  n.version = cur->live ? cur->version + 1 : 1;
  n.lease = lease;
  n.index = index_;
  enc::Record r;
  r.create_revision = n.create_revision;
  r.version = n.version;
  r.lease = lease;
  r.index = index_;
  r.value = std::string(value);
  Write(key, n, enc::EncodeRecord(r));
  return prev;
}

absl::StatusOr<std::vector<KeyValue>> Store::Txn::DeleteRange(absl::string_view key,
                                                              absl::string_view end) {
  absl::StatusOr<RangeResult> found = Range(key, end, RangeOptions());
  if (!found.ok()) return found.status();
  if (found->kvs.empty()) return std::vector<KeyValue>();
  const int64_t rev = changed_ ? revision_ : batch_->latest_ + 1;
  for (const KeyValue& kv : found->kvs) {
    enc::Record tomb;
    tomb.tombstone = true;
    tomb.index = index_;
    Newest gone;
    gone.mod_revision = rev;
    gone.index = index_;
    Write(kv.key, gone, enc::EncodeRecord(tomb));
  }
  return std::move(found->kvs);
}

void Store::Txn::Commit() {
  for (auto& [k, v] : writes_) batch_->writes_[k] = std::move(v);
  writes_.clear();
  for (auto& [k, n] : newest_) batch_->newest_[k] = n;
  newest_.clear();
  if (changed_) batch_->latest_ = revision_;
  changed_ = false;
}

// ---- Compaction ------------------------------------------------------------------

absl::StatusOr<bool> Store::CompactStep(size_t max_records) {
  absl::MutexLock l(&compact_mu_);
  std::unique_ptr<storage::DataCursor> c = log_store_->OpenDataCursor();
  CursorSource s(c.get());
  absl::StatusOr<int64_t> compact = ReadCounter(&s, enc::kCompactRevision, 0);
  if (!compact.ok()) return compact.status();
  if (*compact <= physically_compacted_.load()) return false;
  if (*compact != compact_pass_) {
    // A new compact revision: records kept by the last pass may be
    // unreachable now, so start over.
    compact_pass_ = *compact;
    compact_cursor_ = std::string(1, enc::kRevisionIndex);
  }
  // The revision index entries up to the compact revision, oldest first.
  struct Entry {
    std::string index_key;
    int64_t revision;
    std::string key;
  };
  std::vector<Entry> entries;
  bool more = false;
  for (s.Seek(compact_cursor_); s.Valid(); s.Next()) {
    int64_t rev = 0;
    uint32_t sub = 0;
    if (!enc::ParseRevisionIndexKey(s.key(), &rev, &sub)) {
      if (s.key()[0] == enc::kRevisionIndex) return Corrupt("malformed revision index key");
      break;
    }
    if (rev > *compact) break;
    if (entries.size() >= max_records) {
      more = true;
      break;
    }
    entries.push_back({std::string(s.key()), rev, std::string(s.value())});
  }
  if (absl::Status st = s.status(); !st.ok()) return st;

  std::vector<std::string> remove;
  for (const Entry& e : entries) {
    // The key's newest record at the compact revision decides.
    s.Seek(enc::HistoryKey(e.key, *compact));
    int64_t newest = -1;
    bool newest_deleted = false;
    const std::string prefix = enc::HistoryPrefix(e.key);
    if (s.Valid() && absl::StartsWith(s.key(), prefix)) {
      enc::ParsedHistoryKey p;
      if (!enc::ParseHistoryKey(s.key(), &p)) return Corrupt("malformed history key");
      if (p.prefix == prefix) {
        newest = p.revision;
        newest_deleted = !s.value().empty() && s.value()[0] == 1;
      }
    }
    if (absl::Status st = s.status(); !st.ok()) return st;
    // Older records go first (entries are in revision order), so a delete
    // is removed only with or after everything it hid.
    if (e.revision < newest || (e.revision == newest && newest_deleted)) {
      remove.push_back(enc::HistoryKey(e.key, e.revision));
      remove.push_back(e.index_key);
    } else if (e.revision > newest) {
      remove.push_back(e.index_key);  // its record is gone already
    }
  }
  if (absl::Status st = log_store_->RemoveUnreachable(remove, *c); !st.ok()) return st;
  if (!entries.empty()) {
    compact_cursor_ = entries.back().index_key;
    compact_cursor_.push_back('\0');  // just past it
  }
  if (!more) physically_compacted_.store(*compact);
  return more;
}

// ---- Hashing ---------------------------------------------------------------------

bool Store::IsStoreKey(absl::string_view key) {
  return !key.empty() && (key[0] == enc::kHistory || key[0] == enc::kRevisionIndex ||
                          key == absl::string_view(&enc::kLatestRevision, 1) ||
                          key == absl::string_view(&enc::kCompactRevision, 1));
}

bool Store::IsHistoryKey(absl::string_view key, int64_t* revision) {
  enc::ParsedHistoryKey p;
  if (!enc::ParseHistoryKey(key, &p)) return false;
  *revision = p.revision;
  return true;
}

bool Store::HashFilter::Include(absl::string_view key, absl::string_view value) {
  if (key.empty()) return true;
  if (key[0] == enc::kRevisionIndex) return false;  // derived from the history
  if (key[0] != enc::kHistory) return true;
  enc::ParsedHistoryKey p;
  if (!enc::ParseHistoryKey(key, &p)) return true;  // hashed as it is: differs if corrupt
  if (p.prefix != prefix_) {
    prefix_ = std::string(p.prefix);
    past_compact_ = false;
  }
  if (past_compact_) return false;
  if (p.revision > compact_) return true;
  past_compact_ = true;  // the newest at the compact revision: older ones are unreachable
  return value.empty() || value[0] != 1;  // a delete there hides nothing reachable
}

absl::StatusOr<int64_t> Store::CompactRevisionOf(const storage::DataSnapshot& view) {
  std::unique_ptr<storage::DataCursor> c = view.OpenCursor();
  CursorSource s(c.get());
  return ReadCounter(&s, enc::kCompactRevision, 0);
}

bool Store::IsLatestLive(absl::string_view key, absl::string_view value,
                         std::string* last_prefix) {
  enc::ParsedHistoryKey p;
  if (!enc::ParseHistoryKey(key, &p)) return false;
  if (p.prefix == *last_prefix) return false;
  *last_prefix = std::string(p.prefix);
  return !value.empty() && value[0] != 1;
}

}  // namespace raftkv::mvcc
