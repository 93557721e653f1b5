#include "server/disk_space.h"

#include <string>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

using ::testing::HasSubstr;

// Free space the test sets.
class FakeDisk {
 public:
  void Set(uint64_t free) {
    absl::MutexLock l(&mu_);
    free_ = free;
  }
  absl::StatusOr<uint64_t> Read(const std::string&) {
    absl::MutexLock l(&mu_);
    return free_;
  }

 private:
  absl::Mutex mu_;
  uint64_t free_ = 0;
};

DiskSpaceOptions Options(FakeDisk* disk, Alarms* alarms, uint64_t reserve) {
  DiskSpaceOptions o;
  o.dir = "/data/n1";
  o.min_free_bytes = reserve;
  o.alarms = alarms;
  o.free_bytes = [disk](const std::string& d) { return disk->Read(d); };
  return o;
}

TEST(DiskSpaceTest, RaisesAndClearsNoSpaceWithAMargin) {
  FakeDisk disk;
  disk.Set(2000);
  Alarms alarms;
  DiskSpace space(Options(&disk, &alarms, 1600));
  EXPECT_FALSE(space.low());
  EXPECT_TRUE(space.WriteRefusal().ok());

  disk.Set(1599);
  space.Check();
  EXPECT_TRUE(space.low());
  EXPECT_TRUE(alarms.Active(AlarmType::kNoSpace));
  const absl::Status refusal = space.WriteRefusal();
  EXPECT_EQ(refusal.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refusal.message(), HasSubstr("data dir /data/n1 has 1599 bytes"));
  EXPECT_THAT(refusal.message(), HasSubstr("--min_free_bytes=1600"));
  ASSERT_EQ(alarms.Describe().size(), 1u);
  EXPECT_THAT(alarms.Describe()[0], HasSubstr("NOSPACE: data dir /data/n1 has 1599 bytes"));

  disk.Set(1650);  // back above the reserve, within the margin (1/16: 100)
  space.Check();
  EXPECT_TRUE(space.low());
  disk.Set(1700);
  space.Check();
  EXPECT_FALSE(space.low());
  EXPECT_FALSE(alarms.Active(AlarmType::kNoSpace));
  EXPECT_TRUE(space.WriteRefusal().ok());
}

TEST(DiskSpaceTest, LowFromTheStartAndWatchedInTheBackground) {
  FakeDisk disk;
  disk.Set(10);
  Alarms alarms;
  DiskSpaceOptions o = Options(&disk, &alarms, 100);
  o.interval = absl::Milliseconds(1);
  DiskSpace space(o);
  EXPECT_TRUE(space.low()) << "checked before the constructor returns";
  space.Start();
  disk.Set(1000);
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (space.low() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_FALSE(space.low());
  EXPECT_EQ(space.free_bytes(), 1000u);
}

TEST(DiskSpaceTest, ZeroReserveIsNeverLow) {
  FakeDisk disk;
  disk.Set(0);
  DiskSpace space(Options(&disk, nullptr, 0));
  space.Check();
  EXPECT_FALSE(space.low());
}

TEST(DiskSpaceTest, FreeBytesOfARealDirectory) {
  auto free = FreeBytes("/");
  ASSERT_TRUE(free.ok()) << free.status();
  auto missing = FreeBytes("/no/such/dir");
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("/no/such/dir"));
}

}  // namespace
}  // namespace raftkv::server
