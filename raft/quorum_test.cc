#include "raft/quorum.h"

#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"

namespace raftkv::raft {
namespace {

uint64_t Majority(const std::vector<uint64_t>& voters,
                  absl::flat_hash_map<uint64_t, uint64_t> match) {
  return MajorityValue(voters, [&](uint64_t id) {
    auto it = match.find(id);
    return it == match.end() ? 0 : it->second;
  });
}

TEST(MajorityValueTest, EmptyConfigurationIsZero) {
  EXPECT_EQ(Majority({}, {}), 0u);
}

TEST(MajorityValueTest, SingleVoterIsItsOwnMajority) {
  EXPECT_EQ(Majority({1}, {{1, 7}}), 7u);
}

TEST(MajorityValueTest, OddClusters) {
  EXPECT_EQ(Majority({1, 2, 3}, {{1, 5}, {2, 3}, {3, 1}}), 3u);
  EXPECT_EQ(Majority({1, 2, 3}, {{1, 5}}), 0u);
  EXPECT_EQ(Majority({1, 2, 3, 4, 5},
                     {{1, 9}, {2, 8}, {3, 2}, {4, 7}, {5, 1}}),
            7u);
}

TEST(MajorityValueTest, EvenClustersNeedMoreThanHalf) {
  // 4 voters: a majority is 3, so the third-highest value counts.
  EXPECT_EQ(Majority({1, 2, 3, 4}, {{1, 9}, {2, 8}, {3, 2}, {4, 1}}), 2u);
}

TEST(MajorityValueTest, NonVotersDoNotCount) {
  // Node 9 (e.g. a learner) has a high match but is not in the voter set.
  EXPECT_EQ(Majority({1, 2, 3}, {{1, 5}, {9, 100}, {2, 1}}), 1u);
}

TEST(TallyVotesTest, WinLoseAndPending) {
  std::vector<uint64_t> voters = {1, 2, 3, 4, 5};
  absl::flat_hash_map<uint64_t, bool> votes = {{1, true}, {2, true}};
  EXPECT_EQ(TallyVotes(voters, votes), VoteResult::kPending);
  votes[3] = true;
  EXPECT_EQ(TallyVotes(voters, votes), VoteResult::kWon);

  absl::flat_hash_map<uint64_t, bool> against = {
      {1, true}, {2, false}, {3, false}};
  EXPECT_EQ(TallyVotes(voters, against), VoteResult::kPending);
  against[4] = false;
  EXPECT_EQ(TallyVotes(voters, against), VoteResult::kLost);
}

TEST(TallyVotesTest, VotesFromNonVotersAreIgnored) {
  absl::flat_hash_map<uint64_t, bool> votes = {{1, true}, {7, true}, {8, true}};
  EXPECT_EQ(TallyVotes({1, 2, 3}, votes), VoteResult::kPending);
}

}  // namespace
}  // namespace raftkv::raft
