// Histogram: a log-bucketed, HDR-style histogram of non-negative integers
// (latencies in nanoseconds, say) with bounded relative error.
//
// Values below 2^(kSubBits+1) get a bucket each; above that, every power of
// two [2^m, 2^(m+1)) is cut into 2^kSubBits equal buckets. So a bucket is at
// most 1/2^kSubBits (0.78%) of its values wide, whatever their magnitude, and
// the whole range of uint64 fits in under 8k counters (60 KiB). Recording is
// a few shifts and an increment; min, max, count and sum are exact.
// Not thread-safe: keep one per thread and Merge them.
#ifndef RAFTKV_TOOLS_HISTOGRAM_H_
#define RAFTKV_TOOLS_HISTOGRAM_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace raftkv::tools {

class Histogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;

  Histogram();

  void Record(uint64_t value) { RecordN(value, 1); }
  void RecordN(uint64_t value, uint64_t n);
  void Merge(const Histogram& other);
  void Clear();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0 : static_cast<double>(sum_) / count_; }

  // The value at percentile p (0..100): the smallest recorded value v such
  // that at least p% of the values are <= v, to within one bucket (reported
  // as the bucket's midpoint, clamped to [min, max]). 0 when empty.
  uint64_t Percentile(double p) const;

  // Bucket arithmetic, public for tests.
  static size_t BucketOf(uint64_t value);
  static uint64_t BucketLow(size_t bucket);   // smallest value in the bucket
  static uint64_t BucketHigh(size_t bucket);  // largest value in the bucket
  static size_t NumBuckets();

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = 0;
  uint64_t max_ = 0;
  // Wraps only past 2^64 ns (584 years) summed; fine for latencies.
  uint64_t sum_ = 0;
};

}  // namespace raftkv::tools

#endif  // RAFTKV_TOOLS_HISTOGRAM_H_
