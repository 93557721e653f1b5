#include "server/callback_pool.h"

#include <atomic>
#include <set>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

TEST(CallbackPoolTest, RunsEveryCallbackPostedBeforeDestruction) {
  std::atomic<int> ran{0};
  {
    CallbackPool pool(2);
    for (int i = 0; i < 1000; ++i) pool.Post([&ran] { ran.fetch_add(1); });
  }
  EXPECT_EQ(ran.load(), 1000);
}

TEST(CallbackPoolTest, RunsOffThePostingThreadAndInParallel) {
  CallbackPool pool(2);
  absl::Notification first_started, release;
  absl::Mutex mu;
  std::set<std::thread::id> ids;
  // The first callback blocks until the second has run: only possible with
  // two threads working at once.
  pool.Post([&] {
    {
      absl::MutexLock l(&mu);
      ids.insert(std::this_thread::get_id());
    }
    first_started.Notify();
    release.WaitForNotification();
  });
  first_started.WaitForNotification();
  absl::Notification second_ran;
  pool.Post([&] {
    {
      absl::MutexLock l(&mu);
      ids.insert(std::this_thread::get_id());
    }
    second_ran.Notify();
  });
  EXPECT_TRUE(second_ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
  release.Notify();
  absl::MutexLock l(&mu);
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids.count(std::this_thread::get_id()), 0u);
}

TEST(CallbackPoolTest, OneThreadRunsInPostOrder) {
  std::vector<int> order;
  {
    CallbackPool pool(1);
    for (int i = 0; i < 100; ++i) pool.Post([&order, i] { order.push_back(i); });
  }
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

}  // namespace
}  // namespace raftkv::server
