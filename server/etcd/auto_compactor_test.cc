#include "server/etcd/auto_compactor.h"

#include <vector>

#include "gtest/gtest.h"

namespace raftkv::server::etcd {
namespace {

using Mode = AutoCompactionOptions::Mode;

TEST(ParseAutoCompactionTest, EtcdsForms) {
  auto p = ParseAutoCompaction("periodic", "1");
  ASSERT_TRUE(p.ok() && p->has_value());
  EXPECT_EQ((*p)->mode, Mode::kPeriodic);
  EXPECT_EQ((*p)->period, absl::Hours(1)) << "a bare number is hours, as etcd";
  p = ParseAutoCompaction("periodic", "30m");
  ASSERT_TRUE(p.ok() && p->has_value());
  EXPECT_EQ((*p)->period, absl::Minutes(30));
  p = ParseAutoCompaction("revision", "1000");
  ASSERT_TRUE(p.ok() && p->has_value());
  EXPECT_EQ((*p)->mode, Mode::kRevision);
  EXPECT_EQ((*p)->revisions, 1000);
  for (const char* off : {"0", ""}) {
    p = ParseAutoCompaction("periodic", off);
    ASSERT_TRUE(p.ok());
    EXPECT_FALSE(p->has_value()) << off;
  }
}

TEST(ParseAutoCompactionTest, BadFlagsNameTheFlag) {
  auto p = ParseAutoCompaction("sometimes", "1h");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("--auto_compaction_mode"), std::string::npos);
  p = ParseAutoCompaction("revision", "1h");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("--auto_compaction_retention"), std::string::npos);
  p = ParseAutoCompaction("periodic", "soon");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("--auto_compaction_retention"), std::string::npos);
}

TEST(CompactionPolicyTest, RevisionModeKeepsTheLastRetentionRevisions) {
  AutoCompactionOptions o;
  o.mode = Mode::kRevision;
  o.revisions = 1000;
  const absl::Time t0 = absl::UnixEpoch();
  CompactionPolicy p(o, t0);
  EXPECT_EQ(p.Step(t0, 900, 0, true), std::nullopt) << "fewer revisions than kept";
  EXPECT_EQ(p.Step(t0, 5000, 0, false), std::nullopt) << "followers never compact";
  EXPECT_EQ(p.Step(t0, 5000, 0, true), 4000);
  p.Done(t0, 4000, true);
  EXPECT_EQ(p.Step(t0, 5000, 4000, true), std::nullopt) << "compacted already";
  EXPECT_EQ(p.Step(t0, 5200, 4000, true), 4200);
}

// Drives a periodic policy for `minutes` minutes, one Step per step_interval,
// the revision rising by 100 a minute; returns (minute, target) of each
// compaction.
std::vector<std::pair<int, int64_t>> RunPeriodic(absl::Duration period, int minutes,
                                                 int leader_from_minute = 0) {
  AutoCompactionOptions o;
  o.mode = Mode::kPeriodic;
  o.period = period;
  const absl::Time t0 = absl::UnixEpoch();
  CompactionPolicy p(o, t0);
  std::vector<std::pair<int, int64_t>> out;
  int64_t compacted = 0;
  for (absl::Duration t; t <= absl::Minutes(minutes); t += o.step_interval()) {
    const int minute = static_cast<int>(t / absl::Minutes(1));
    const int64_t rev = 1 + static_cast<int64_t>(100 * (t / absl::Minutes(1)));
    auto target = p.Step(t0 + t, rev, compacted, minute >= leader_from_minute);
    if (target.has_value()) {
      out.emplace_back(minute, *target);
      compacted = *target;
      p.Done(t0 + t, *target, true);
    }
  }
  return out;
}

TEST(CompactionPolicyTest, PeriodicModeKeepsThePeriodsHistory) {
  // 10 minutes: first after 10 minutes to the start's revision, then every
  // 10 minutes to the revision of 10 minutes before.
  EXPECT_EQ(RunPeriodic(absl::Minutes(10), 35),
            (std::vector<std::pair<int, int64_t>>{{10, 1}, {20, 1001}, {30, 2001}}));
  // 2 hours: first after 2 hours, then hourly, each keeping two hours.
  EXPECT_EQ(RunPeriodic(absl::Hours(2), 250),
            (std::vector<std::pair<int, int64_t>>{{120, 1}, {180, 6001}, {240, 12001}}));
}

TEST(CompactionPolicyTest, ANewLeaderCompactsAtOnceFromItsOwnSamples) {
  EXPECT_EQ(RunPeriodic(absl::Minutes(10), 25, /*leader_from_minute=*/17),
            (std::vector<std::pair<int, int64_t>>{{17, 701}}));
}

}  // namespace
}  // namespace raftkv::server::etcd
