#include "raft/raft_log.h"

#include <vector>

#include "gtest/gtest.h"
#include "raft/memory_log.h"

namespace raftkv::raft {
namespace {

raftpb::Entry Ent(uint64_t index, uint64_t term) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::string(10, 'x'));
  return e;
}

std::vector<raftpb::Entry> Ents(uint64_t first, std::vector<uint64_t> terms) {
  std::vector<raftpb::Entry> out;
  for (size_t k = 0; k < terms.size(); ++k) out.push_back(Ent(first + k, terms[k]));
  return out;
}

class RaftLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(stable_.Append(Ents(1, {1, 1, 2})).ok());
    ASSERT_TRUE(log_.Init(0, 0).ok());
  }
  MemoryLog stable_;
  RaftLog log_{&stable_, 1 << 20};
};

TEST_F(RaftLogTest, ReadsThroughToStableStorage) {
  EXPECT_EQ(log_.FirstIndex(), 1u);
  EXPECT_EQ(log_.LastIndex(), 3u);
  EXPECT_EQ(log_.LastTerm(), 2u);
  EXPECT_EQ(log_.TermOrZero(0), 0u);
  EXPECT_EQ(log_.Term(4).status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(RaftLogTest, MaybeAppendRejectsOnTermMismatch) {
  uint64_t truncated;
  EXPECT_FALSE(log_.MaybeAppend(3, 1, 3, Ents(4, {2}), &truncated).has_value());
  EXPECT_FALSE(log_.MaybeAppend(5, 2, 3, {}, &truncated).has_value()) << "gap";
}

// A missing or compacted entry matches no term, 0 included (only index 0
// has term 0): else an append after a gap would be taken and leave a hole.
TEST_F(RaftLogTest, AMissingEntryMatchesNoTerm) {
  EXPECT_TRUE(log_.MatchTerm(0, 0));
  EXPECT_TRUE(log_.MatchTerm(3, 2));
  EXPECT_FALSE(log_.MatchTerm(5, 0));
  EXPECT_FALSE(log_.KnownToDiffer(5, 1)) << "unknown, not different";
  EXPECT_TRUE(log_.KnownToDiffer(3, 1));
  uint64_t truncated;
  EXPECT_FALSE(log_.MaybeAppend(5, 0, 0, Ents(6, {2}), &truncated).has_value());
  EXPECT_EQ(log_.LastIndex(), 3u);
}

TEST_F(RaftLogTest, MaybeAppendTruncatesAConflictingSuffixOnly) {
  uint64_t truncated;
  auto last = log_.MaybeAppend(1, 1, 2, Ents(2, {1, 3, 3}), &truncated);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 4u);
  EXPECT_EQ(truncated, 3u);
  EXPECT_EQ(log_.TermOrZero(3), 3u);
  EXPECT_EQ(log_.committed(), 2u) << "min(leader commit, last new)";
  ASSERT_EQ(log_.UnwrittenEntries().size(), 2u);
  EXPECT_EQ(log_.UnwrittenEntries()[0].index(), 3u);
}

TEST_F(RaftLogTest, StaleAppendDoesNotTruncateMatchingEntries) {
  uint64_t truncated;
  auto last = log_.MaybeAppend(3, 2, 0, Ents(4, {2, 2}), &truncated);
  ASSERT_TRUE(last);
  // A reordered, older append covering only entry 4 again.
  last = log_.MaybeAppend(3, 2, 0, Ents(4, {2}), &truncated);
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, 4u);
  EXPECT_EQ(truncated, 0u);
  EXPECT_EQ(log_.LastIndex(), 5u) << "entry 5 kept";
}

TEST_F(RaftLogTest, CommitsAreCappedByLastNewEntry) {
  uint64_t truncated;
  ASSERT_TRUE(log_.MaybeAppend(2, 1, 100, {}, &truncated));
  EXPECT_EQ(log_.committed(), 2u);
}

TEST_F(RaftLogTest, LeaderCommitsOnlyEntriesOfTheGivenTerm) {
  EXPECT_FALSE(log_.MaybeCommit(2, 2)) << "entry 2 is from term 1";
  EXPECT_TRUE(log_.MaybeCommit(3, 2));
  EXPECT_EQ(log_.committed(), 3u);
  EXPECT_FALSE(log_.MaybeCommit(2, 1)) << "never backwards";
}

