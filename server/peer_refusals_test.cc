#include "server/peer_refusals.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

using ::testing::Pair;
using ::testing::UnorderedElementsAre;

TEST(PeerRefusalsTest, CountsEachReasonApartAndListsZeros) {
  PeerRefusals r;
  auto what = [] { return std::string("test"); };
  r.Count(PeerRefusal::kOtherCluster, what);
  r.Count(PeerRefusal::kOtherCluster, what);
  r.Count(PeerRefusal::kNonMember, what);
  EXPECT_EQ(r.count(PeerRefusal::kOtherCluster), 2u);
  EXPECT_EQ(r.count(PeerRefusal::kNonMember), 1u);
  EXPECT_EQ(r.count(PeerRefusal::kWrongSender), 0u);
  EXPECT_THAT(r.Counts(),
              UnorderedElementsAre(Pair("peer_certificate", 0), Pair("other_cluster", 2),
                                   Pair("no_sender", 0),
                                   Pair("wrong_incarnation", 0), Pair("wrong_recipient", 0),
                                   Pair("wrong_sender", 0), Pair("bare_snapshot", 0),
                                   Pair("non_member", 1)));
}

TEST(PeerRefusalsTest, WarnsOncePerReasonPerPeriod) {
  PeerRefusals r(absl::Hours(1));
  int built = 0;
  auto what = [&built] {
    ++built;
    return std::string("test");
  };
  EXPECT_TRUE(r.Count(PeerRefusal::kWrongRecipient, what));
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(r.Count(PeerRefusal::kWrongRecipient, what));
  // Another reason has its own period.
  EXPECT_TRUE(r.Count(PeerRefusal::kNoSender, what));
  EXPECT_EQ(built, 2) << "the message is built only when logged";
  EXPECT_EQ(r.count(PeerRefusal::kWrongRecipient), 101u);
}

TEST(PeerRefusalsTest, WarnsAgainOncePeriodPassed) {
  PeerRefusals r(absl::ZeroDuration());
  auto what = [] { return std::string("test"); };
  EXPECT_TRUE(r.Count(PeerRefusal::kWrongSender, what));
  EXPECT_TRUE(r.Count(PeerRefusal::kWrongSender, what));
}

TEST(PeerRefusalsTest, ConcurrentCountsAreAllKeptAndOneWarns) {
  PeerRefusals r(absl::Hours(1));
  std::atomic<int> warned{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        warned += r.Count(PeerRefusal::kOtherCluster, [] { return std::string("test"); });
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(r.count(PeerRefusal::kOtherCluster), 4000u);
  EXPECT_EQ(warned.load(), 1);
}

}  // namespace
}  // namespace raftkv::server
