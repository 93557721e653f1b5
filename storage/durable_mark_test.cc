// The durable mark: a store whose log or hard state fell behind what it had
// made durable refuses to open; legitimate changes (a suffix replaced by a
// newer leader, a snapshot) do not trip it.
#include "storage/durable_mark.h"

#include <filesystem>
#include <fstream>
#include <ostream>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/data_batch.h"
#include "storage/log_store.h"
#include "storage/test_util.h"

namespace raftkv::storage {

void PrintTo(const DurableMark& m, std::ostream* os) { *os << m.DebugString(); }

// The marker thread's two steps (read durable_, then write it unless a newer
// one was written), so a test can put a writer between them.
class LogStoreTestPeer {
 public:
  static std::pair<DurableMark, uint64_t> ReadDurable(LogStore& s) {
    absl::ReaderMutexLock l(&s.mu_);
    return {s.durable_, s.durable_seq_};
  }
  static absl::Status WriteMark(LogStore& s, const std::pair<DurableMark, uint64_t>& read) {
    return s.WriteMarkIfNewer(read.first, read.second);
  }
};

namespace {

using ::testing::HasSubstr;
using testing::MakeEntries;
using testing::MakeHardState;
using testing::MakeIdentity;
using testing::TestDir;

class DurableMarkTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TestDir(); }

  absl::StatusOr<std::unique_ptr<LogStore>> Open() {
    Options o;
    o.dir = dir_;
    return LogStore::Open(o);
  }

  // A store holding entries [1, last] of `term` with hard state (term, 1, commit).
  void Build(uint64_t last, uint64_t term, uint64_t commit) {
    auto store = Open();
    ASSERT_TRUE(store.ok()) << store.status();
    raftpb::ConfState conf;
    conf.add_voters(1);
    ASSERT_TRUE((*store)->Bootstrap(MakeIdentity(7, 1), conf).ok());
    const raftpb::HardState hs = MakeHardState(term, 1, commit);
    ASSERT_TRUE((*store)->Append(MakeEntries(1, last + 1, term, 100), &hs).ok());
  }

  // A store whose marker thread never runs during a test: the mark file
  // changes only at Open, at close, and by a writer lowering it.
  absl::StatusOr<std::unique_ptr<LogStore>> OpenWithoutMarker() {
    Options o;
    o.dir = dir_;
    o.durable_mark_interval = absl::Hours(1);
    return LogStore::Open(o);
  }

  // A follower of a deposed term-5 leader: entries [1, 19] of term 2 and
  // [20, 60] of term 5, commit 10, applied and compacted through 15. Closed,
  // so its mark is exactly {5, 60, 5, 10}.
  void BuildDeposedFollower() {
    auto store = Open();
    ASSERT_TRUE(store.ok()) << store.status();
    raftpb::ConfState conf;
    conf.add_voters(1);
    ASSERT_TRUE((*store)->Bootstrap(MakeIdentity(7, 1), conf).ok());
    const raftpb::HardState hs = MakeHardState(5, 1, 10);
    ASSERT_TRUE((*store)->Append(MakeEntries(1, 20, 2), &hs).ok());
    ASSERT_TRUE((*store)->Append(MakeEntries(20, 61, 5), &hs).ok());
    ASSERT_TRUE((*store)->ApplyBatch(DataBatch(), 15).ok());
    ASSERT_TRUE((*store)->Compact(15, 2, conf).ok());
    store->reset();
    auto m = ReadDurableMark(dir_);
    ASSERT_TRUE(m.ok() && m->has_value());
    ASSERT_EQ(**m, (DurableMark{5, 60, 5, 10}));
  }

  // The mark file now (must exist).
  DurableMark MarkOnDisk() {
    auto m = ReadDurableMark(dir_);
    EXPECT_TRUE(m.ok()) << m.status();
    if (!m.ok() || !m->has_value()) {
      ADD_FAILURE() << "no mark file";
      return DurableMark{};
    }
    return **m;
  }

