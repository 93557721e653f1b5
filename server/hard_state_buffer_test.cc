#include "server/hard_state_buffer.h"

#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

raftpb::HardState Hs(uint64_t term, uint64_t vote, uint64_t commit) {
  raftpb::HardState hs;
  hs.set_term(term);
  hs.set_vote(vote);
  hs.set_commit(commit);
  return hs;
}

TEST(HardStateBufferTest, ACommitOnlyChangeWaitsForTheNextWrite) {
  HardStateBuffer b(Hs(2, 1, 10));
  EXPECT_FALSE(b.ToWrite(Hs(2, 1, 11), /*must_write=*/false).has_value());
  EXPECT_FALSE(b.ToWrite(Hs(2, 1, 12), false).has_value());
  ASSERT_TRUE(b.held().has_value());
  EXPECT_EQ(b.held()->commit(), 12u);
  // A round with entries but an unchanged hard state carries the held one.
  auto out = b.ToWrite(std::nullopt, /*must_write=*/true);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->commit(), 12u);
  EXPECT_FALSE(b.held().has_value());
  // Nothing held, nothing changed: nothing to write.
  EXPECT_FALSE(b.ToWrite(std::nullopt, true).has_value());
  EXPECT_FALSE(b.ToWrite(std::nullopt, false).has_value());
}

TEST(HardStateBufferTest, ANewTermOrVoteIsWrittenAtOnce) {
  HardStateBuffer b(Hs(2, 1, 10));
  EXPECT_FALSE(b.ToWrite(Hs(2, 1, 11), false).has_value());
  auto term = b.ToWrite(Hs(3, 0, 11), false);
  ASSERT_TRUE(term.has_value());
  EXPECT_EQ(term->term(), 3u);
  EXPECT_FALSE(b.held().has_value());
  auto vote = b.ToWrite(Hs(3, 2, 11), false);
  ASSERT_TRUE(vote.has_value());
  EXPECT_EQ(vote->vote(), 2u);
  // Compared against what was last written, not the first state.
  EXPECT_FALSE(b.ToWrite(Hs(3, 2, 12), false).has_value());
}

TEST(HardStateBufferTest, AChangedHardStateWithEntriesIsWrittenAsIs) {
  HardStateBuffer b(Hs(2, 1, 10));
  EXPECT_FALSE(b.ToWrite(Hs(2, 1, 11), false).has_value());
  auto out = b.ToWrite(Hs(2, 1, 13), true);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->commit(), 13u);
  EXPECT_FALSE(b.held().has_value());
}

}  // namespace
}  // namespace raftkv::server
