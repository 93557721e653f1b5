#include "tools/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace raftkv::tools {
namespace {

// The exact percentile of a sorted sample, by the same rank rule.
uint64_t Exact(const std::vector<uint64_t>& sorted, double p) {
  uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100.0 * sorted.size()));
  rank = std::clamp<uint64_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

// Within one bucket's width: 1/128 relative.
void ExpectClose(uint64_t got, uint64_t want) {
  const double tol = std::max(1.0, static_cast<double>(want) / Histogram::kSub);
  EXPECT_LE(std::abs(static_cast<double>(got) - static_cast<double>(want)), tol)
      << "got " << got << " want " << want;
}

TEST(HistogramTest, Empty) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(50), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.mean(), 0);
}

TEST(HistogramTest, BucketsAreContiguousAndNarrow) {
  const size_t n = Histogram::NumBuckets();
  EXPECT_LT(n, 8192u);
  EXPECT_EQ(Histogram::BucketLow(0), 0u);
  for (size_t b = 1; b < n; ++b) {
    ASSERT_EQ(Histogram::BucketLow(b), Histogram::BucketHigh(b - 1) + 1) << b;
    const uint64_t low = Histogram::BucketLow(b), high = Histogram::BucketHigh(b);
    ASSERT_LE(high - low, low / Histogram::kSub) << b;  // <= 1/128 of its values
    ASSERT_EQ(Histogram::BucketOf(low), b);
    ASSERT_EQ(Histogram::BucketOf(high), b);
  }
  EXPECT_EQ(Histogram::BucketHigh(n - 1), ~uint64_t{0});
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.Percentile(50), 50u);
  EXPECT_EQ(h.Percentile(90), 90u);
  EXPECT_EQ(h.Percentile(99), 99u);
  EXPECT_EQ(h.Percentile(99.9), 100u);
  EXPECT_EQ(h.Percentile(100), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(HistogramTest, ConstantValue) {
  Histogram h;
  h.RecordN(123456789, 1000);
  // Clamped to [min, max]: exact although the bucket is wide.
  EXPECT_EQ(h.Percentile(0), 123456789u);
  EXPECT_EQ(h.Percentile(50), 123456789u);
  EXPECT_EQ(h.Percentile(99.9), 123456789u);
  EXPECT_EQ(h.max(), 123456789u);
}

TEST(HistogramTest, UniformMatchesExactPercentiles) {
  Histogram h;
  std::vector<uint64_t> all;
  for (uint64_t v = 1; v <= 1000000; ++v) {
    h.Record(v * 1000);  // 1 us .. 1 s in ns
    all.push_back(v * 1000);
  }
  for (double p : {1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99}) {
    SCOPED_TRACE(p);
    ExpectClose(h.Percentile(p), Exact(all, p));
  }
  ExpectClose(h.Percentile(50), 500000000);
  ExpectClose(h.Percentile(99), 990000000);
  EXPECT_EQ(h.max(), 1000000000u);
}

TEST(HistogramTest, LogNormalLatenciesMatchSortedSample) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(std::log(2e6), 1.0);  // median 2 ms in ns
  Histogram h;
  std::vector<uint64_t> all;
  for (int i = 0; i < 200000; ++i) {
    const uint64_t v = static_cast<uint64_t>(dist(rng));
    h.Record(v);
    all.push_back(v);
  }
  std::sort(all.begin(), all.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    SCOPED_TRACE(p);
    ExpectClose(h.Percentile(p), Exact(all, p));
  }
  // The distribution's own median, loosely.
  EXPECT_NEAR(static_cast<double>(h.Percentile(50)), 2e6, 2e6 * 0.02);
  EXPECT_EQ(h.max(), all.back());
  EXPECT_EQ(h.min(), all.front());
}

TEST(HistogramTest, BimodalTail) {
  // 99% fast (1 ms), 1% slow (100 ms): p99 is still fast, p99.9 is slow.
  Histogram h;
  h.RecordN(1000000, 99000);
  h.RecordN(100000000, 1000);
  ExpectClose(h.Percentile(50), 1000000);
  ExpectClose(h.Percentile(99), 1000000);
  ExpectClose(h.Percentile(99.5), 100000000);
  ExpectClose(h.Percentile(99.9), 100000000);
  EXPECT_EQ(h.max(), 100000000u);
}

TEST(HistogramTest, MergeEqualsRecordingAll) {
  Histogram a, b, all;
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> dist(1.0 / 5e5);
  for (int i = 0; i < 50000; ++i) {
    const uint64_t v = static_cast<uint64_t>(dist(rng));
    (i % 3 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  for (double p : {50.0, 90.0, 99.0, 99.9}) EXPECT_EQ(a.Percentile(p), all.Percentile(p));
  // Exponential with mean 0.5 ms: median = ln2 * mean.
  EXPECT_NEAR(static_cast<double>(all.Percentile(50)), std::log(2.0) * 5e5, 5e5 * 0.03);

  Histogram empty;
  a.Merge(empty);
  EXPECT_EQ(a.count(), all.count());
  empty.Merge(all);
  EXPECT_EQ(empty.min(), all.min());
  a.Clear();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.Percentile(50), 0u);
}

TEST(HistogramTest, HugeValues) {
  Histogram h;
  h.Record(~uint64_t{0});
  h.Record(uint64_t{1} << 62);
  EXPECT_EQ(h.max(), ~uint64_t{0});
  EXPECT_EQ(h.Percentile(100), ~uint64_t{0});
  ExpectClose(h.Percentile(50), uint64_t{1} << 62);
}

}  // namespace
}  // namespace raftkv::tools
