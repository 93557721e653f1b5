#include "tools/histogram.h"

#include <algorithm>
#include <cmath>

namespace raftkv::tools {

// Bucket b < 2*kSub holds exactly the value b. Above, a value v with its
// highest bit at position m (m > kSubBits) is shifted right by
// s = m - kSubBits so that its top kSubBits+1 bits t are in [kSub, 2*kSub);
// its bucket is s*kSub + t, which continues the first range seamlessly.
size_t Histogram::BucketOf(uint64_t value) {
  if (value < 2 * kSub) return static_cast<size_t>(value);
  const int msb = 63 - __builtin_clzll(value);
  const int shift = msb - kSubBits;
  return static_cast<size_t>(shift) * kSub + static_cast<size_t>(value >> shift);
}

uint64_t Histogram::BucketLow(size_t bucket) {
  if (bucket < 2 * kSub) return bucket;
  const size_t shift = bucket / kSub - 1;
  const uint64_t top = bucket - shift * kSub;
  return top << shift;
}

uint64_t Histogram::BucketHigh(size_t bucket) {
  if (bucket < 2 * kSub) return bucket;
  const size_t shift = bucket / kSub - 1;
  return BucketLow(bucket) + ((uint64_t{1} << shift) - 1);
}

size_t Histogram::NumBuckets() { return BucketOf(~uint64_t{0}) + 1; }

Histogram::Histogram() : counts_(NumBuckets(), 0) {}

void Histogram::RecordN(uint64_t value, uint64_t n) {
  if (n == 0) return;
  counts_[BucketOf(value)] += n;
  if (count_ == 0 || value < min_) min_ = value;
  if (value > max_) max_ = value;
  count_ += n;
  sum_ += value * n;
}

void Histogram::Merge(const Histogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  if (count_ == 0 || other.min_ < min_) min_ = other.min_;
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

void Histogram::Clear() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = min_ = max_ = sum_ = 0;
}

uint64_t Histogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  if (p <= 0) return min_;
  if (p >= 100) return max_;
  // The rank (1-based) of the value we want.
  uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t b = BucketOf(min_); b < counts_.size(); ++b) {
    seen += counts_[b];
    if (seen >= rank) {
      const uint64_t low = BucketLow(b), high = BucketHigh(b);
      const uint64_t mid = low + (high - low) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace raftkv::tools
