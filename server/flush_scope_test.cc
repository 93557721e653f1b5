#include "server/flush_scope.h"

#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

TEST(FlushScopeTest, DeferredWorkRunsWhenTheOutermostScopeEnds) {
  std::string log;
  EXPECT_FALSE(FlushScope::Active());
  {
    FlushScope outer;
    EXPECT_TRUE(FlushScope::Active());
    FlushScope::Defer([&] { log += "a"; });
    {
      FlushScope inner;
      FlushScope::Defer([&] { log += "b"; });
    }
    EXPECT_EQ(log, "") << "an inner scope must not run the queue";
    log += "-";
  }
  EXPECT_EQ(log, "-ab");
  EXPECT_FALSE(FlushScope::Active());
}

TEST(FlushScopeTest, WorkDeferredWhileFlushingRunsBeforeTheScopeEnds) {
  std::string log;
  {
    FlushScope scope;
    FlushScope::Defer([&] {
      log += "1";
      EXPECT_TRUE(FlushScope::Active());
      FlushScope::Defer([&] { log += "2"; });
    });
  }
  EXPECT_EQ(log, "12");
  // The queue is empty again: a new scope starts clean.
  { FlushScope again; }
  EXPECT_EQ(log, "12");
}

TEST(FlushScopeTest, ScopesArePerThread) {
  FlushScope scope;
  bool active_elsewhere = true;
  std::thread t([&] { active_elsewhere = FlushScope::Active(); });
  t.join();
  EXPECT_FALSE(active_elsewhere);
}

}  // namespace
}  // namespace raftkv::server
