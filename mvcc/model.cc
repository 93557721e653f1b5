#include "mvcc/model.h"

#include <utility>

#include "glog/logging.h"

namespace raftkv::mvcc {
namespace {

using model_internal::Record;
using model_internal::State;

// Calls fn(key, records) for every key of etcd's range [key, end) (see kv.h).
template <typename Fn>
void ForEachKey(const State& state, absl::string_view key, absl::string_view end, Fn fn) {
  if (end.empty()) {
    auto it = state.history.find(key);
    if (it != state.history.end()) fn(it->first, it->second);
    return;
  }
  const bool to_the_end = end == absl::string_view("\0", 1);
  for (auto it = state.history.lower_bound(key); it != state.history.end(); ++it) {
    if (!to_the_end && absl::string_view(it->first) >= end) break;
    fn(it->first, it->second);
  }
}

// The key's last record at or below `revision` (the state right after that
// revision), or null.
const Record* At(const std::vector<Record>& records, int64_t revision) {
  const Record* found = nullptr;
  for (const Record& r : records) {
    if (r.revision > revision) break;
    found = &r;
  }
  return found;
}

// The key's live value at `revision`, or null when absent or deleted.
const KeyValue* LiveAt(const std::vector<Record>& records, int64_t revision) {
  const Record* r = At(records, revision);
  return r == nullptr || r->tombstone ? nullptr : &r->kv;
}

// Range over `state` whose latest revision (as seen by the caller) is
// `current`: etcd's rangeKeys (mvcc/kvstore_txn.go).
absl::StatusOr<RangeResult> RangeState(const State& state, int64_t current, absl::string_view key,
                                       absl::string_view end, const RangeOptions& options) {
  if (options.revision > current) return FutureRevisionError();
  const int64_t rev = options.revision <= 0 ? current : options.revision;
  if (rev < state.compact_revision) return CompactedError();
  RangeResult result;
  int64_t bytes_held = 0;
  ForEachKey(state, key, end, [&](const std::string&, const std::vector<Record>& records) {
    const KeyValue* kv = LiveAt(records, rev);
    if (kv == nullptr) return;
    ++result.count;
    if (options.count_only) return;
    if (options.limit > 0 && static_cast<int64_t>(result.kvs.size()) >= options.limit) {
      result.more = true;
      return;
    }
    result.kvs.push_back(*kv);
    if (options.keys_only) result.kvs.back().value.clear();
    bytes_held += result.kvs.back().key.size() + result.kvs.back().value.size();
  });
  if (options.max_bytes > 0 && bytes_held > options.max_bytes) return TooLargeError();
  return result;
}

}  // namespace

// ---- ModelTxn ----

ModelTxn::ModelTxn(Model* model, const State& state, uint64_t index)
    : model_(model), state_(state), begin_revision_(state.revision), index_(index) {}

ModelTxn::~ModelTxn() { model_->txn_open_ = false; }

int64_t ModelTxn::revision() const { return changed_ ? begin_revision_ + 1 : begin_revision_; }

int64_t ModelTxn::compact_revision() const { return state_.compact_revision; }

absl::StatusOr<RangeResult> ModelTxn::Range(absl::string_view key, absl::string_view end,
                                            const RangeOptions& options) const {
  CHECK(!committed_) << "mvcc model: Range after Commit";
  return RangeState(state_, revision(), key, end, options);
}

// etcd's storeTxnWrite.put: the key's create_revision survives while it
// lives; a put after a delete (or on a new key) creates it again.
absl::StatusOr<std::optional<KeyValue>> ModelTxn::Put(absl::string_view key,
                                                      absl::string_view value, int64_t lease,
                                                      PrevKv want) {
  if (committed_) return absl::FailedPreconditionError("mvcc model: Put after Commit");
  if (key.empty()) return absl::InvalidArgumentError("mvcc model: empty key");
  const int64_t rev = begin_revision_ + 1;
  std::vector<Record>& records = state_.history[std::string(key)];
  std::optional<KeyValue> prev;
  if (const KeyValue* live = LiveAt(records, rev)) prev = *live;
  Record r;
  r.revision = rev;
  r.sub = next_sub_++;
  r.kv.key = std::string(key);
  r.kv.value = std::string(value);
  r.kv.create_revision = prev ? prev->create_revision : rev;
  r.kv.mod_revision = rev;
  r.kv.version = prev ? prev->version + 1 : 1;
  r.kv.lease = lease;
  r.kv.index = index_;
  records.push_back(std::move(r));
  changed_ = true;
  if (want == PrevKv::kSkip) return std::optional<KeyValue>();
  return prev;
}

// etcd's storeTxnWrite.deleteRange: a tombstone for every live key; no
// revision when nothing was live.
absl::StatusOr<std::vector<KeyValue>> ModelTxn::DeleteRange(absl::string_view key,
                                                            absl::string_view end) {
  if (committed_) return absl::FailedPreconditionError("mvcc model: DeleteRange after Commit");
  const int64_t rev = begin_revision_ + 1;
  std::vector<KeyValue> deleted;
  ForEachKey(state_, key, end, [&](const std::string& k, const std::vector<Record>& records) {
    if (const KeyValue* live = LiveAt(records, rev)) deleted.push_back(*live);
  });
  for (const KeyValue& kv : deleted) {
    Record r;
    r.revision = rev;
    r.sub = next_sub_++;
    r.tombstone = true;
    r.kv.key = kv.key;
    state_.history[kv.key].push_back(std::move(r));
  }
  if (!deleted.empty()) changed_ = true;
  return deleted;
}

void ModelTxn::Commit() {
  CHECK(!committed_) << "mvcc model: Commit twice";
  committed_ = true;
  if (!changed_) return;  // nothing written: no revision, nothing to publish
  state_.revision = begin_revision_ + 1;
  model_->committed_ = std::make_shared<const State>(std::move(state_));
}

// ---- Model ----

namespace {

class ModelReader : public Reader {
 public:
  explicit ModelReader(std::shared_ptr<const State> state) : state_(std::move(state)) {}
  int64_t revision() const override { return state_->revision; }
  int64_t compact_revision() const override { return state_->compact_revision; }
  absl::StatusOr<RangeResult> Range(absl::string_view key, absl::string_view end,
                                    const RangeOptions& options) const override {
    return RangeState(*state_, state_->revision, key, end, options);
  }