  // A crash right after the last write: `mark` is what the file held then
  // (the close since wrote the exact mark).
  void CrashWithMark(const DurableMark& mark) { ASSERT_TRUE(WriteDurableMark(dir_, mark).ok()); }

  // A snapshot of the term-6 leader at index 40, whose entry there is of
  // term 3 (the deposed follower's is of term 5).
  static raftpb::SnapshotMetadata OlderTermSnapshot() {
    raftpb::SnapshotMetadata meta;
    meta.set_index(40);
    meta.set_term(3);
    meta.mutable_conf_state()->add_voters(1);
    return meta;
  }

  std::string dir_;
};

TEST_F(DurableMarkTest, RoundTripsAndRefusesAMalformedFile) {
  std::filesystem::create_directories(dir_);
  auto none = ReadDurableMark(dir_);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  const DurableMark m{5, 100, 4, 90};
  ASSERT_TRUE(WriteDurableMark(dir_, m).ok());
  auto back = ReadDurableMark(dir_);
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ(**back, m);
  std::ofstream(DurableMarkPath(dir_)) << "raftkv durable mark v1\nterm x\n";
  auto bad = ReadDurableMark(dir_);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
}

TEST_F(DurableMarkTest, CloseRecordsTheExactState) {
  Build(50, 3, 40);
  auto m = ReadDurableMark(dir_);
  ASSERT_TRUE(m.ok() && m->has_value());
  EXPECT_EQ(**m, (DurableMark{3, 50, 3, 40}));
}

// The case: the newest WAL cut short after the node stopped.
TEST_F(DurableMarkTest, ATruncatedWalRefusesToOpen) {
  Build(200, 2, 150);
  std::string newest;
  uintmax_t size = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir_)) {
    if (f.path().extension() == ".log" && f.path().filename().string() > newest) {
      newest = f.path().filename().string();
      size = f.file_size();
    }
  }
  ASSERT_FALSE(newest.empty());
  ASSERT_GT(size, 20000u) << "the entries are not in the WAL";
  std::filesystem::resize_file(dir_ + "/" + newest, size / 2);
  auto store = Open();
  ASSERT_FALSE(store.ok()) << "opened a store that lost synced entries";
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(store.status().message(), HasSubstr("lost writes it had made durable"));
  EXPECT_THAT(store.status().message(), HasSubstr("kvctl member remove"));
}

TEST_F(DurableMarkTest, ALogBehindItsMarkIsRefused) {
  Build(60, 1, 10);
  ASSERT_TRUE(WriteDurableMark(dir_, DurableMark{1, 100, 1, 10}).ok());
  auto store = Open();
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("held index 100 of term 1"));
}

TEST_F(DurableMarkTest, ATermBehindItsMarkIsRefused) {
  Build(10, 3, 5);
  ASSERT_TRUE(WriteDurableMark(dir_, DurableMark{5, 10, 3, 5}).ok());
  auto store = Open();
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_THAT(store.status().message(), HasSubstr("term 3 is behind the durable term 5"));
}

TEST_F(DurableMarkTest, ACommitPastTheLogIsRefused) {
  Build(10, 3, 5);
  ASSERT_TRUE(WriteDurableMark(dir_, DurableMark{3, 10, 3, 30}).ok());
  EXPECT_EQ(Open().status().code(), absl::StatusCode::kDataLoss);
}

// A crash right after a newer leader replaced the suffix, before the mark
// caught up: the log's last term is newer than the mark's, so it opens.
TEST_F(DurableMarkTest, ASuffixReplacedByANewerTermIsAccepted) {
  Build(60, 1, 10);
  {
    auto store = Open();
    ASSERT_TRUE(store.ok()) << store.status();
    const raftpb::HardState hs = MakeHardState(2, 2, 10);
    ASSERT_TRUE((*store)->Append(MakeEntries(20, 31, 2), &hs).ok());
  }
  ASSERT_TRUE(WriteDurableMark(dir_, DurableMark{1, 60, 1, 10}).ok());  // the stale mark
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->LastIndex(), 30u);
}

