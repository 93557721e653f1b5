#include "tools/proc_cpu.h"

#include <unistd.h>

#include <chrono>

#include "gtest/gtest.h"

namespace raftkv::tools {
namespace {

TEST(ProcCpuTest, ParsesStatWithAwkwardCommand) {
  // comm with spaces and a ')' in it; utime 250 and stime 50 ticks.
  const std::string stat =
      "1234 (my (weird) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 "
      "100 1000000 200 18446744073709551615";
  auto s = ParseProcStatCpuSeconds(stat, 100);
  ASSERT_TRUE(s.has_value());
  EXPECT_DOUBLE_EQ(*s, 3.0);
  EXPECT_FALSE(ParseProcStatCpuSeconds("1234 (x) S 1 2", 100).has_value());
  EXPECT_FALSE(ParseProcStatCpuSeconds("garbage", 100).has_value());
}

TEST(ProcCpuTest, OwnProcessCountsBusyTime) {
  const double before = *ProcessCpuSeconds(getpid());
  const double self_before = SelfCpuSeconds();
  // Burn 0.3 s of CPU as getrusage counts it (however loaded the machine).
  volatile uint64_t x = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (SelfCpuSeconds() - self_before < 0.3 && std::chrono::steady_clock::now() < give_up) {
    for (int i = 0; i < 100000; ++i) x = x + 1;
  }
  const double self = SelfCpuSeconds() - self_before;
  const double proc = *ProcessCpuSeconds(getpid()) - before;
  ASSERT_GE(self, 0.3);
  // /proc counts in clock ticks (10 ms): the two agree to a few ticks.
  EXPECT_NEAR(proc, self, 0.05);
  EXPECT_FALSE(ProcessCpuSeconds(0).has_value());
}

TEST(ProcCpuTest, ParsesPids) {
  EXPECT_EQ(*ParsePids("1,22, 333"), (std::vector<pid_t>{1, 22, 333}));
  EXPECT_TRUE(ParsePids("")->empty());
  EXPECT_FALSE(ParsePids("1,x").has_value());
  EXPECT_FALSE(ParsePids("-4").has_value());
}

}  // namespace
}  // namespace raftkv::tools
