#include "storage/encoding.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace raftkv::storage {
namespace {

TEST(EncodingTest, RoundTrips) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{255}, uint64_t{256},
                     uint64_t{0x0102030405060708}, ~uint64_t{0}}) {
    std::string s = EncodeFixed64BE(v);
    ASSERT_EQ(s.size(), kIndexKeySize);
    EXPECT_EQ(DecodeFixed64BE(s), v);
  }
}

TEST(EncodingTest, BigEndianLayout) {
  EXPECT_EQ(EncodeFixed64BE(0x0102030405060708),
            std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
}

TEST(EncodingTest, BytewiseOrderIsNumericOrder) {
  std::vector<uint64_t> values = {0, 1, 2, 255, 256, 257, 65535, 65536,
                                  uint64_t{1} << 40, ~uint64_t{0}};
  std::vector<std::string> keys;
  for (uint64_t v : values) keys.push_back(LogKey(v));
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
}

TEST(EncodingTest, RejectsWrongSize) {
  EXPECT_EQ(DecodeFixed64BE(""), std::nullopt);
  EXPECT_EQ(DecodeFixed64BE("1234567"), std::nullopt);
  EXPECT_EQ(DecodeFixed64BE("123456789"), std::nullopt);
}

}  // namespace
}  // namespace raftkv::storage
