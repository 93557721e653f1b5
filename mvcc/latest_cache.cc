#include "mvcc/latest_cache.h"

#include <utility>

namespace raftkv::mvcc {

std::optional<Newest> LatestCache::Find(absl::string_view key) {
  if (auto it = young_.find(key); it != young_.end()) return it->second;
  auto it = old_.find(key);
  if (it == old_.end()) return std::nullopt;
  const Newest n = it->second;
  old_bytes_ -= Cost(key);
  old_.erase(it);
  Set(key, n);
  return n;
}

void LatestCache::Set(absl::string_view key, const Newest& n) {
  if (Cost(key) > max_bytes_ / 2) {  // would not fit a generation
    complete_ = false;
    return;
  }
  if (auto it = young_.find(key); it != young_.end()) {
    it->second = n;
    return;
  }
  if (auto it = old_.find(key); it != old_.end()) {
    old_bytes_ -= Cost(key);
    old_.erase(it);
  }
  if (young_bytes_ + Cost(key) > max_bytes_ / 2) {
    if (!old_.empty()) complete_ = false;
    old_ = std::move(young_);
    old_bytes_ = young_bytes_;
    young_ = Map();
    young_bytes_ = 0;
  }
  young_.emplace(std::string(key), n);
  young_bytes_ += Cost(key);
}

void LatestCache::Clear() {
  young_ = Map();
  old_ = Map();
  young_bytes_ = old_bytes_ = 0;
  complete_ = false;
}

}  // namespace raftkv::mvcc
