#include "server/alarms.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

using ::testing::ElementsAre;

TEST(AlarmsTest, RaiseReportsOnlyTheFirstRaiseAndKeepsTheNewestReason) {
  Alarms alarms;
  EXPECT_FALSE(alarms.Active(AlarmType::kNoSpace));
  EXPECT_TRUE(alarms.Raise(AlarmType::kNoSpace, "10 MiB free"));
  EXPECT_FALSE(alarms.Raise(AlarmType::kNoSpace, "5 MiB free"));
  EXPECT_TRUE(alarms.Active(AlarmType::kNoSpace));
  EXPECT_FALSE(alarms.Active(AlarmType::kCorrupt));
  EXPECT_THAT(alarms.Describe(), ElementsAre("NOSPACE: 5 MiB free"));
}

TEST(AlarmsTest, ListsInTypeOrderAndClears) {
  Alarms alarms;
  alarms.Raise(AlarmType::kCorrupt, "bad block");
  alarms.Raise(AlarmType::kNoSpace, "full");
  EXPECT_THAT(alarms.Describe(), ElementsAre("NOSPACE: full", "CORRUPT: bad block"));
  EXPECT_TRUE(alarms.Clear(AlarmType::kNoSpace));
  EXPECT_FALSE(alarms.Clear(AlarmType::kNoSpace));
  EXPECT_THAT(alarms.Describe(), ElementsAre("CORRUPT: bad block"));
}

}  // namespace
}  // namespace raftkv::server
