// A healthy 3-node cluster: writes through any node reach the leader (a
// follower redirects with NOT_LEADER and the leader's address), reads are
// linearizable on the leader and on followers, serializable reads say so,
// and SIGTERM stops a node cleanly.
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<int> Followers(const Cluster& c, int leader) {
  std::vector<int> out;
  for (int id = 1; id <= c.size(); ++id) {
    if (id != leader) out.push_back(id);
  }
  return out;
}

class BasicTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.StartAll().ok());
    auto leader = cluster_.WaitForLeader();
    ASSERT_TRUE(leader.ok()) << leader.status();
    leader_ = *leader;
  }

  Cluster cluster_;
  int leader_ = 0;
};

TEST_F(BasicTest, FollowerAnswersNotLeaderWithTheLeadersAddress) {
  for (int f : Followers(cluster_, leader_)) {
    kvpb::PutRequest req;
    req.mutable_header()->set_client_id(RandomId());
    req.mutable_header()->set_seq(1);
    req.mutable_header()->set_first_incomplete(1);
    req.set_key(absl::StrCat("via-", f));
    req.set_value("v");
    kvpb::PutResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = cluster_.kv(f)->Put(&ctx, req, &resp);
    ASSERT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
    EXPECT_THAT(s.error_message(), StartsWith("not leader"));
    EXPECT_THAT(s.error_message(), HasSubstr(cluster_.address(leader_)));
    EXPECT_EQ(TrailingMetadata(ctx, "raftkv-leader-addr"), cluster_.address(leader_));
    EXPECT_EQ(TrailingMetadata(ctx, "raftkv-leader-id"), absl::StrCat(leader_));

    // Following the hint works, and the same (client, seq) is fine there:
    // the follower applied nothing.
    const int hinted = cluster_.IdOf(TrailingMetadata(ctx, "raftkv-leader-addr"));
    ASSERT_EQ(hinted, leader_);
    grpc::ClientContext ctx2;
    s = cluster_.kv(hinted)->Put(&ctx2, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_GT(resp.version(), 0u);
    EXPECT_EQ(resp.header().node_id(), static_cast<uint64_t>(leader_));
    EXPECT_GE(resp.header().applied_index(), resp.version());
  }
}

TEST_F(BasicTest, WritesThroughEveryNodeReachTheLeader) {
  for (int start = 1; start <= cluster_.size(); ++start) {
    TestClient client(&cluster_);
    client.set_preferred(start);
    const std::string key = absl::StrCat("start-", start);
    auto put = client.Put(key, absl::StrCat("value-", start));
    ASSERT_TRUE(put.ok()) << put.status();
    EXPECT_EQ(put->header().node_id(), static_cast<uint64_t>(leader_));
    EXPECT_EQ(client.last_attempts(), start == leader_ ? 1 : 2)
        << "a follower's hint should lead straight to the leader";
    for (int n = 1; n <= cluster_.size(); ++n) {
      kvpb::GetRequest get;
      get.set_key(key);
      kvpb::GetResponse got;
      grpc::ClientContext ctx;
      grpc::Status s = cluster_.kv(n)->Get(&ctx, get, &got);
      ASSERT_TRUE(s.ok()) << "node " << n << ": " << s.error_message();
      EXPECT_TRUE(got.found());
      EXPECT_EQ(got.kv().value(), absl::StrCat("value-", start));
      EXPECT_EQ(got.kv().version(), put->version());
    }
  }
}

TEST_F(BasicTest, LinearizableReadsSeeTheLatestWriteOnEveryNode) {
  TestClient writer(&cluster_);
  writer.set_preferred(leader_);
  for (int i = 0; i < 25; ++i) {
    const std::string value = absl::StrCat("v", i);
    auto put = writer.Put("lin", value);
    ASSERT_TRUE(put.ok()) << put.status();
    // Right after the acknowledgement, every node (followers included, via
    // read-index) must return this write, never an older one.
    for (int n = 1; n <= cluster_.size(); ++n) {
      kvpb::GetRequest req;
      req.set_key("lin");
      kvpb::GetResponse resp;
      grpc::ClientContext ctx;
      grpc::Status s = cluster_.kv(n)->Get(&ctx, req, &resp);
      ASSERT_TRUE(s.ok()) << "node " << n << ": " << s.error_message();
      ASSERT_TRUE(resp.found()) << "node " << n << " round " << i;
      ASSERT_EQ(resp.kv().value(), value) << "node " << n << " returned a stale value";
      EXPECT_EQ(resp.kv().version(), put->version());
      EXPECT_FALSE(resp.header().serializable());
      EXPECT_EQ(resp.header().node_id(), static_cast<uint64_t>(n));
      EXPECT_GE(resp.header().applied_index(), put->version());
    }
  }
  // Scan is linearizable too.
  for (int n = 1; n <= cluster_.size(); ++n) {
    kvpb::ScanRequest req;
    req.set_prefix("li");
    kvpb::ScanResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = cluster_.kv(n)->Scan(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(resp.kvs_size(), 1);
    EXPECT_EQ(resp.kvs(0).value(), "v24");
    EXPECT_FALSE(resp.header().serializable());
  }
}

TEST_F(BasicTest, SerializableReadsSaySoAndCatchUp) {
  TestClient writer(&cluster_);
  auto put = writer.Put("ser", "x");
  ASSERT_TRUE(put.ok()) << put.status();
  for (int n = 1; n <= cluster_.size(); ++n) {
    kvpb::GetResponse resp;
    // A serializable read may be stale, but a follower applies the write
    // soon; its header always says the answer is serializable.
    bool caught_up = Cluster::WaitFor(
        [&] {
          kvpb::GetRequest req;
          req.set_key("ser");
          req.set_serializable(true);
          grpc::ClientContext ctx;
          resp.Clear();
          grpc::Status s = cluster_.kv(n)->Get(&ctx, req, &resp);
          EXPECT_TRUE(s.ok()) << s.error_message();
          EXPECT_TRUE(resp.header().serializable());
          EXPECT_EQ(resp.header().node_id(), static_cast<uint64_t>(n));
          return s.ok() && resp.found() && resp.kv().value() == "x";
        },
        absl::Seconds(10));
    EXPECT_TRUE(caught_up) << "node " << n << " never applied the write";
    EXPECT_EQ(resp.kv().version(), put->version());

    kvpb::ScanRequest scan;
    scan.set_serializable(true);
    kvpb::ScanResponse scanned;
    grpc::ClientContext ctx;
    ASSERT_TRUE(cluster_.kv(n)->Scan(&ctx, scan, &scanned).ok());
    EXPECT_TRUE(scanned.header().serializable());
  }
}

TEST_F(BasicTest, DeleteAndScanThroughAFollower) {
  TestClient client(&cluster_);
  client.set_preferred(Followers(cluster_, leader_)[0]);
  for (const char* k : {"a/1", "a/2", "a/3", "b/1"}) {
    ASSERT_TRUE(client.Put(k, absl::StrCat("val-", k)).ok());
  }
  auto del = client.Delete("a/2");
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_TRUE(del->deleted());
  del = client.Delete("a/2");
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_FALSE(del->deleted());

  const int follower = Followers(cluster_, leader_)[1];
  kvpb::ScanRequest req;
  req.set_prefix("a/");
  kvpb::ScanResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(cluster_.kv(follower)->Scan(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.kvs_size(), 2);
  EXPECT_EQ(resp.kvs(0).key(), "a/1");
  EXPECT_EQ(resp.kvs(1).key(), "a/3");
  EXPECT_FALSE(resp.more());

  auto got = client.Get("a/2");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->found());
}

TEST_F(BasicTest, LargeValuesFromConcurrentClientsReplicate) {
  // Values at the default --max_value_bytes (1 MiB), from several clients
  // at once: batches of them must fit the peer messages.
  constexpr size_t kBig = 1 << 20;
  constexpr int kThreads = 4, kPerThread = 4;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      TestClient client(&cluster_);
      for (int i = 0; i < kPerThread; ++i) {
        std::string value(kBig, static_cast<char>('a' + (t * kPerThread + i) % 26));
        auto put = client.Put(absl::StrCat("big/", t, "/", i), value);
        EXPECT_TRUE(put.ok()) << put.status();
      }
    });
  }
  for (auto& th : threads) th.join();
  auto st = cluster_.WaitForConvergence();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->key_count(), static_cast<uint64_t>(kThreads * kPerThread));
  for (int n = 1; n <= cluster_.size(); ++n) {
    kvpb::GetRequest req;
    req.set_key("big/3/3");
    kvpb::GetResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(cluster_.kv(n)->Get(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.kv().value(), std::string(kBig, static_cast<char>('a' + 15)));
  }
}

TEST_F(BasicTest, SigtermStopsEveryNodeCleanlyAndDataSurvives) {
  TestClient client(&cluster_);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(client.Put(absl::StrCat("k", i), "v").ok());
  auto before = cluster_.WaitForConvergence();
  ASSERT_TRUE(before.ok()) << before.status();
  for (auto& [n, r] : cluster_.StopAll(absl::Seconds(20))) {
    EXPECT_TRUE(r.exited);
    EXPECT_EQ(r.term_signal, 0) << "node " << n << " did not stop on SIGTERM";
    EXPECT_EQ(r.exit_code, 0) << "node " << n;
    EXPECT_LT(r.elapsed, absl::Seconds(10)) << "node " << n;
  }
  ASSERT_TRUE(cluster_.StartAll().ok());
  auto after = cluster_.WaitForConvergence();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->data_digest(), before->data_digest());
  EXPECT_EQ(after->key_count(), 20u);
}

}  // namespace
}  // namespace raftkv::testing