TEST_F(RaftLogTest, CommittedEntriesAreHandedOutOnce) {
  log_.CommitTo(2);
  auto ents = log_.NextCommittedEntries();
  ASSERT_EQ(ents.size(), 2u);
  log_.AppliedTo(2);
  EXPECT_FALSE(log_.HasNextCommittedEntries());
  log_.CommitTo(3);
  ents = log_.NextCommittedEntries();
  ASSERT_EQ(ents.size(), 1u);
  EXPECT_EQ(ents[0].index(), 3u);
}

TEST_F(RaftLogTest, SliceSpansStableAndUnstableWithinBudget) {
  log_.Append(Ents(4, {3, 3}));
  auto all = log_.Slice(2, 6, 1 << 20);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[3].index(), 5u);
  const uint64_t one = Ent(1, 1).ByteSizeLong();
  auto some = log_.Slice(2, 6, 2 * one);
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(some->size(), 2u);
  auto tiny = log_.Slice(2, 6, 1);
  ASSERT_TRUE(tiny.ok());
  EXPECT_EQ(tiny->size(), 1u) << "at least one entry";
}

TEST_F(RaftLogTest, StableToIgnoresReplacedEntries) {
  log_.Append(Ents(4, {3, 3}));
  uint64_t truncated;
  // A new leader replaces entry 5 before the driver reports it stable.
  ASSERT_TRUE(log_.MaybeAppend(4, 3, 0, Ents(5, {4}), &truncated));
  log_.StableTo(5, 3);
  EXPECT_EQ(log_.UnwrittenEntries().size(), 2u) << "term 3 at 5 is gone";
  log_.StableTo(5, 4);
  EXPECT_FALSE(log_.HasUnwrittenEntries());
}

TEST_F(RaftLogTest, FindConflictByTerm) {
  log_.Append(Ents(4, {3, 3, 5}));
  EXPECT_EQ(log_.FindConflictByTerm(6, 4).first, 5u);
  EXPECT_EQ(log_.FindConflictByTerm(6, 2).first, 3u);
  EXPECT_EQ(log_.FindConflictByTerm(6, 1).first, 2u);
  EXPECT_EQ(log_.FindConflictByTerm(100, 9).first, 6u) << "capped at last index";
}