 private:
  const std::shared_ptr<const State> state_;
};

}  // namespace

Model::Model() : committed_(std::make_shared<const State>()) {}

std::unique_ptr<Reader> Model::Read() const { return std::make_unique<ModelReader>(committed_); }

std::unique_ptr<ModelTxn> Model::Write(uint64_t index) {
  // One writer at a time, as etcd's store serialises its write transactions.
  CHECK(!txn_open_) << "mvcc model: a second write transaction opened";
  txn_open_ = true;
  return std::unique_ptr<ModelTxn>(new ModelTxn(this, *committed_, index));
}

// etcd's compaction (mvcc/kvstore_compaction.go, keyIndex.compact): each key
// keeps its last record at or below `revision` unless it is a tombstone, and
// everything after; so every read at or above `revision` is unchanged.
absl::Status Model::Compact(int64_t revision) {
  CHECK(!txn_open_) << "mvcc model: Compact with a transaction open";
  if (revision <= committed_->compact_revision) return CompactedError();
  if (revision > committed_->revision) return FutureRevisionError();
  State next = *committed_;
  next.compact_revision = revision;
  for (auto it = next.history.begin(); it != next.history.end();) {
    std::vector<Record>& records = it->second;
    size_t keep = 0;  // first record to keep
    for (size_t i = 0; i < records.size() && records[i].revision <= revision; ++i) keep = i;
    if (!records.empty() && records[keep].revision <= revision && records[keep].tombstone) {
      ++keep;
    }
    records.erase(records.begin(), records.begin() + keep);
    if (records.empty()) {
      it = next.history.erase(it);
    } else {
      ++it;
    }
  }
  committed_ = std::make_shared<const State>(std::move(next));
  return absl::OkStatus();
}

}  // namespace raftkv::mvcc
