#include "mvcc/latest_cache.h"

#include <string>

#include "gtest/gtest.h"

namespace raftkv::mvcc {
namespace {

Newest At(int64_t rev) {
  Newest n;
  n.live = true;
  n.mod_revision = rev;
  n.create_revision = 1;
  n.version = rev;
  return n;
}

TEST(LatestCacheTest, FindsWhatWasSetLastAndNothingElse) {
  LatestCache c(1 << 20);
  EXPECT_FALSE(c.Find("a").has_value());
  c.Set("a", At(2));
  c.Set("a", At(3));
  ASSERT_TRUE(c.Find("a").has_value());
  EXPECT_EQ(*c.Find("a"), At(3));
  EXPECT_FALSE(c.Find("b").has_value());
  Newest gone;
  gone.mod_revision = 4;
  c.Set("a", gone);
  EXPECT_FALSE(c.Find("a")->live);
  c.Clear();
  EXPECT_FALSE(c.Find("a").has_value());
  EXPECT_EQ(c.bytes(), 0u);
}

TEST(LatestCacheTest, StaysWithinItsBudgetAndKeepsWhatIsUsed) {
  const size_t per = 8 + LatestCache::kEntryOverhead;  // 8-byte keys
  LatestCache c(10 * per);                              // 5 entries per generation
  c.Set("hotkey00", At(1));
  for (int i = 0; i < 1000; ++i) {
    char key[9];
    snprintf(key, sizeof key, "key%05d", i);
    c.Set(key, At(i + 2));
    ASSERT_LE(c.bytes(), 10 * per);
    ASSERT_TRUE(c.Find("hotkey00").has_value()) << i;  // used: never dropped
  }
  EXPECT_LE(c.entries(), 10u);
  EXPECT_FALSE(c.Find("key00000").has_value());  // long unused: dropped
  EXPECT_TRUE(c.Find("key00999").has_value());
}

TEST(LatestCacheTest, ZeroBytesCachesNothing) {
  LatestCache c(0);
  c.Set("a", At(2));
  EXPECT_FALSE(c.Find("a").has_value());
  EXPECT_EQ(c.bytes(), 0u);
}

}  // namespace
}  // namespace raftkv::mvcc

namespace raftkv::mvcc {
namespace {

TEST(LatestCacheTest, CompleteUntilAnEntryIsDroppedOrRefused) {
  const size_t per = 1 + LatestCache::kEntryOverhead;
  LatestCache c(4 * per);  // 2 entries per generation
  c.MarkComplete();
  c.Set("a", At(1));
  c.Set("b", At(2));
  c.Set("c", At(3));  // a and b move to the older generation
  EXPECT_TRUE(c.complete()) << "nothing dropped yet";
  c.Set("d", At(4));
  c.Set("e", At(5));  // a and b dropped
  EXPECT_FALSE(c.complete());

  LatestCache d(4 * per);
  d.MarkComplete();
  d.Set(std::string(3 * per, 'k'), At(1));  // larger than a generation
  EXPECT_FALSE(d.complete());

  LatestCache e(4 * per);
  e.MarkComplete();
  e.Clear();
  EXPECT_FALSE(e.complete());
}

}  // namespace
}  // namespace raftkv::mvcc