// The review's case (a): a term-6 leader whose log holds index 20 of term 3
// replaces the suffix, and its first append (cut by the message size limit)
// ends with term-3 entries. The mark is lowered to index 19 before the write,
// so a crash before the marker thread runs leaves a mark the log holds.
TEST_F(DurableMarkTest, ASuffixReplacedByAnOlderTermLowersTheMarkFirst) {
  BuildDeposedFollower();
  DurableMark at_crash;
  {
    auto store = OpenWithoutMarker();
    ASSERT_TRUE(store.ok()) << store.status();
    const raftpb::HardState hs = MakeHardState(6, 0, 10);
    ASSERT_TRUE((*store)->Append(MakeEntries(20, 31, 3), &hs).ok());
    at_crash = MarkOnDisk();
    EXPECT_EQ(at_crash, (DurableMark{5, 19, 2, 10}));
  }
  CrashWithMark(at_crash);
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->LastIndex(), 30u);
  EXPECT_EQ((*store)->Term(30).value(), 3u);
}

// Case (b): a snapshot below the marked index whose entry there has an older
// term discards the whole log; the mark is lowered to the current snapshot.
TEST_F(DurableMarkTest, ASnapshotDiscardingTheLogLowersTheMarkFirst) {
  BuildDeposedFollower();
  DurableMark at_crash;
  {
    auto store = OpenWithoutMarker();
    ASSERT_TRUE(store.ok()) << store.status();
    DataBatch image;
    image.Put("k", "v");
    ASSERT_TRUE((*store)->ApplySnapshot(OlderTermSnapshot(), &image).ok());
    at_crash = MarkOnDisk();
    EXPECT_EQ(at_crash, (DurableMark{5, 15, 2, 10}));
  }
  CrashWithMark(at_crash);
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->LastIndex(), 40u);
  EXPECT_EQ((*store)->Get("k").value(), "v");
}

TEST_F(DurableMarkTest, AStagedSnapshotDiscardingTheLogLowersTheMarkFirst) {
  BuildDeposedFollower();
  DurableMark at_crash;
  {
    auto store = OpenWithoutMarker();
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->BeginStaging().ok());
    DataBatch image;
    image.Put("k", "v");
    ASSERT_TRUE((*store)->StageData(image).ok());
    ASSERT_TRUE((*store)->InstallStaged(OlderTermSnapshot()).ok());
    at_crash = MarkOnDisk();
    EXPECT_EQ(at_crash, (DurableMark{5, 15, 2, 10}));
  }
  CrashWithMark(at_crash);
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->LastIndex(), 40u);
  EXPECT_EQ((*store)->Get("k").value(), "v");
}

// The lowered mark is written before the log: if it cannot be written, the
// log is not touched. Appends past the end never write it themselves.
TEST_F(DurableMarkTest, AMarkThatCannotBeLoweredStopsTheWrite) {
  BuildDeposedFollower();
  const std::string blocker = DurableMarkPath(dir_) + ".tmp";
  {
    auto store = OpenWithoutMarker();
    ASSERT_TRUE(store.ok()) << store.status();
    std::filesystem::create_directory(blocker);  // the mark's temporary file cannot be created
    const raftpb::HardState hs5 = MakeHardState(5, 1, 10);
    ASSERT_TRUE((*store)->Append(MakeEntries(61, 71, 5), &hs5).ok());
    const raftpb::HardState hs6 = MakeHardState(6, 0, 10);
    const absl::Status s = (*store)->Append(MakeEntries(20, 31, 3), &hs6);
    EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
    EXPECT_THAT(s.message(), HasSubstr("writing the durable mark"));
    EXPECT_EQ((*store)->LastIndex(), 70u);
    EXPECT_EQ((*store)->Term(25).value(), 5u);
    EXPECT_EQ((*store)->hard_state().term(), 5u);
    EXPECT_EQ((*store)->Append(MakeEntries(71, 72, 5), &hs5).code(), absl::StatusCode::kInternal)
        << "a failed mark write stops later appends too";
  }
  std::filesystem::remove(blocker);
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->LastIndex(), 70u);
  EXPECT_EQ((*store)->Term(25).value(), 5u);
}

