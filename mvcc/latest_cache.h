// LatestCache: what the store last knew of some keys' newest records, so a
// write need not seek a key's history to number its next version (etcd keeps
// every key's index in memory; raftkv keeps a bounded part of it).
//
// An entry is the truth for its key as of the last applied batch: the store
// sets it whenever a batch writes the key or a seek finds its newest record,
// and clears the cache whenever the data is replaced (a snapshot). A key not
// cached is looked up on disk. Compaction never changes a key's newest record
// (it removes only older ones, or a newest delete, which reads as "no key"
// either way), so it leaves entries true.
//
// Bounded by `max_bytes` (keys plus a fixed cost per entry): two generations,
// the older dropped whole when the younger fills half the budget; a hit in the
// older moves the entry to the younger. Thread-compatible (the apply thread).
//
// Complete: the owner may declare that the cache holds every live key (it
// loaded them all); then a key not found has no live record, and needs no
// disk read either. Dropping any entry, or refusing one, ends completeness.
#ifndef RAFTKV_MVCC_LATEST_CACHE_H_
#define RAFTKV_MVCC_LATEST_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace raftkv::mvcc {

// A key's newest record, without its value.
struct Newest {
  bool live = false;  // false: never written, or deleted last
  int64_t mod_revision = 0;  // of the newest record (0 if none)
  int64_t create_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
  uint64_t index = 0;

  friend bool operator==(const Newest& a, const Newest& b) {
    return a.live == b.live && a.mod_revision == b.mod_revision &&
           a.create_revision == b.create_revision && a.version == b.version &&
           a.lease == b.lease && a.index == b.index;
  }
};

class LatestCache {
 public:
  // What an entry costs besides its key's bytes (the map's slot, the
  // string's heap block).
  static constexpr size_t kEntryOverhead = 96;

  // REQUIRES: max_bytes >= 0 (0: caches nothing).
  explicit LatestCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  std::optional<Newest> Find(absl::string_view key);
  void Set(absl::string_view key, const Newest& n);
  void Clear();  // and not complete

  // Declares that every live key has an entry (see above).
  void MarkComplete() { complete_ = true; }
  bool complete() const { return complete_; }

  size_t entries() const { return young_.size() + old_.size(); }
  size_t bytes() const { return young_bytes_ + old_bytes_; }

 private:
  using Map = absl::flat_hash_map<std::string, Newest>;
  static size_t Cost(absl::string_view key) { return key.size() + kEntryOverhead; }

  const size_t max_bytes_;
  Map young_, old_;
  size_t young_bytes_ = 0, old_bytes_ = 0;
  bool complete_ = false;
};

}  // namespace raftkv::mvcc

#endif  // RAFTKV_MVCC_LATEST_CACHE_H_
