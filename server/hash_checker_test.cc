#include "server/hash_checker.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(HashCheckerOptionsTest, ScanRateIsZeroOrAtLeast64KiB) {
  HashCheckerOptions o;
  o.self_id = 1;
  o.ask = [](uint64_t, uint64_t) { return std::optional<uint64_t>(); };
  EXPECT_TRUE(o.Validate().ok());
  EXPECT_EQ(o.bytes_per_sec, 64u << 20);
  o.bytes_per_sec = 0;  // unthrottled
  EXPECT_TRUE(o.Validate().ok());
  o.bytes_per_sec = 1000;
  EXPECT_THAT(std::string(o.Validate().message()),
              ::testing::HasSubstr("bytes_per_sec is 1000; 0 or at least 65536"));
}

TEST(HashCheckerDecideTest, AMajorityNamesTheMemberThatDiffers) {
  auto v = HashChecker::Decide({1, 2, 3}, {{1, 7}, {2, 7}, {3, 9}});
  EXPECT_EQ(v.majority, 7u);
  EXPECT_THAT(v.differing, ElementsAre(3));
  EXPECT_FALSE(v.no_majority);
}

TEST(HashCheckerDecideTest, TwoOfThreeAgreeingIsEnoughEvenIfOneIsSilent) {
  auto v = HashChecker::Decide({1, 2, 3}, {{1, 7}, {3, 7}});
  EXPECT_EQ(v.majority, 7u);
  EXPECT_THAT(v.differing, IsEmpty());
}

TEST(HashCheckerDecideTest, NoVerdictWhileVotersAreMissing) {
  auto v = HashChecker::Decide({1, 2, 3}, {{1, 7}, {2, 9}});
  EXPECT_FALSE(v.majority.has_value());
  EXPECT_FALSE(v.no_majority) << "the third voter may still side with one";
}

TEST(HashCheckerDecideTest, AllAnsweredAndNoMajorityAgrees) {
  auto v = HashChecker::Decide({1, 2, 3}, {{1, 7}, {2, 8}, {3, 9}});
  EXPECT_FALSE(v.majority.has_value());
  EXPECT_TRUE(v.no_majority);
  // An even split of four: no majority either.
  v = HashChecker::Decide({1, 2, 3, 4}, {{1, 7}, {2, 7}, {3, 9}, {4, 9}});
  EXPECT_TRUE(v.no_majority);
}

TEST(HashCheckerDecideTest, NonVotersDoNotCount) {
  // Learner 4's hash is ignored: only voters decide.
  auto v = HashChecker::Decide({1, 2, 3}, {{1, 7}, {4, 9}, {5, 9}});
  EXPECT_FALSE(v.majority.has_value());
  EXPECT_FALSE(v.no_majority);
}

}  // namespace
}  // namespace raftkv::server
