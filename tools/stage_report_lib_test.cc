#include "tools/stage_report_lib.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace raftkv::tools {
namespace {

TEST(StageReportTest, MeasuresFromArrivalAndTakesTheQuorumFollower) {
  const std::string leader =
      "arrived 16 1000\nproposed 16 3000\nappends_sent 16 5000\n"
      "ack_received 16 20000\napplied 16 25000\nanswered 16 27000\n"
      "applied 16 99000\n";  // only the first record of a stage counts
  // Follower A acked later than B: B's stages are reported.
  const std::string a = "follower_received 16 6000\nfollower_acked 16 30000\n";
  const std::string b = "follower_received 16 7000\nfollower_synced 16 15000\n"
                        "follower_acked 16 18000\n";
  auto rows = BuildStageReport({a, leader, b});
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::map<std::string, double> p50;
  for (const auto& r : *rows) p50[r.stage] = r.p50_us;
  EXPECT_DOUBLE_EQ(p50["proposed"], 2.0);
  EXPECT_DOUBLE_EQ(p50["follower_received"], 6.0);
  EXPECT_DOUBLE_EQ(p50["follower_synced"], 14.0);
  EXPECT_DOUBLE_EQ(p50["follower_acked"], 17.0);
  EXPECT_DOUBLE_EQ(p50["applied"], 24.0);
  EXPECT_DOUBLE_EQ(p50["answered"], 26.0);
  ASSERT_FALSE(rows->empty());
  EXPECT_EQ(rows->front().stage, "proposed");
  EXPECT_EQ(rows->back().stage, "answered");
}

TEST(StageReportTest, RefusesMalformedOrEmptyTraces) {
  EXPECT_FALSE(BuildStageReport({"arrived 16\n"}).ok());
  EXPECT_FALSE(BuildStageReport({"proposed 16 5\n", ""}).ok());  // nothing answered
  EXPECT_FALSE(BuildStageReport({}).ok());
}

}  // namespace
}  // namespace raftkv::tools
