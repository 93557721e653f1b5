#include "client/client.h"

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/fake_cluster.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace raftkv::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::FakeCluster;
using testing::FastOptions;
using testing::MakeClient;
using testing::Nodes;
using testing::UnusedAddress;


TEST(ClientOptionsTest, Validate) {
  ClientOptions o;
  EXPECT_THAT(o.Validate().message(), HasSubstr("no endpoints"));
  o.endpoints = {"127.0.0.1:7001", "localhost:7002", "[::1]:7003"};
  EXPECT_TRUE(o.Validate().ok()) << o.Validate();

  for (const char* bad : {"127.0.0.1", "127.0.0.1:", ":7001", "h:0", "h:70000",
                          "h:7x", "::1:7001", "[::1:7001", "a b:1"}) {
    ClientOptions b;
    b.endpoints = {bad};
    absl::Status s = b.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr(bad));
  }

  ClientOptions dup;
  dup.endpoints = {"h:1", "h:1"};
  EXPECT_THAT(dup.Validate().message(), HasSubstr("twice"));

  ClientOptions t;
  t.endpoints = {"h:1"};
  t.attempt_timeout = absl::ZeroDuration();
  EXPECT_FALSE(t.Validate().ok());
  t.attempt_timeout = absl::Seconds(1);
  t.total_timeout = -absl::Seconds(1);
  EXPECT_FALSE(t.Validate().ok());
  t.total_timeout = absl::Seconds(1);
  t.backoff_max = absl::Milliseconds(1);
  EXPECT_FALSE(t.Validate().ok());

  EXPECT_EQ(Client::Create(ClientOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ClientOptionsTest, SplitEndpoints) {
  EXPECT_THAT(SplitEndpoints("a:1, b:2,,c:3,"),
              ElementsAre("a:1", "b:2", "c:3"));
  EXPECT_TRUE(SplitEndpoints("").empty());
}

TEST(ClientTest, RandomNonZeroClientIdUnlessGiven) {
  auto a = MakeClient(FastOptions({"127.0.0.1:1"}));
  auto b = MakeClient(FastOptions({"127.0.0.1:1"}));
  EXPECT_NE(a->client_id(), 0u);
  EXPECT_NE(b->client_id(), 0u);
  EXPECT_NE(a->client_id(), b->client_id());
  ClientOptions o = FastOptions({"127.0.0.1:1"});
  o.client_id = 77;
  EXPECT_EQ(MakeClient(o)->client_id(), 77u);
}

TEST(ClientTest, Operations) {
  FakeCluster cluster(1);
  auto client = MakeClient(FastOptions(cluster.addresses()));

  auto v1 = client->Put("a", std::string("x\0y", 3));
  ASSERT_TRUE(v1.ok()) << v1.status();
  auto got = client->Get("a");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->key, "a");
  EXPECT_EQ(got->value, std::string("x\0y", 3));
  EXPECT_EQ(got->version, *v1);

  auto missing = client->Get("nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("get \"nope\""));

  ASSERT_TRUE(client->Put("ab", "2").ok());
  ASSERT_TRUE(client->Put("b", "3").ok());
  auto scan = client->Scan("a");
  ASSERT_TRUE(scan.ok()) << scan.status();
  ASSERT_EQ(scan->kvs.size(), 2u);
  EXPECT_EQ(scan->kvs[0].key, "a");
  EXPECT_EQ(scan->kvs[1].key, "ab");
  EXPECT_FALSE(scan->more);
  auto page = client->Scan("", 1, "a");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->kvs.size(), 1u);
  EXPECT_EQ(page->kvs[0].key, "ab");
  EXPECT_TRUE(page->more);

  auto cas = client->CompareAndSwap("b", Expected::Value("wrong"), "4");
  ASSERT_TRUE(cas.ok()) << cas.status();
  EXPECT_FALSE(cas->succeeded);
  ASSERT_TRUE(cas->current.has_value());
  EXPECT_EQ(cas->current->value, "3");
  const uint64_t b_version = cas->current->version;
  cas = client->CompareAndSwap("b", Expected::Version(b_version), "4");
  ASSERT_TRUE(cas.ok());
  EXPECT_TRUE(cas->succeeded);
  EXPECT_GT(cas->version, b_version);
  cas = client->CompareAndSwap("c", Expected::Absent(), "5");
  ASSERT_TRUE(cas.ok());
  EXPECT_TRUE(cas->succeeded);
  cas = client->CompareAndSwap("new", Expected::Value("x"), "5");
  ASSERT_TRUE(cas.ok());
  EXPECT_FALSE(cas->succeeded);
  EXPECT_FALSE(cas->current.has_value());

  auto del = client->Delete("a");
  ASSERT_TRUE(del.ok());
  EXPECT_TRUE(*del);
  del = client->Delete("a");
  ASSERT_TRUE(del.ok());
  EXPECT_FALSE(*del);
}

