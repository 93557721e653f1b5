#include "server/peer_incarnations.h"

#include <memory>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/test_util.h"

namespace raftkv::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

class PeerIncarnationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.dir = storage::testing::TestDir();
    Reopen();
  }
  void Reopen() {
    store_.reset();
    auto s = storage::LogStore::Open(options_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  storage::Options options_;
  std::unique_ptr<storage::LogStore> store_;
};

TEST_F(PeerIncarnationsTest, TheFirstIncarnationIsRecordedDurablyAndOthersRefused) {
  {
    PeerIncarnations p(store_.get());
    EXPECT_TRUE(p.Admit(2, 111).ok());
    EXPECT_TRUE(p.Admit(2, 111).ok());
    EXPECT_TRUE(p.Admit(3, 333).ok());
  }
  Reopen();
  PeerIncarnations p(store_.get());
  EXPECT_THAT(p.Known(), ElementsAre(Pair(2, 111), Pair(3, 333)));
  absl::Status s = p.Admit(2, 222);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("kvctl member remove 2"));
  EXPECT_EQ(p.Admit(3, 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.refused(), 2u);
  EXPECT_TRUE(p.Admit(2, 111).ok());
}

TEST_F(PeerIncarnationsTest, ANodeThatIsNoMemberIsNotRecordedAndARemovedOneIsForgotten) {
  std::set<uint64_t> members = {2, 4};
  PeerIncarnations::ClusterView view;
  view.is_member = [&](uint64_t id) { return members.count(id) > 0; };
  {
    PeerIncarnations p(store_.get(), view);
    ASSERT_TRUE(p.Admit(4, 1).ok());
    EXPECT_TRUE(p.Admit(5, 50).ok()) << "a non-member's stream is refused";
    EXPECT_TRUE(p.Admit(5, 51).ok()) << "a non-member's incarnation was recorded";
    members.erase(4);  // 4's removal applied
    ASSERT_TRUE(p.Reconcile().ok());
    EXPECT_TRUE(p.Local().empty());
  }
  Reopen();
  PeerIncarnations p(store_.get(), view);
  EXPECT_TRUE(p.Local().empty());
  members.insert(4);  // added again, as a fresh node
  EXPECT_TRUE(p.Admit(4, 2).ok());
}

// Members that never heard from a node directly learn its incarnation from
// the replicated record, which overrides what they recorded themselves.
TEST_F(PeerIncarnationsTest, TheReplicatedRecordDecides) {
  std::map<uint64_t, uint64_t> replicated = {{2, 111}};
  PeerIncarnations::ClusterView view;
  view.records = [&] { return replicated; };
  PeerIncarnations p(store_.get(), view);
  EXPECT_EQ(p.Admit(2, 222).code(), absl::StatusCode::kFailedPrecondition)
      << "a new incarnation of a recorded member was accepted";
  EXPECT_TRUE(p.Admit(2, 111).ok());
  EXPECT_TRUE(p.Admit(3, 333).ok());  // no replicated record: the local one
  replicated[3] = 999;
  EXPECT_EQ(p.Admit(3, 333).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(p.Known(), ElementsAre(Pair(2, 111), Pair(3, 999)));
}

}  // namespace
}  // namespace raftkv::server
