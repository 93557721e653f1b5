#include "server/corruption_guard.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/alarms.h"

namespace raftkv::server {
namespace {

using ::testing::HasSubstr;

TEST(CorruptionGuardTest, OnlyDataLossRaisesTheAlarm) {
  Alarms alarms;
  CorruptionGuard guard(2, &alarms);
  EXPECT_TRUE(guard.AdmitRead().ok());
  for (const absl::Status& s : {absl::OkStatus(), absl::NotFoundError("key not found"),
                                absl::InternalError("io"), absl::UnavailableError("x")}) {
    EXPECT_EQ(guard.Check(s), s);
  }
  EXPECT_FALSE(guard.corrupt());
  EXPECT_FALSE(alarms.Active(AlarmType::kCorrupt));
  EXPECT_TRUE(guard.AdmitRead().ok());
}

TEST(CorruptionGuardTest, CorruptionRaisesCorruptAndRefusesReadsFromThenOn) {
  Alarms alarms;
  CorruptionGuard guard(2, &alarms);
  absl::Status s = guard.Check(
      absl::DataLossError("storage dir /d: ScanData: Corruption: block checksum mismatch"));
  EXPECT_TRUE(absl::IsDataLoss(s));
  EXPECT_EQ(s.message(),
            "node 2: data corruption: storage dir /d: ScanData: Corruption: block checksum "
            "mismatch; this node no longer serves reads");
  EXPECT_TRUE(guard.corrupt());
  ASSERT_TRUE(alarms.Active(AlarmType::kCorrupt));
  ASSERT_EQ(alarms.Describe().size(), 1u);
  EXPECT_THAT(alarms.Describe()[0], HasSubstr("CORRUPT: data corruption: storage dir /d"));
  EXPECT_THAT(alarms.Describe()[0], HasSubstr("kvctl member remove 2"));

  absl::Status refused = guard.AdmitRead();
  EXPECT_TRUE(absl::IsDataLoss(refused));
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("node 2 does not serve reads: alarm CORRUPT: data corruption: "
                        "storage dir /d"));
}

TEST(CorruptionGuardTest, KeepsTheFirstReason) {
  Alarms alarms;
  CorruptionGuard guard(1, &alarms);
  EXPECT_TRUE(absl::IsDataLoss(guard.Check(absl::DataLossError("first"))));
  EXPECT_TRUE(absl::IsDataLoss(guard.Check(absl::DataLossError("second"))));
  ASSERT_EQ(alarms.List().size(), 1u);
  EXPECT_THAT(alarms.List()[0].reason, HasSubstr("first"));
  EXPECT_THAT(std::string(guard.AdmitRead().message()), HasSubstr("first"));
}

TEST(CorruptionGuardTest, AnAlarmRaisedElsewhereRefusesReadsToo) {
  Alarms alarms;
  CorruptionGuard guard(3, &alarms);
  alarms.Raise(AlarmType::kCorrupt, "hash differs from the majority");
  EXPECT_THAT(std::string(guard.AdmitRead().message()),
              HasSubstr("alarm CORRUPT: hash differs from the majority"));
  alarms.Clear(AlarmType::kCorrupt);
  EXPECT_TRUE(guard.AdmitRead().ok());
}

}  // namespace
}  // namespace raftkv::server