TEST(ClientTest, FollowsNotLeaderHint) {
  FakeCluster cluster(3);
  cluster.SetLeader(2);
  auto client = MakeClient(FastOptions(cluster.addresses()));

  ASSERT_TRUE(client->Put("k", "v").ok());
  // Node 0 redirected straight to node 2; node 1 was never asked.
  EXPECT_THAT(Nodes(cluster.calls("Put")), ElementsAre(0, 2));
  EXPECT_EQ(cluster.calls("Put")[0].outcome, "not leader");
  EXPECT_EQ(client->preferred_endpoint(), cluster.address(2));

  // The leader is remembered.
  cluster.ClearCalls();
  ASSERT_TRUE(client->Put("k", "w").ok());
  ASSERT_TRUE(client->Get("k").ok());
  EXPECT_THAT(Nodes(cluster.calls()), ElementsAre(2, 2));

  // Leadership moves: follow the new hint.
  cluster.SetLeader(1);
  cluster.ClearCalls();
  ASSERT_TRUE(client->Delete("k").ok());
  EXPECT_THAT(Nodes(cluster.calls("Delete")), ElementsAre(2, 1));
}

TEST(ClientTest, EmptyOrDeadHintTriesNextEndpoint) {
  FakeCluster cluster(3);
  cluster.SetLeader(2);
  cluster.SetHint(0, "");             // no leader known
  cluster.SetHint(1, "127.0.0.1:1");  // a stale hint: nothing listens there
  auto client = MakeClient(FastOptions(cluster.addresses()));
  ASSERT_TRUE(client->Put("k", "v").ok());
  EXPECT_THAT(Nodes(cluster.calls("Put")), ElementsAre(0, 1, 2));
}

// A leader that is not among the endpoints (it joined after the client was
// configured) is reached through the hint, and remembered.
TEST(ClientTest, FollowsHintToALeaderOutsideTheEndpoints) {
  FakeCluster cluster(3);
  cluster.SetLeader(2);
  auto client = MakeClient(FastOptions({cluster.address(0), cluster.address(1)}));
  ASSERT_TRUE(client->Put("k", "v").ok());
  EXPECT_THAT(Nodes(cluster.calls("Put")), ElementsAre(0, 2));
  EXPECT_EQ(client->preferred_endpoint(), cluster.address(2));
  ASSERT_EQ(client->ClusterStatus().size(), 2u) << "status covers the configured endpoints";
}

TEST(ClientTest, LinearizableReadRedirectedSerializableReadServedLocally) {
  FakeCluster cluster(2);
  cluster.SetLeader(1);
  auto client = MakeClient(FastOptions(cluster.addresses()));
  auto get = client->Get("k", /*serializable=*/true);
  EXPECT_EQ(get.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Nodes(cluster.calls("Get")), ElementsAre(0));

  cluster.ClearCalls();
  get = client->Get("k");
  EXPECT_EQ(get.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Nodes(cluster.calls("Get")), ElementsAre(0, 1));
}

TEST(ClientTest, RotatesPastUnreachableEndpoint) {
  FakeCluster cluster(2);
  cluster.SetLeader(1);
  // Endpoint order: a closed port, then a follower, then the leader.
  std::string dead = UnusedAddress();
  auto client = MakeClient(
      FastOptions({dead, cluster.address(0), cluster.address(1)}));
  auto v = client->Put("k", "v");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(cluster.applied_writes(), 1);

  // A node that goes down: the client moves on to the next endpoint.
  cluster.Stop(1);
  cluster.SetLeader(0);
  cluster.ClearCalls();
  v = client->Put("k", "w");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_THAT(Nodes(cluster.calls("Put")), ElementsAre(0));
  EXPECT_EQ(client->preferred_endpoint(), cluster.address(0));
}

