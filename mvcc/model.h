// An in-memory reference implementation of the interface in mvcc/kv.h: every
// revision of every key kept in plain maps, etcd's MVCC rules written out as
// directly as possible. It is the oracle of the randomized tests of the
// RocksDB store and the store of the etcd KV apply tests; it favours
// obviousness over speed (a write transaction copies the whole state).
//
// Thread-safety: a Model and its ModelTxn are not thread-safe. A Reader from
// Read() is immutable (it shares a frozen copy of the committed state) and
// may be used from any thread, also after the Model is gone.
#ifndef RAFTKV_MVCC_MODEL_H_
#define RAFTKV_MVCC_MODEL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mvcc/kv.h"

namespace raftkv::mvcc {

namespace model_internal {

// One write of one key: a put (the key's new KeyValue) or a delete.
struct Record {
  int64_t revision = 0;  // main revision of the write
  int64_t sub = 0;       // order of the write inside its transaction
  bool tombstone = false;
  KeyValue kv;  // for a tombstone only kv.key is set
};

// The whole store. Invariant: each key's records are in (revision, sub)
// order; revision >= 1; compact_revision <= revision.
struct State {
  std::map<std::string, std::vector<Record>, std::less<>> history;
  int64_t revision = 1;  // etcd's empty store is at revision 1
  int64_t compact_revision = 0;
};

}  // namespace model_internal

class Model;

// The one open write transaction of a Model. Its writes are visible to its
// own reads only, until Commit(); destroying it without Commit() discards
// them. REQUIRES: the Model outlives it.
class ModelTxn : public WriteTxn {
 public:
  ~ModelTxn() override;
  ModelTxn(const ModelTxn&) = delete;
  ModelTxn& operator=(const ModelTxn&) = delete;

  int64_t revision() const override;
  int64_t compact_revision() const override;
  absl::StatusOr<RangeResult> Range(absl::string_view key, absl::string_view end,
                                    const RangeOptions& options) const override;
  absl::StatusOr<std::optional<KeyValue>> Put(absl::string_view key, absl::string_view value,
                                              int64_t lease, PrevKv want) override;
  absl::StatusOr<std::vector<KeyValue>> DeleteRange(absl::string_view key,
                                                    absl::string_view end) override;

  // Makes the writes visible to Model::Read(). REQUIRES: called at most once.
  void Commit();

 private:
  friend class Model;
  ModelTxn(Model* model, const model_internal::State& state, uint64_t index);

  Model* const model_;
  model_internal::State state_;  // a private copy, with this txn's writes
  const int64_t begin_revision_;
  const uint64_t index_;
  bool changed_ = false;
  int64_t next_sub_ = 0;
  bool committed_ = false;
};

class Model {
 public:
  Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // A view of the latest committed state; it stays valid and unchanged
  // whatever happens to the Model later.
  std::unique_ptr<Reader> Read() const;

  // Opens a write transaction whose writes carry the Raft log index `index`
  // (KeyValue::index). REQUIRES: no other transaction of this Model is open.
  std::unique_ptr<ModelTxn> Write(uint64_t index);

  // Forgets the history below `revision`: Range below it fails Compacted,
  // Range at or above it answers exactly as before. CompactedError() if
  // revision <= compact_revision(), FutureRevisionError() if > revision().
  // REQUIRES: no transaction open.
  absl::Status Compact(int64_t revision);

  int64_t revision() const { return committed_->revision; }
  int64_t compact_revision() const { return committed_->compact_revision; }

 private:
  friend class ModelTxn;
  std::shared_ptr<const model_internal::State> committed_;
  bool txn_open_ = false;
};

}  // namespace raftkv::mvcc

#endif  // RAFTKV_MVCC_MODEL_H_
