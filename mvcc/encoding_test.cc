#include "mvcc/encoding.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace raftkv::mvcc::encoding {
namespace {

TEST(EncodingTest, HistoryKeysSortByKeyThenNewestFirst) {
  // Keys that are prefixes of each other and hold zero bytes are where a
  // naive concatenation would interleave records of different keys.
  const std::vector<std::string> keys = {std::string(""),        std::string("\0", 1),
                                         std::string("\0\0", 2), std::string("\0\x01", 2),
                                         std::string("a"),       std::string("a\0", 2),
                                         std::string("a\0b", 3), std::string("a\x01"),
                                         std::string("ab"),      std::string("b\xff")};
  std::vector<std::pair<std::string, std::pair<std::string, int64_t>>> records;
  for (const std::string& k : keys) {
    for (int64_t rev : std::vector<int64_t>{1, 2, 255, 256, 1LL << 40}) {
      records.push_back({HistoryKey(k, rev), {k, rev}});
    }
  }
  std::mt19937 rng(7);
  std::shuffle(records.begin(), records.end(), rng);
  std::sort(records.begin(), records.end());
  for (size_t i = 1; i < records.size(); ++i) {
    const auto& [ka, ra] = records[i - 1].second;
    const auto& [kb, rb] = records[i].second;
    ASSERT_TRUE(ka < kb || (ka == kb && ra > rb)) << i;
  }
  for (const auto& [data_key, kr] : records) {
    ParsedHistoryKey p;
    ASSERT_TRUE(ParseHistoryKey(data_key, &p));
    EXPECT_EQ(p.revision, kr.second);
    std::string key;
    ASSERT_TRUE(Unescape(p.prefix, &key));
    EXPECT_EQ(key, kr.first);
    EXPECT_EQ(p.prefix, HistoryPrefix(kr.first));
    // PastKey sorts after every record of this key and before the next key's.
    EXPECT_GT(PastKey(p.prefix), data_key);
  }
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    EXPECT_LT(PastKey(HistoryPrefix(keys[i])), HistoryKey(keys[i + 1], 1LL << 40));
  }
}

TEST(EncodingTest, RecordsRoundTripAndCorruptionIsRefused) {
  Record r;
  r.create_revision = 5;
  r.version = 3;
  r.lease = 1234567890123;
  r.index = 99;
  r.value = std::string("v\0al", 4);
  absl::StatusOr<Record> back = DecodeRecord(EncodeRecord(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->value, r.value);
  EXPECT_EQ(back->create_revision, 5);
  EXPECT_EQ(back->version, 3);
  EXPECT_EQ(back->lease, r.lease);
  EXPECT_EQ(back->index, 99u);
  EXPECT_FALSE(back->tombstone);

  Record t;
  t.tombstone = true;
  t.index = 7;
  back = DecodeRecord(EncodeRecord(t));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->tombstone);

  EXPECT_EQ(DecodeRecord("").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeRecord("\x02").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeRecord(std::string("\0\x80", 2)).status().code(), absl::StatusCode::kDataLoss);
  // A tombstone with a value is not one the store writes.
  std::string bad = EncodeRecord(t) + "x";
  EXPECT_EQ(DecodeRecord(bad).status().code(), absl::StatusCode::kDataLoss);
}

TEST(EncodingTest, RevisionIndexKeysSortByRevision) {
  EXPECT_LT(RevisionIndexKey(1, 5), RevisionIndexKey(2, 0));
  EXPECT_LT(RevisionIndexKey(255, 0), RevisionIndexKey(256, 0));
  int64_t rev = 0;
  uint32_t sub = 0;
  ASSERT_TRUE(ParseRevisionIndexKey(RevisionIndexKey(1LL << 50, 7), &rev, &sub));
  EXPECT_EQ(rev, 1LL << 50);
  EXPECT_EQ(sub, 7u);
  EXPECT_FALSE(ParseRevisionIndexKey("v123", &rev, &sub));
}

}  // namespace
}  // namespace raftkv::mvcc::encoding
