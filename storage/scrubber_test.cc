#include "storage/scrubber.h"

#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/data_batch.h"
#include "storage/log_store.h"
#include "storage/sst_corruption.h"
#include "storage/test_util.h"

namespace raftkv::storage::testing {
namespace {

using ::testing::HasSubstr;

TEST(ScrubOptionsTest, Validate) {
  EXPECT_TRUE(ScrubOptions().Validate().ok());
  ScrubOptions o;
  o.interval = absl::ZeroDuration();
  EXPECT_TRUE(o.Validate().ok()) << "zero turns scrubbing off";
  o.interval = -absl::Seconds(1);
  EXPECT_THAT(o.Validate().ToString(), HasSubstr("interval"));
  o = ScrubOptions();
  o.start_delay = -absl::Seconds(1);
  EXPECT_THAT(o.Validate().ToString(), HasSubstr("start_delay"));
  o = ScrubOptions();
  o.bytes_per_sec = 1000;
  EXPECT_THAT(o.Validate().ToString(), HasSubstr("bytes_per_sec"));
}

// ~200 bytes that compress poorly.
std::string ValueOf(int i) {
  std::string v;
  uint64_t x = 0x9e3779b97f4a7c15ull * (i + 1);
  while (v.size() < 200) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v.append(reinterpret_cast<const char*>(&x), sizeof(x));
  }
  return v;
}

// A store whose `data` holds `keys` keys in SST files (about 220 bytes each).
class ScrubberTest : public LogStoreTest {
 protected:
  void Fill(int keys) {
    options_.sync = false;
    uint64_t applied = store_->applied_index();
    for (int i = 0; i < keys;) {
      DataBatch b;
      for (int j = 0; j < 100 && i < keys; ++j, ++i) {
        b.Put(absl::StrFormat("key%06d", i), ValueOf(i));
      }
      ASSERT_TRUE(store_->ApplyBatch(b, ++applied).ok());
    }
    Reopen();  // writes what the WAL held to SST files
  }

  // Damages the data files of the closed store and opens it again.
  void CorruptData() {
    store_.reset();
    auto files = SstFilesOf(options_.dir, "data");
    ASSERT_TRUE(files.ok()) << files.status();
    ASSERT_FALSE(files->empty());
    for (const std::string& f : *files) ASSERT_TRUE(CorruptDataBlocks(f).ok());
    Reopen();
  }

  struct Reports {
    absl::Mutex mu;
    std::vector<absl::Status> got;
    absl::Notification first;
  };
  std::function<void(const absl::Status&)> Collect(Reports* r) {
    return [r](const absl::Status& s) {
      absl::MutexLock l(&r->mu);
      r->got.push_back(s);
      if (!r->first.HasBeenNotified()) r->first.Notify();
    };
  }
};

TEST_F(ScrubberTest, AHealthyStorePasses) {
  Fill(3000);
  Reports reports;
  Scrubber scrubber(ScrubOptions(), store_.get(), Collect(&reports));
  ScrubResult r = scrubber.RunPass();
  EXPECT_GT(r.files, 0);
  EXPECT_GT(r.bytes, 500000u);
  EXPECT_TRUE(r.corrupt.empty());
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(scrubber.passes(), 1);
  EXPECT_TRUE(reports.got.empty());
}

// No read touched the damaged keys: only the scrub can find them.
TEST_F(ScrubberTest, FindsCorruptionNoReadMet) {
  Fill(3000);
  CorruptData();
  Reports reports;
  Scrubber scrubber(ScrubOptions(), store_.get(), Collect(&reports));
  ScrubResult r = scrubber.RunPass();
  ASSERT_FALSE(r.corrupt.empty());
  EXPECT_THAT(r.corrupt[0], HasSubstr("column family data"));
  EXPECT_THAT(r.corrupt[0], HasSubstr("Corruption"));
  ASSERT_EQ(reports.got.size(), 1u) << "one report per pass";
  EXPECT_TRUE(absl::IsDataLoss(reports.got[0])) << reports.got[0];
  EXPECT_THAT(std::string(reports.got[0].message()), HasSubstr(options_.dir));
  EXPECT_THAT(std::string(reports.got[0].message()), HasSubstr(".sst"));
}

TEST_F(ScrubberTest, BackgroundPassReportsCorruption) {
  Fill(3000);
  CorruptData();
  Reports reports;
  ScrubOptions o;
  o.start_delay = absl::ZeroDuration();
  Scrubber scrubber(o, store_.get(), Collect(&reports));
  scrubber.Start();
  ASSERT_TRUE(reports.first.WaitForNotificationWithTimeout(absl::Seconds(30)));
  scrubber.Stop();
  absl::MutexLock l(&reports.mu);
  EXPECT_TRUE(absl::IsDataLoss(reports.got[0])) << reports.got[0];
}

TEST_F(ScrubberTest, ReadsArePaced) {
  Fill(6000);  // ~1.3 MB
  Reports reports;
  ScrubOptions o;
  o.bytes_per_sec = 1 << 20;
  Scrubber scrubber(o, store_.get(), Collect(&reports));
  ScrubResult r = scrubber.RunPass();
  ASSERT_GT(r.bytes, 1000000u);
  // Each read waits for the ones before it, so all but the last (a
  // readahead of at most 256 KiB per file) took their time.
  const double floor_secs =
      (static_cast<double>(r.bytes) - r.files * (256 << 10)) / o.bytes_per_sec;
  EXPECT_GE(absl::ToDoubleSeconds(r.elapsed), floor_secs)
      << r.bytes << " bytes in " << r.files << " files";
}

TEST_F(ScrubberTest, StopCutsAPassShort) {
  Fill(6000);
  Reports reports;
  ScrubOptions o;
  o.start_delay = absl::ZeroDuration();
  o.bytes_per_sec = 64 << 10;  // a pass would take ~20 s
  Scrubber scrubber(o, store_.get(), Collect(&reports));
  scrubber.Start();
  absl::SleepFor(absl::Milliseconds(200));  // into the pass; not needed for correctness
  const absl::Time start = absl::Now();
  scrubber.Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(scrubber.passes(), 0);
  EXPECT_TRUE(reports.got.empty());
}

TEST_F(ScrubberTest, ZeroIntervalIsOff) {
  Fill(100);
  Reports reports;
  ScrubOptions o;
  o.interval = absl::ZeroDuration();
  o.start_delay = absl::ZeroDuration();
  Scrubber scrubber(o, store_.get(), Collect(&reports));
  scrubber.Start();
  scrubber.Stop();
  EXPECT_EQ(scrubber.passes(), 0);
}

}  // namespace
}  // namespace raftkv::storage::testing
