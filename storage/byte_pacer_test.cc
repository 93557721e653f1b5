#include "storage/byte_pacer.h"

#include "gtest/gtest.h"

namespace raftkv::storage {
namespace {

// A clock that only moves when the pacer sleeps.
struct FakeClock {
  absl::Time now = absl::UnixEpoch();
  absl::Duration slept;
  int sleeps = 0;
  bool stop = false;
  PacerClock Make() {
    PacerClock c;
    c.now = [this] { return now; };
    c.sleep = [this](absl::Duration d) {
      now += d;
      slept += d;
      ++sleeps;
      return !stop;
    };
    return c;
  }
};

TEST(BytePacerTest, BytesTakeTheirTimeAtTheRate) {
  FakeClock clock;
  BytePacer pacer(1000, clock.Make());  // 1000 bytes/s
  EXPECT_EQ(pacer.chunk(), 62u);
  // 100 records of 100 bytes: 10 s at the rate, the first chunk free.
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(pacer.Account(100));
  EXPECT_GE(clock.slept, absl::Milliseconds(9900));
  EXPECT_LE(clock.slept, absl::Seconds(10));
}

TEST(BytePacerTest, TimeSpentWorkingCountsAndIdleTimeBanksNothing) {
  FakeClock clock;
  BytePacer pacer(1000, clock.Make());
  ASSERT_TRUE(pacer.Account(1000));  // due by 1 s
  clock.now += absl::Milliseconds(400);  // the work itself took 400 ms
  ASSERT_TRUE(pacer.Account(1000));
  EXPECT_EQ(clock.slept, absl::Milliseconds(600));
  clock.now += absl::Hours(1);  // idle
  ASSERT_TRUE(pacer.Account(1000));
  ASSERT_TRUE(pacer.Account(1000));
  EXPECT_EQ(clock.slept, absl::Milliseconds(1600)) << "an idle hour allowed a burst";
}

TEST(BytePacerTest, SmallPiecesGatherIntoChunks) {
  FakeClock clock;
  BytePacer pacer(64 << 20, clock.Make());
  EXPECT_EQ(pacer.chunk(), 64u << 10);
  for (int i = 0; i < 1 << 16; ++i) ASSERT_TRUE(pacer.Account(32));  // 2 MiB
  // 2 MiB at 64 MiB/s: 1/32 s, in 31 waits (not one per piece).
  EXPECT_EQ(clock.sleeps, 31);
  EXPECT_GE(clock.slept, absl::Seconds(31.0 / 1024));
}

TEST(BytePacerTest, ZeroIsUnthrottled) {
  FakeClock clock;
  BytePacer pacer(0, clock.Make());
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(pacer.Account(1 << 20));
  EXPECT_EQ(clock.sleeps, 0);
}

TEST(BytePacerTest, AStopEndsTheWait) {
  FakeClock clock;
  clock.stop = true;
  BytePacer pacer(1000, clock.Make());
  EXPECT_TRUE(pacer.Account(1000));  // the first chunk goes at once
  EXPECT_FALSE(pacer.Account(1000));
}

}  // namespace
}  // namespace raftkv::storage