TEST(ClientTest, LostResponseRetriedWithSameClientIdAndSeq) {
  FakeCluster cluster(2);
  auto client = MakeClient(FastOptions(cluster.addresses()));
  cluster.LoseResponses(0, 1);

  auto v = client->Put("k", "v");
  ASSERT_TRUE(v.ok()) << v.status();
  std::vector<FakeCluster::Call> puts = cluster.calls("Put");
  // Lost on node 0; the retry goes to node 1 (not leader, hint: node 0),
  // then back to node 0, which answers from its session table.
  ASSERT_EQ(puts.size(), 3u);
  EXPECT_EQ(puts[0].outcome, "lost");
  EXPECT_EQ(puts[1].outcome, "not leader");
  EXPECT_EQ(puts[2].outcome, "ok (duplicate)");
  for (const auto& p : puts) {
    EXPECT_EQ(p.header.client_id(), client->client_id());
    EXPECT_EQ(p.header.seq(), 1u);
    EXPECT_EQ(p.header.first_incomplete(), 1u);
  }
  EXPECT_EQ(cluster.applied_writes(), 1);
  auto got = client->Get("k");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version, *v);

  // The same for Delete and CompareAndSwap; the next writes use the next
  // sequence numbers.
  cluster.ClearCalls();
  cluster.LoseResponses(0, 1);
  auto deleted = client->Delete("k");
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(*deleted);  // the first result, not "no such key"
  cluster.LoseResponses(0, 1);
  auto cas = client->CompareAndSwap("k", Expected::Absent(), "x");
  ASSERT_TRUE(cas.ok());
  EXPECT_TRUE(cas->succeeded);  // not "already exists" from a second apply
  for (const auto& d : cluster.calls("Delete")) EXPECT_EQ(d.header.seq(), 2u);
  for (const auto& c : cluster.calls("CompareAndSwap")) {
    EXPECT_EQ(c.header.seq(), 3u);
  }
  EXPECT_EQ(cluster.applied_writes(), 3);
}

TEST(ClientTest, SequenceNumbersUnderConcurrentWrites) {
  FakeCluster cluster(1);
  auto client = MakeClient(FastOptions(cluster.addresses()));
  constexpr int kThreads = 8;
  constexpr int kWrites = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        std::string key = "k" + std::to_string(t) + "/" + std::to_string(i);
        absl::Status s = (i % 3 == 2)
                             ? client->Delete(key).status()
                             : client->Put(key, "v").status();
        EXPECT_TRUE(s.ok()) << s;
      }
    });
  }
  for (auto& t : threads) t.join();

  std::set<uint64_t> seqs;
  for (const auto& c : cluster.calls()) {
    EXPECT_EQ(c.header.client_id(), client->client_id());
    EXPECT_LE(c.header.first_incomplete(), c.header.seq());
    EXPECT_GE(c.header.first_incomplete(), 1u);
    EXPECT_TRUE(seqs.insert(c.header.seq()).second) << c.header.seq();
  }
  ASSERT_EQ(seqs.size(), static_cast<size_t>(kThreads * kWrites));
  EXPECT_EQ(*seqs.begin(), 1u);
  EXPECT_EQ(*seqs.rbegin(), static_cast<uint64_t>(kThreads * kWrites));
  // The fake checked, at every write, that each sequence number below its
  // first_incomplete had already been answered.
  EXPECT_THAT(cluster.header_errors(), ::testing::IsEmpty());
}

TEST(ClientTest, FirstIncompleteIsLowestInFlight) {
  FakeCluster cluster(1);
  auto client = MakeClient(FastOptions(cluster.addresses()));
  cluster.Block("slow");
  std::thread slow([&] { EXPECT_TRUE(client->Put("slow", "1").ok()); });
  // Wait until the blocked write (seq 1) has reached the server.
  while (cluster.calls("Put").empty()) absl::SleepFor(absl::Milliseconds(1));

  ASSERT_TRUE(client->Put("a", "2").ok());
  ASSERT_TRUE(client->Put("b", "3").ok());
  cluster.Release("slow");
  slow.join();
  ASSERT_TRUE(client->Put("c", "4").ok());

  std::vector<FakeCluster::Call> puts = cluster.calls("Put");
  ASSERT_EQ(puts.size(), 4u);
  std::vector<std::pair<std::string, uint64_t>> seq_fi;
  for (const auto& p : puts) {
    EXPECT_EQ(p.header.seq() == 1, p.key == "slow");
  }
  auto find = [&](const std::string& key) {
    for (const auto& p : puts) {
      if (p.key == key) return p.header;
    }
    return kvpb::WriteHeader();
  };
  EXPECT_EQ(find("a").seq(), 2u);
  EXPECT_EQ(find("a").first_incomplete(), 1u);  // seq 1 still in flight
  EXPECT_EQ(find("b").seq(), 3u);
  EXPECT_EQ(find("b").first_incomplete(), 1u);
  EXPECT_EQ(find("c").seq(), 4u);
  EXPECT_EQ(find("c").first_incomplete(), 4u);  // nothing else in flight
}

