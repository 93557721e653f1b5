// Disk faults in seeded fault-injection runs (runner.h, nemesis.h): each run
// must pass every check of RunOnce, and each disk fault must have done
// something:
//
//   fill-disk      every fill raised NOSPACE on its node (or the node exited
//                  74, truly out of space, and came back), and every alarm
//                  cleared once the ballast went;
//   corrupt-block  every damaged member was flagged (CORRUPT raised, or exit
//                  1 when applying met the damage), served no read invoked
//                  after that, and was replaced by a spare.
//
// fill-disk needs root for a tmpfs per node: main() enters a private mount
// namespace before any thread exists (disks.h). Without root its test skips,
// saying why; as root, a namespace or mount that fails fails the run.
#include <unistd.h>

#include <iostream>
#include <string>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/jepsen/disks.h"
#include "tests/jepsen/nemesis.h"
#include "tests/jepsen/runner.h"

namespace raftkv::jepsen {
namespace {

void Progress(const std::string& line) { std::cerr << line << std::endl; }

int Scheduled(const RunOptions& o, FaultKind kind) {
  int n = 0;
  for (const Fault& f : MakeSchedule(o.seed, o.nodes, o.length, o.kinds)) n += f.kind == kind;
  return n;
}

TEST(DiskFaultTest, FillDiskRunIsLinearizableAndEveryFillRaisesAndClearsNoSpace) {
  if (geteuid() != 0) GTEST_SKIP() << MountNamespaceReady().message();
  RunOptions o;
  o.nodes = 3;
  o.seed = 8;  // three fills in seven faults
  o.length = absl::Seconds(15);
  o.kinds = {FaultKind::kFillDisk, FaultKind::kKill, FaultKind::kPauseLeader, FaultKind::kSplit,
             FaultKind::kTransferLeader};
  o.progress = Progress;
  ASSERT_GE(Scheduled(o, FaultKind::kFillDisk), 2) << "pick a seed with fills";
  RunResult r = RunOnce(o);
  std::cerr << "fill-disk: " << r.Summary() << std::endl;
  EXPECT_TRUE(r.status.ok()) << r.status << "\nall failures:\n"
                             << absl::StrJoin(r.failures, "\n") << "\nartifacts: " << r.artifacts
                             << "\nreplay: " << r.replay;
  EXPECT_GT(r.ok, 100u);
  EXPECT_GE(r.disk.fills, 2);
  EXPECT_EQ(r.disk.nospace_raised + r.disk.nospace_exits, r.disk.fills)
      << "a fill the node did not notice";
  EXPECT_GE(r.disk.nospace_raised, 1);
  EXPECT_EQ(r.disk.nospace_cleared, r.disk.fills);
}

TEST(DiskFaultTest, CorruptBlockRunIsLinearizableAndTheCorruptMemberIsFlaggedAndReplaced) {
  RunOptions o;
  o.nodes = 3;
  o.seed = 2;
  o.length = absl::Seconds(15);
  o.kinds = {FaultKind::kCorruptBlock, FaultKind::kKill, FaultKind::kSplit, FaultKind::kDelay};
  o.progress = Progress;
  ASSERT_GE(Scheduled(o, FaultKind::kCorruptBlock), 1) << "pick a seed with a corruption";
  RunResult r = RunOnce(o);
  std::cerr << "corrupt-block: " << r.Summary() << std::endl;
  EXPECT_TRUE(r.status.ok()) << r.status << "\nall failures:\n"
                             << absl::StrJoin(r.failures, "\n") << "\nartifacts: " << r.artifacts
                             << "\nreplay: " << r.replay;
  EXPECT_GT(r.ok, 100u);
  EXPECT_GE(r.disk.corruptions, 1);
  EXPECT_EQ(r.disk.corrupt_alarms + r.disk.corrupt_exits, r.disk.corruptions)
      << "a damaged member was never flagged";
  EXPECT_EQ(r.disk.corrupt_replaced, r.disk.corruptions);
}

}  // namespace
}  // namespace raftkv::jepsen

int main(int argc, char** argv) {
  // First, before gtest or gRPC start any thread (disks.h). A failure is
  // reported by the fill-disk run.
  absl::Status mounts = raftkv::jepsen::EnterPrivateMountNamespace();
  ::testing::InitGoogleTest(&argc, argv);
  if (!mounts.ok()) std::cerr << "fill-disk: " << mounts.message() << std::endl;
  return RUN_ALL_TESTS();
}
