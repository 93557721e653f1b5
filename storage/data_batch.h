// DataBatch: the puts and deletes one ApplyBatch writes to the `data` column
// family, atomically with the applied index.
//
// A plain value type: build it, then hand it to LogStore::ApplyBatch or
// LogStore::ApplySnapshot, which read it and leave it unchanged. Operations
// take effect in the order they were added (a later Put of a key wins over an
// earlier Delete of it). Not thread-safe; one thread builds a batch.
#ifndef RAFTKV_STORAGE_DATA_BATCH_H_
#define RAFTKV_STORAGE_DATA_BATCH_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace raftkv::storage {

class DataBatch {
 public:
  enum class OpType { kPut, kDelete };
  struct Op {
    OpType type;
    std::string key;
    std::string value;  // empty for kDelete
  };

  void Put(absl::string_view key, absl::string_view value) {
    bytes_ += key.size() + value.size();
    ops_.push_back({OpType::kPut, std::string(key), std::string(value)});
  }
  void Delete(absl::string_view key) {
    bytes_ += key.size();
    ops_.push_back({OpType::kDelete, std::string(key), std::string()});
  }
  void Clear() {
    ops_.clear();
    bytes_ = 0;
  }

  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  // Total bytes of keys and values.
  size_t ByteSize() const { return bytes_; }
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
  size_t bytes_ = 0;
};

}  // namespace raftkv::storage

#endif  // RAFTKV_STORAGE_DATA_BATCH_H_