// A node shutting down cancels the calls it still holds: the write may or
// may not have applied, so it is retried (same id and sequence) elsewhere.
TEST(ClientTest, CancelledByAServerShuttingDownIsRetried) {
  FakeCluster cluster(3);
  cluster.SetLeader(0);
  auto client = MakeClient(FastOptions(cluster.addresses()));
  cluster.FailNext(0, grpc::Status(grpc::StatusCode::CANCELLED, "server shutting down"));
  auto v = client->Put("k", "v");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_GE(cluster.calls("Put").size(), 2u);
  EXPECT_EQ(cluster.applied_writes(), 1);
}

TEST(ClientTest, InvalidArgumentNotRetried) {
  FakeCluster cluster(3);
  auto client = MakeClient(FastOptions(cluster.addresses()));
  cluster.FailNext(
      0, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "value too large"),
      5);
  auto v = client->Put("k", "v");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(v.status().message(), "put \"k\": value too large");
  EXPECT_EQ(cluster.calls().size(), 1u);

  // Same for reads, and for the fake's own check of an empty key.
  cluster.ClearCalls();
  auto g = client->Get("k");
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cluster.calls().size(), 1u);
  EXPECT_EQ(client->Put("", "v").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A node whose data is corrupt refuses reads with DATA_LOSS: the read goes
// to another member at once, and fails only once every endpoint refused.
TEST(ClientTest, ReadRefusedForCorruptDataGoesToAnotherNode) {
  FakeCluster cluster(3);
  cluster.SetLeader(1);  // the fake serves linearizable reads on the leader only
  cluster.Preload("k", "v");
  const grpc::Status corrupt(grpc::StatusCode::DATA_LOSS,
                             "node 1 does not serve reads: alarm CORRUPT: ...");
  for (bool serializable : {false, true}) {
    auto client = MakeClient(FastOptions(cluster.addresses()));  // starts at node 0
    cluster.ClearCalls();
    cluster.FailNext(0, corrupt, 100);
    auto g = client->Get("k", serializable);
    ASSERT_TRUE(g.ok()) << g.status();
    EXPECT_EQ(g->value, "v");
    ASSERT_EQ(cluster.calls().size(), 2u);
    EXPECT_EQ(cluster.calls()[0].node, 0);
    EXPECT_EQ(cluster.calls()[0].outcome, "injected");
    EXPECT_NE(cluster.calls()[1].node, 0) << "the refusing node is not asked again";
    auto sc = client->Scan("", 0, "", serializable);
    ASSERT_TRUE(sc.ok()) << sc.status();
    EXPECT_EQ(sc->kvs.size(), 1u);
  }
}

TEST(ClientTest, ReadRefusedEverywhereFailsWithDataLoss) {
  FakeCluster cluster(2);
  auto client = MakeClient(FastOptions(cluster.addresses()));
  for (int n : {0, 1}) {
    cluster.FailNext(n, grpc::Status(grpc::StatusCode::DATA_LOSS, "corrupt here"), 100);
  }
  auto g = client->Get("k");
  EXPECT_EQ(g.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(g.status().message(), HasSubstr("every endpoint refused the read"));
  EXPECT_THAT(g.status().message(), HasSubstr("corrupt here"));
  EXPECT_EQ(cluster.calls().size(), 2u);

  // One endpoint: its own message.
  auto single = MakeClient(FastOptions({cluster.address(0)}));
  auto s = single->Scan("");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s.status().message(), "scan \"\": corrupt here");
}

TEST(ClientTest, OtherFailedPreconditionNotRetried) {
  FakeCluster cluster(2);
  auto client = MakeClient(FastOptions(cluster.addresses()));
  cluster.FailNext(
      0, grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cluster frozen"));
  EXPECT_EQ(client->Put("k", "v").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(cluster.calls().size(), 1u);
}

TEST(ClientTest, TotalTimeoutRespectedWhenAllUnreachable) {
  ClientOptions o = FastOptions({UnusedAddress(), UnusedAddress()});
  o.total_timeout = absl::Milliseconds(300);
  auto client = MakeClient(o);
  const absl::Time start = absl::Now();
  auto v = client->Put("k", "v");
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(v.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(v.status().message(),
              HasSubstr("put \"k\": no leader reachable among " +
                        o.endpoints[0] + "," + o.endpoints[1]));
  EXPECT_THAT(v.status().message(), HasSubstr("last error from"));
  EXPECT_GE(took, absl::Milliseconds(295));
  EXPECT_LT(took, absl::Milliseconds(800));
}

TEST(ClientTest, TotalTimeoutRespectedWhenNodesHang) {
  FakeCluster cluster(2);
  cluster.SetDelay(0, absl::Seconds(10));
  cluster.SetDelay(1, absl::Seconds(10));
  ClientOptions o = FastOptions(cluster.addresses());
  o.attempt_timeout = absl::Milliseconds(100);
  o.total_timeout = absl::Milliseconds(350);
  auto client = MakeClient(o);
  const absl::Time start = absl::Now();
  auto g = client->Get("k");
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(g.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(g.status().message(), HasSubstr("DEADLINE_EXCEEDED"));
  EXPECT_GE(took, absl::Milliseconds(345));
  EXPECT_LT(took, absl::Milliseconds(900));
}

TEST(ClientTest, NoLeaderAnywhereGivesUpWithReadableError) {
  FakeCluster cluster(3);
  cluster.SetLeader(-1);
  ClientOptions o = FastOptions(cluster.addresses());
  // Long enough for first connections on a slow (sanitized, loaded) build.
  o.total_timeout = absl::Seconds(1);
  auto client = MakeClient(o);
  auto v = client->Put("k", "v");
  EXPECT_EQ(v.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(v.status().message(), HasSubstr("no leader reachable among"));
  EXPECT_THAT(v.status().message(), HasSubstr("not leader"));
  // Every endpoint was tried, with backoff between rounds (not a busy loop).
  std::set<int> nodes;
  for (const auto& c : cluster.calls()) nodes.insert(c.node);
  EXPECT_EQ(nodes.size(), 3u);
  EXPECT_LT(cluster.calls().size(), 200u);
  EXPECT_EQ(cluster.applied_writes(), 0);
}

TEST(ClientTest, RecoversWhenLeaderAppears) {
  FakeCluster cluster(3);
  cluster.SetLeader(-1);
  auto client = MakeClient(FastOptions(cluster.addresses()));
  std::thread elect([&] {
    absl::SleepFor(absl::Milliseconds(100));
    cluster.SetLeader(1);
  });
  auto v = client->Put("k", "v");
  elect.join();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(cluster.applied_writes(), 1);
}

TEST(ClientTest, ClusterStatus) {
  FakeCluster cluster(2);
  cluster.SetLeader(1);
  std::string dead = UnusedAddress();
  auto client =
      MakeClient(FastOptions({cluster.address(0), dead, cluster.address(1)}));
  std::vector<EndpointStatus> st = client->ClusterStatus();
  ASSERT_EQ(st.size(), 3u);
  EXPECT_TRUE(st[0].reachable);
  EXPECT_EQ(st[0].endpoint, cluster.address(0));
  EXPECT_EQ(st[0].status.role(), "follower");
  EXPECT_EQ(st[0].status.leader_address(), cluster.address(1));
  EXPECT_FALSE(st[1].reachable);
  EXPECT_EQ(st[1].endpoint, dead);
  EXPECT_EQ(st[1].error.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(st[2].reachable);
  EXPECT_EQ(st[2].status.role(), "leader");
  EXPECT_EQ(st[2].status.node_id(), 2u);
}


// Size limits: checked before sending, against what a node reports.

std::vector<FakeCluster::Call> KvCalls(const FakeCluster& cluster) {
  std::vector<FakeCluster::Call> out;
  for (const auto& c : cluster.calls()) {
    if (c.method != "Status") out.push_back(c);
  }
  return out;
}

TEST(ClientLimitsTest, ValueOverTheReportedLimitFailsBeforeSending) {
  FakeCluster cluster(3);
  cluster.SetLimits(1 << 20, 64 << 20);
  auto client = MakeClient(FastOptions(cluster.addresses()));
  const absl::Time start = absl::Now();
  auto v = client->Put("big", std::string((1 << 20) + 1, 'v'));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(v.status().message(),
            "put \"big\": value is 1048577 bytes; the cluster's limit is 1048576 "
            "(server --max_value_bytes)");
  EXPECT_THAT(KvCalls(cluster), ::testing::IsEmpty());
  EXPECT_EQ(cluster.calls("Status").size(), 1u);
  EXPECT_EQ(cluster.batch_stats(0).streams, 0);

  // Learned once: the next check asks nobody. CAS checks its new value too.
  auto c = client->CompareAndSwap("big", Expected::Absent(), std::string((1 << 20) + 5, 'v'));
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("cas \"big\": value is 1048581 bytes"));
  EXPECT_EQ(cluster.calls("Status").size(), 1u);
  EXPECT_THAT(KvCalls(cluster), ::testing::IsEmpty());

  // At the limit it is sent.
  ASSERT_TRUE(client->Put("big", std::string(1 << 20, 'v')).ok());
}

TEST(ClientLimitsTest, LargerReportedLimitsAllowLargerValues) {
  FakeCluster cluster(1);
  cluster.SetLimits(3 << 20, 4 << 20);
  auto client = MakeClient(FastOptions(cluster.addresses()));
  // Over the default 1 MiB: the client asks, and may send it.
  auto v = client->Put("k", std::string(2 << 20, 'v'));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(cluster.calls("Status").size(), 1u);
  SizeLimits l = client->Limits();
  EXPECT_TRUE(l.reported);
  EXPECT_EQ(l.max_value_bytes, 3u << 20);
  EXPECT_EQ(l.max_request_bytes, 4u << 20);

  // Values within the limit, a request over the receive limit (the compared
  // value counts too).
  auto c = client->CompareAndSwap("k", Expected::Value(std::string(2 << 20, 'v')),
                                  std::string(2 << 20, 'w'));
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(c.status().message()),
              ::testing::MatchesRegex("cas \"k\": request is [0-9]+ bytes; the cluster's limit "
                                      "is 4194304 \\(the server's gRPC receive limit\\)"));
  EXPECT_EQ(cluster.calls("CompareAndSwap").size(), 0u);
  EXPECT_EQ(cluster.calls("Status").size(), 1u);
}

TEST(ClientLimitsTest, UnreportedLimitsAreTheDefaults) {
  FakeCluster cluster(2);  // reports no limits, as an older server
  auto client = MakeClient(FastOptions(cluster.addresses()));
  auto v = client->Put("k", std::string(kDefaultMaxValueBytes + 1, 'v'));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(v.status().message(),
            "put \"k\": value is 1048577 bytes; the cluster's limit is 1048576 (server "
            "--max_value_bytes; the default: no node reported its limits)");
  EXPECT_THAT(KvCalls(cluster), ::testing::IsEmpty());
  // A node answered: not asked again.
  EXPECT_EQ(client->Put("k", std::string(kDefaultMaxValueBytes + 1, 'v')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cluster.calls("Status").size(), 1u);
  // ClusterStatus answers count as reports too.
  cluster.SetLimits(100, 1000);
  FakeCluster other(1);
  other.SetLimits(100, 1000);
  auto fresh = MakeClient(FastOptions(other.addresses()));
  ASSERT_TRUE(fresh->ClusterStatus()[0].reachable);
  EXPECT_EQ(fresh->Put("k", std::string(101, 'v')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(other.calls("Status").size(), 1u);
  EXPECT_THAT(KvCalls(other), ::testing::IsEmpty());
}

TEST(ClientLimitsTest, NoNodeAnsweringLeavesTheDefaults) {
  ClientOptions o = FastOptions({UnusedAddress()});
  o.total_timeout = absl::Milliseconds(300);
  auto client = MakeClient(o);
  auto v = client->Put("k", std::string(kDefaultMaxValueBytes + 1, 'v'));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(v.status().message(), HasSubstr("the default: no node reported its limits"));
  // Small requests are not checked against anything but the defaults.
  EXPECT_EQ(client->Put("k", "v").status().code(), absl::StatusCode::kUnavailable);
}

// A node whose receive limit is smaller than the client believes ends the
// stream RESOURCE_EXHAUSTED: that op fails at once, not retried elsewhere.
TEST(ClientLimitsTest, MessageOverAReceiveLimitIsNotRetried) {
  FakeCluster cluster(3);
  cluster.SetLimits(64 << 20, 64 << 20);  // the fakes really take 4 MiB
  ClientOptions o = FastOptions(cluster.addresses());
  // Time to send 5 MiB on a slow (sanitized, loaded) build: one attempt.
  o.attempt_timeout = absl::Seconds(10);
  o.total_timeout = absl::Seconds(30);
  auto client = MakeClient(o);
  const absl::Time start = absl::Now();
  auto v = client->Put("k", std::string(5 << 20, 'v'));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kResourceExhausted) << v.status();
  EXPECT_THAT(v.status().message(), HasSubstr("put \"k\": request of "));
  EXPECT_THAT(v.status().message(), HasSubstr("is over the gRPC receive limit of " +
                                              cluster.address(0)));
  int streams = 0;
  for (int i = 0; i < cluster.size(); ++i) streams += cluster.batch_stats(i).streams;
  EXPECT_EQ(streams, 1);
  EXPECT_THAT(KvCalls(cluster), ::testing::IsEmpty());
  // The client goes on with a fresh stream.
  ASSERT_TRUE(client->Put("k", "v").ok());
}

// Only unavailability and leader changes are retried (client.h).
TEST(ClientTest, NonRetriableCodesReturnedAtOnce) {
  FakeCluster cluster(3);
  auto client = MakeClient(FastOptions(cluster.addresses()));
  for (grpc::StatusCode code :
       {grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::RESOURCE_EXHAUSTED,
        grpc::StatusCode::FAILED_PRECONDITION, grpc::StatusCode::OUT_OF_RANGE,
        grpc::StatusCode::NOT_FOUND, grpc::StatusCode::ALREADY_EXISTS,
        grpc::StatusCode::ABORTED, grpc::StatusCode::PERMISSION_DENIED,
        grpc::StatusCode::UNAUTHENTICATED, grpc::StatusCode::UNIMPLEMENTED,
        grpc::StatusCode::INTERNAL, grpc::StatusCode::DATA_LOSS, grpc::StatusCode::UNKNOWN}) {
    SCOPED_TRACE(code);
    cluster.ClearCalls();
    cluster.FailNext(0, grpc::Status(code, "injected"), 3);
    auto v = client->Put("k", "v");
    EXPECT_EQ(static_cast<int>(v.status().code()), static_cast<int>(code));
    EXPECT_EQ(v.status().message(), "put \"k\": injected");
    EXPECT_EQ(cluster.calls().size(), 1u);
    cluster.FailNext(0, grpc::Status::OK, 0);
  }
}

// Admin calls wait longer per attempt (a change commits first), but never
// past the call's total timeout.
TEST(ClientTest, AdminCallsEndByTheTotalTimeout) {
  FakeCluster cluster(3);
  cluster.SetDelay(0, absl::Seconds(3));
  ClientOptions o = FastOptions(cluster.addresses());
  o.total_timeout = absl::Milliseconds(400);
  auto client = MakeClient(o);
  const absl::Time start = absl::Now();
  auto m = client->AddMember(4, "127.0.0.1:1");
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
  EXPECT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kDeadlineExceeded) << m.status();
}

// ClientOptions::deadline bounds every call, however many.
TEST(ClientTest, DeadlineBoundsEveryCall) {
  FakeCluster cluster(1);
  cluster.SetDelay(0, absl::Milliseconds(250));
  ClientOptions o = FastOptions(cluster.addresses());
  o.attempt_timeout = absl::Seconds(5);
  o.total_timeout = absl::Seconds(10);
  o.deadline = absl::Now() + absl::Milliseconds(400);
  auto client = MakeClient(o);
  const absl::Time start = absl::Now();
  EXPECT_TRUE(client->Put("a", "1").ok());
  auto second = client->Put("b", "2");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kDeadlineExceeded) << second.status();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1000));
  auto third = client->Get("a");
  EXPECT_EQ(third.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(third.status().message(), "get \"a\": the deadline passed before the first attempt");
  EXPECT_FALSE(client->ClusterStatus()[0].reachable);
}

}  // namespace
}  // namespace raftkv::client