// The marker thread reads durable_, then writes it: if a writer lowered the
// mark in between, the marker's older, higher value must not replace it.
TEST_F(DurableMarkTest, AMarkReadBeforeALoweringIsNeverWrittenAfterIt) {
  BuildDeposedFollower();
  auto store = OpenWithoutMarker();
  ASSERT_TRUE(store.ok()) << store.status();
  const raftpb::HardState hs5 = MakeHardState(5, 1, 10);
  ASSERT_TRUE((*store)->Append(MakeEntries(61, 71, 5), &hs5).ok());
  const auto stale = LogStoreTestPeer::ReadDurable(**store);
  ASSERT_EQ(stale.first, (DurableMark{5, 70, 5, 10}));
  const raftpb::HardState hs6 = MakeHardState(6, 0, 10);
  ASSERT_TRUE((*store)->Append(MakeEntries(20, 31, 3), &hs6).ok());
  ASSERT_EQ(MarkOnDisk(), (DurableMark{5, 19, 2, 10}));
  ASSERT_TRUE(LogStoreTestPeer::WriteMark(**store, stale).ok());
  EXPECT_EQ(MarkOnDisk(), (DurableMark{5, 19, 2, 10})) << "a stale mark replaced a lowered one";
  ASSERT_TRUE(LogStoreTestPeer::WriteMark(**store, LogStoreTestPeer::ReadDurable(**store)).ok());
  EXPECT_EQ(MarkOnDisk(), (DurableMark{6, 30, 3, 10}));
}

// The same with the marker thread running: every mark on disk after a suffix
// replacement with an older term is one the log holds.
TEST_F(DurableMarkTest, WithTheMarkerRunningTheMarkOnDiskIsAlwaysHeld) {
  Options o;
  o.dir = dir_;
  o.durable_mark_interval = absl::Microseconds(100);
  auto store = LogStore::Open(o);
  ASSERT_TRUE(store.ok()) << store.status();
  const raftpb::HardState base = MakeHardState(1, 1, 0);
  ASSERT_TRUE((*store)->Append(MakeEntries(1, 11, 1), &base).ok());
  for (uint64_t round = 2; round < 100; ++round) {
    // A leader of term `round` appends; then a newer one replaces that with
    // entries of term 1 (its log ended there), ending with an older term.
    const raftpb::HardState hs = MakeHardState(round, 1, 0);
    ASSERT_TRUE((*store)->Append(MakeEntries(11, 21, round), &hs).ok());
    const raftpb::HardState next = MakeHardState(round + 1, 0, 0);
    ASSERT_TRUE((*store)->Append(MakeEntries(11 + round % 5, 16, 1), &next).ok());
    const DurableMark m = MarkOnDisk();
    ASSERT_LE(m.last_index, (*store)->LastIndex()) << m.DebugString() << " in round " << round;
    ASSERT_EQ((*store)->Term(m.last_index).value(), m.last_term)
        << m.DebugString() << " in round " << round;
  }
}

TEST_F(DurableMarkTest, WithoutSyncNoMarkIsKept) {
  Options o;
  o.dir = dir_;
  o.sync = false;
  {
    auto store = LogStore::Open(o);
    ASSERT_TRUE(store.ok());
    const raftpb::HardState hs = MakeHardState(1, 1, 0);
    ASSERT_TRUE((*store)->Append(MakeEntries(1, 5, 1), &hs).ok());
  }
  auto m = ReadDurableMark(dir_);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->has_value());
}

}  // namespace
}  // namespace raftkv::storage
