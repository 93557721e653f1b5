#include "server/answer_budget.h"

#include <vector>

#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

constexpr size_t kMiB = 1 << 20;

AnswerBudgetOptions Options(size_t node_mib) {
  AnswerBudgetOptions o;
  o.node_bytes = node_mib * kMiB;
  o.stream_bytes = 16 * kMiB;
  return o;
}

TEST(AnswerBudgetOptionsTest, ValidateNamesTheFlag) {
  EXPECT_TRUE(AnswerBudgetOptions().Validate().ok());
  AnswerBudgetOptions o = Options(1);
  EXPECT_NE(o.Validate().message().find("--answer_budget_bytes"), std::string::npos);
  o = Options(64);
  o.stream_bytes = 65 * kMiB;
  EXPECT_NE(o.Validate().message().find("--stream_answer_budget_bytes"), std::string::npos);
  o.stream_bytes = 0;
  EXPECT_FALSE(o.Validate().ok());
}

TEST(AnswerBudgetTest, LargeChargesLeaveAHeadroomForSmallOnes) {
  AnswerBudget b(Options(64));  // large ones fill 56 MiB
  EXPECT_TRUE(b.TryAcquire(50 * kMiB));
  EXPECT_TRUE(b.TryAcquire(6 * kMiB));
  EXPECT_FALSE(b.TryAcquire(1 * kMiB));
  EXPECT_TRUE(b.TryAcquire(AnswerBudget::kSmallBytes));  // the headroom
  EXPECT_EQ(b.held(), 56 * kMiB + AnswerBudget::kSmallBytes);
  b.Release(56 * kMiB + AnswerBudget::kSmallBytes);
  EXPECT_EQ(b.held(), 0u);
}

TEST(AnswerBudgetTest, AnythingFitsWhenNothingIsHeld) {
  AnswerBudget b(Options(16));
  EXPECT_TRUE(b.TryAcquire(100 * kMiB));
  EXPECT_FALSE(b.TryAcquire(1));
  b.Release(100 * kMiB);
  b.Force(3);
  EXPECT_EQ(b.held(), 3u);
}

TEST(AnswerBudgetTest, WaitersAreGrantedInArrivalOrderAsBytesReturn) {
  AnswerBudget b(Options(16));  // large: 14 MiB
  ASSERT_TRUE(b.TryAcquire(14 * kMiB));
  std::vector<int> granted;
  uint64_t t1, t2, t3;
  EXPECT_FALSE(b.AcquireOrWait(4 * kMiB, [&] { granted.push_back(1); }, &t1));
  EXPECT_FALSE(b.AcquireOrWait(2 * kMiB, [&] { granted.push_back(2); }, &t2));
  // A large charge does not jump the queue, even if it would fit later.
  b.Release(3 * kMiB);
  EXPECT_TRUE(granted.empty());
  EXPECT_FALSE(b.TryAcquire(1 * kMiB));
  // A small one may pass the large waiters (the headroom).
  EXPECT_TRUE(b.AcquireOrWait(8 << 10, [&] { granted.push_back(9); }, &t3));
  b.Release(8 << 10);
  b.Release(3 * kMiB);  // 8 MiB held: the first fits, then the second
  EXPECT_EQ(granted, (std::vector<int>{1, 2}));
  EXPECT_EQ(b.held(), 14 * kMiB);
  EXPECT_EQ(b.waiters(), 0u);
}

TEST(AnswerBudgetTest, ACancelledWaiterIsNeverGranted) {
  AnswerBudget b(Options(16));
  ASSERT_TRUE(b.TryAcquire(14 * kMiB));
  bool called = false;
  uint64_t t;
  ASSERT_FALSE(b.AcquireOrWait(4 * kMiB, [&] { called = true; }, &t));
  EXPECT_TRUE(b.Cancel(t));
  EXPECT_FALSE(b.Cancel(t));
  b.Release(14 * kMiB);
  EXPECT_FALSE(called);
  EXPECT_EQ(b.held(), 0u);
}

TEST(AnswerBudgetTest, GrantedCallbacksMayTakeAndReleaseAgain) {
  AnswerBudget b(Options(16));
  ASSERT_TRUE(b.TryAcquire(14 * kMiB));
  uint64_t t;
  int granted = 0;
  ASSERT_FALSE(b.AcquireOrWait(14 * kMiB, [&] {
    ++granted;
    b.Release(14 * kMiB);  // no lock of the budget is held here
  }, &t));
  b.Release(14 * kMiB);
  EXPECT_EQ(granted, 1);
  EXPECT_EQ(b.held(), 0u);
}

}  // namespace
}  // namespace raftkv::server
