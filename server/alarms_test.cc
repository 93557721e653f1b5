#include "server/alarms.h"

#include <unistd.h>

#include <fstream>
#include <string>

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

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
  ::unlink(path.c_str());
  return path;
}

TEST(AlarmsTest, APersistedCorruptAlarmIsRaisedAgainAfterARestart) {
  const std::string path = TempPath("corrupt_alarm");
  {
    Alarms alarms;
    ASSERT_TRUE(alarms.PersistCorrupt(path).ok());
    EXPECT_FALSE(alarms.Active(AlarmType::kCorrupt));
    alarms.Raise(AlarmType::kNoSpace, "full");  // not persisted
    alarms.Raise(AlarmType::kCorrupt, "hash differs");
  }
  Alarms restarted;
  ASSERT_TRUE(restarted.PersistCorrupt(path).ok());
  EXPECT_THAT(restarted.Describe(), ElementsAre("CORRUPT: raised before a restart: hash differs"));
  Alarms again;  // the prefix is not stacked
  ASSERT_TRUE(again.PersistCorrupt(path).ok());
  EXPECT_THAT(again.Describe(), ElementsAre("CORRUPT: raised before a restart: hash differs"));
}

TEST(AlarmsTest, ClearingThePersistedAlarmForgetsIt) {
  const std::string path = TempPath("cleared_alarm");
  std::string reason = "unset";
  ASSERT_TRUE(ClearPersistedCorrupt(path, &reason).ok());  // none: fine
  EXPECT_EQ(reason, "");
  {
    Alarms alarms;
    ASSERT_TRUE(alarms.PersistCorrupt(path).ok());
    alarms.Raise(AlarmType::kCorrupt, "bad block");
  }
  ASSERT_TRUE(ClearPersistedCorrupt(path, &reason).ok());
  EXPECT_EQ(reason, "bad block");
  Alarms restarted;
  ASSERT_TRUE(restarted.PersistCorrupt(path).ok());
  EXPECT_FALSE(restarted.Active(AlarmType::kCorrupt));
}

}  // namespace
}  // namespace raftkv::server