TEST_F(RaftLogTest, RestoreFromSnapshot) {
  raftpb::Snapshot snap;
  snap.mutable_metadata()->set_index(10);
  snap.mutable_metadata()->set_term(4);
  log_.Restore(snap);
  EXPECT_EQ(log_.FirstIndex(), 11u);
  EXPECT_EQ(log_.LastIndex(), 10u);
  EXPECT_EQ(log_.LastTerm(), 4u);
  EXPECT_EQ(log_.committed(), 10u);
  EXPECT_EQ(log_.Term(9).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(log_.CheckInvariants().ok());
}

TEST(RaftLogInitTest, RefusesCommitPastTheLog) {
  MemoryLog stable;
  ASSERT_TRUE(stable.Append(Ents(1, {1})).ok());
  RaftLog log(&stable, 1 << 20);
  EXPECT_EQ(log.Init(5, 0).code(), absl::StatusCode::kDataLoss);
  RaftLog log2(&stable, 1 << 20);
  EXPECT_EQ(log2.Init(1, 3).code(), absl::StatusCode::kDataLoss) << "applied past the log";
}

TEST(RaftLogInitTest, AnAppliedIndexPastTheStoredCommitRaisesIt) {
  // Asynchronous writes: the state machine's write of entries 1-2 reached
  // the disk before the hard state that committed them.
  MemoryLog stable;
  ASSERT_TRUE(stable.Append(Ents(1, {1, 1, 1})).ok());
  RaftLog log(&stable, 1 << 20);
  ASSERT_TRUE(log.Init(1, 2).ok());
  EXPECT_EQ(log.committed(), 2u);
  EXPECT_EQ(log.applied(), 2u);
  EXPECT_FALSE(log.HasNextCommittedEntries());
}

TEST(RaftLogAsyncTest, EntriesInProgressAreNotHandedOutTwice) {
  MemoryLog stable;
  RaftLog log(&stable, 1 << 20, /*apply_only_durable=*/true);
  ASSERT_TRUE(log.Init(0, 0).ok());
  log.Append(Ents(1, {1, 1, 1}));
  ASSERT_EQ(log.UnwrittenEntries().size(), 3u);
  log.InProgressTo(3);
  EXPECT_FALSE(log.HasUnwrittenEntries());
  EXPECT_EQ(log.StableLastIndex(), 0u) << "in flight is not durable";
  log.Append(Ents(4, {1}));
  ASSERT_EQ(log.UnwrittenEntries().size(), 1u);
  EXPECT_EQ(log.UnwrittenEntries()[0].index(), 4u);
  EXPECT_TRUE(log.CheckInvariants().ok());
}

TEST(RaftLogAsyncTest, CommittedEntriesWaitUntilDurableHere) {
  MemoryLog stable;
  RaftLog log(&stable, 1 << 20, /*apply_only_durable=*/true);
  ASSERT_TRUE(log.Init(0, 0).ok());
  log.Append(Ents(1, {1, 1, 1}));
  log.InProgressTo(3);
  log.CommitTo(3);  // a quorum of followers has them; our write is in flight
  EXPECT_FALSE(log.HasNextCommittedEntries());
  ASSERT_TRUE(stable.Append(Ents(1, {1, 1})).ok());
  log.StableTo(2, 1);
  ASSERT_EQ(log.NextCommittedEntries().size(), 2u);
  EXPECT_EQ(log.NextCommittedEntries().back().index(), 2u);
  EXPECT_TRUE(log.CheckInvariants().ok());
}

TEST(RaftLogAsyncTest, AConflictWhileAWriteIsInFlightRewritesFromTheConflict) {
  MemoryLog stable;
  RaftLog log(&stable, 1 << 20, /*apply_only_durable=*/true);
  ASSERT_TRUE(log.Init(0, 0).ok());
  log.Append(Ents(1, {1, 1, 1, 1}));
  log.InProgressTo(4);  // write A: 1-4 of term 1
  uint64_t truncated = 0;
  // A new leader's entries replace 3 and 4 before write A finishes.
  ASSERT_TRUE(log.MaybeAppend(2, 1, 0, Ents(3, {2}), &truncated).has_value());
  EXPECT_EQ(truncated, 3u);
  auto unwritten = log.UnwrittenEntries();
  ASSERT_EQ(unwritten.size(), 1u);
  EXPECT_EQ(unwritten[0].index(), 3u);
  EXPECT_EQ(unwritten[0].term(), 2u);
  log.InProgressTo(3);  // write B: 3 of term 2
  // Write A reports: its last entry is gone, so nothing becomes stable.
  ASSERT_TRUE(stable.Append(Ents(1, {1, 1, 1, 1})).ok());
  log.StableTo(4, 1);
  EXPECT_EQ(log.StableLastIndex(), 0u);
  EXPECT_EQ(log.TermOrZero(3), 2u) << "the tail still answers for the new entry";
  ASSERT_TRUE(stable.Append(Ents(3, {2})).ok());
  log.StableTo(3, 2);
  EXPECT_EQ(log.StableLastIndex(), 3u);
  EXPECT_EQ(log.LastIndex(), 3u);
  EXPECT_TRUE(log.CheckInvariants().ok());
}

TEST(MemoryLogTest, CompactKeepsTheTermOfTheCompactedIndex) {
  MemoryLog m;
  ASSERT_TRUE(m.Append(Ents(1, {1, 2, 2, 3})).ok());
  ASSERT_TRUE(m.Compact(2, raftpb::ConfState(), "img").ok());
  EXPECT_EQ(m.FirstIndex(), 3u);
  EXPECT_EQ(m.Term(2).value(), 2u);
  EXPECT_EQ(m.Term(1).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(m.Entries(2, 4, 1 << 20).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(m.Entries(3, 5, 1 << 20)->size(), 2u);
}

}  // namespace
}  // namespace raftkv::raft
