#include "server/mvcc_compactor.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "storage/test_util.h"

namespace raftkv::server {
namespace {

TEST(MvccCompactorTest, RemovesCompactedHistoryInStepsAndWakesWaiters) {
  storage::Options o;
  o.dir = storage::testing::TestDir();
  o.create_if_missing = true;
  auto log = storage::LogStore::Open(o);
  ASSERT_TRUE(log.ok()) << log.status();
  auto store = mvcc::Store::Open(log->get());
  ASSERT_TRUE(store.ok());
  // 50 revisions of one key, then a compaction to the last.
  uint64_t index = 0;
  for (int i = 0; i < 50; ++i) {
    auto b = (*store)->BeginBatch();
    {
      auto t = b->Begin(++index);
      ASSERT_TRUE(t->Put("k", std::to_string(i), 0, mvcc::PrevKv::kSkip).ok());
      t->Commit();
    }
    storage::DataBatch out;
    b->Finish(&out);
    ASSERT_TRUE((*log)->ApplyBatch(out, index).ok());
  }
  const int64_t last = (*store)->revision();
  MvccCompactorOptions co;
  co.records_per_step = 7;  // several steps
  co.poll = absl::Hours(1);  // only a nudge wakes it
  ASSERT_TRUE(co.Validate().ok());
  MvccCompactor compactor(store->get(), co);
  EXPECT_TRUE(absl::IsDeadlineExceeded(
      compactor.WaitRemoved(last, absl::Now() + absl::Milliseconds(50))));
  {
    auto b = (*store)->BeginBatch();
    ASSERT_TRUE(b->Compact(last).ok());
    storage::DataBatch out;
    b->Finish(&out);
    ASSERT_TRUE((*log)->ApplyBatch(out, ++index).ok());
  }
  ASSERT_TRUE(compactor.WaitRemoved(last, absl::Now() + absl::Seconds(30)).ok());
  int records = 0;
  ASSERT_TRUE((*log)->ScanData("", [&](absl::string_view k, absl::string_view) {
                      records += k[0] == 'h';
                      return true;
                    }).ok());
  EXPECT_EQ(records, 1);  // only the last revision is reachable
}

}  // namespace
}  // namespace raftkv::server
