#include "server/fd_limit.h"

#include <sys/resource.h>

#include <algorithm>

#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

TEST(FdLimitTest, BudgetGivesTheStoreAQuarterAndKeepsAReserve) {
  auto b = BudgetFds(20000);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->store_files, 5000);
  EXPECT_EQ(b->reserved, 5256);
  b = BudgetFds(1024);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->store_files, 256);
  EXPECT_EQ(b->reserved, 512);
  b = BudgetFds(uint64_t{1} << 20);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->store_files, 10000);
  EXPECT_EQ(b->reserved, 10256);
  b = BudgetFds(427);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_LE(b->reserved + 64, 427);
  b = BudgetFds(400);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("ulimit -n"), std::string::npos) << b.status();
}

TEST(FdLimitTest, RaisesTheSoftLimitToTheHardLimit) {
  rlimit was{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &was), 0);
  const rlim_t low = std::min<rlim_t>(was.rlim_max, 1024) / 2;
  rlimit lowered = was;
  lowered.rlim_cur = low;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  auto l = RaiseFdLimit();
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  setrlimit(RLIMIT_NOFILE, &was);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->before, low);
  EXPECT_EQ(l->hard, was.rlim_max);
  EXPECT_EQ(l->soft, now.rlim_cur);
  if (was.rlim_max != RLIM_INFINITY) {
    EXPECT_EQ(now.rlim_cur, was.rlim_max);
  } else {
    EXPECT_GT(now.rlim_cur, low);
  }
}

}  // namespace
}  // namespace raftkv::server
