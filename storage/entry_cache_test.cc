#include "storage/entry_cache.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/test_util.h"

namespace raftkv::storage {
namespace {

using testing::MakeEntry;
using testing::MakeEntries;

std::vector<uint64_t> Indexes(const std::vector<raftpb::Entry>& es) {
  std::vector<uint64_t> out;
  for (const auto& e : es) out.push_back(e.index());
  return out;
}

constexpr uint64_t kNoLimit = ~uint64_t{0};

TEST(EntryCacheTest, ServesOnlyRangesItHoldsWhole) {
  EntryCache cache(1 << 20);
  cache.Append(MakeEntries(5, 10, 1));
  std::vector<raftpb::Entry> out;
  ASSERT_TRUE(cache.Get(5, 10, kNoLimit, &out));
  EXPECT_EQ(Indexes(out), (std::vector<uint64_t>{5, 6, 7, 8, 9}));
  out.clear();
  EXPECT_FALSE(cache.Get(4, 6, kNoLimit, &out));   // 4 is not cached
  EXPECT_FALSE(cache.Get(9, 11, kNoLimit, &out));  // nor is 10
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(cache.Term(7), 1u);
  EXPECT_FALSE(cache.Term(4).has_value());
  EXPECT_FALSE(cache.Term(10).has_value());
}

TEST(EntryCacheTest, AppendContinuesOrReplacesTheTail) {
  EntryCache cache(1 << 20);
  cache.Append(MakeEntries(1, 6, 1));
  cache.Append(MakeEntries(6, 8, 1));  // continues
  EXPECT_EQ(cache.first_index(), 1u);
  EXPECT_EQ(cache.size(), 7u);
  cache.Append(MakeEntries(4, 5, 2));  // a new leader's entry replaces 4..7
  EXPECT_EQ(cache.size(), 4u);
  EXPECT_EQ(cache.Term(3), 1u);
  EXPECT_EQ(cache.Term(4), 2u);
  EXPECT_FALSE(cache.Term(5).has_value());  // the replaced tail is gone
  std::vector<raftpb::Entry> out;
  EXPECT_FALSE(cache.Get(4, 6, kNoLimit, &out));
}

TEST(EntryCacheTest, ARunThatDoesNotTouchTheCachedOneStartsAfresh) {
  EntryCache cache(1 << 20);
  cache.Append(MakeEntries(10, 12, 1));
  cache.Append(MakeEntries(20, 22, 3));  // a gap (the log was replaced meanwhile)
  EXPECT_EQ(cache.first_index(), 20u);
  EXPECT_EQ(cache.size(), 2u);
  cache.Append(MakeEntries(5, 7, 3));  // before the cached run
  EXPECT_EQ(cache.first_index(), 5u);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.Term(20).has_value());
}

TEST(EntryCacheTest, OldestEntriesLeaveFirstPastTheByteBound) {
  const size_t one = MakeEntry(1, 1, 100).ByteSizeLong();
  EntryCache cache(3 * one);
  cache.Append(MakeEntries(1, 6, 1, 100));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.first_index(), 3u);
  EXPECT_EQ(cache.bytes(), 3 * one);
  EntryCache none(0);
  none.Append(MakeEntries(1, 3, 1));
  EXPECT_EQ(none.size(), 0u);
  EXPECT_EQ(none.bytes(), 0u);
}

TEST(EntryCacheTest, ByteBudgetOfAReadMatchesTheStore) {
  EntryCache cache(1 << 20);
  cache.Append(MakeEntries(1, 6, 1, 100));
  const uint64_t one = MakeEntry(1, 1, 100).ByteSizeLong();
  std::vector<raftpb::Entry> out;
  ASSERT_TRUE(cache.Get(1, 6, 2 * one, &out));
  EXPECT_EQ(out.size(), 2u);  // a third would pass the budget
  out.clear();
  ASSERT_TRUE(cache.Get(1, 6, 0, &out));
  EXPECT_EQ(out.size(), 1u);  // the first always comes
}

TEST(EntryCacheTest, DropThroughAndClear) {
  EntryCache cache(1 << 20);
  cache.Append(MakeEntries(1, 6, 1));
  cache.DropThrough(3);
  EXPECT_EQ(cache.first_index(), 4u);
  EXPECT_FALSE(cache.Term(3).has_value());
  EXPECT_EQ(cache.Term(4), 1u);
  cache.DropThrough(9);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
  cache.Append(MakeEntries(7, 9, 2));
  cache.Clear();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.first_index(), 0u);
}

}  // namespace
}  // namespace raftkv::storage
