#include "storage/entry_cache.h"

#include "glog/logging.h"

namespace raftkv::storage {

void EntryCache::PopBack() {
  bytes_ -= entries_.back().bytes;
  entries_.pop_back();
}

void EntryCache::PopFront() {
  bytes_ -= entries_.front().bytes;
  entries_.pop_front();
}

void EntryCache::Append(const std::vector<raftpb::Entry>& entries) {
  CHECK(!entries.empty());
  const uint64_t first = entries.front().index();
  if (entries_.empty() || first < first_index() ||
      first > first_index() + entries_.size()) {
    Clear();
  } else {
    while (!entries_.empty() && entries_.back().entry.index() >= first) PopBack();
  }
  for (const raftpb::Entry& e : entries) {
    const size_t bytes = e.ByteSizeLong();
    entries_.push_back(Cached{e, bytes});
    bytes_ += bytes;
  }
  while (!entries_.empty() && bytes_ > max_bytes_) PopFront();
}

void EntryCache::DropThrough(uint64_t index) {
  while (!entries_.empty() && entries_.front().entry.index() <= index) PopFront();
}

void EntryCache::Clear() {
  entries_.clear();
  bytes_ = 0;
}

bool EntryCache::Get(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                     std::vector<raftpb::Entry>* out) const {
  DCHECK_LT(lo, hi);
  if (!Holds(lo) || !Holds(hi - 1)) return false;
  const size_t start = out->size();
  uint64_t total = 0;
  for (uint64_t i = lo; i < hi; ++i) {
    const Cached& c = entries_[i - first_index()];
    if (out->size() > start && (total > max_bytes || c.bytes > max_bytes - total)) break;
    total += c.bytes;
    out->push_back(c.entry);
  }
  return true;
}

std::optional<uint64_t> EntryCache::Term(uint64_t i) const {
  if (!Holds(i)) return std::nullopt;
  return entries_[i - first_index()].entry.term();
}

}  // namespace raftkv::storage
