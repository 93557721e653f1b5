// The Client's KV.Batch transport (client/batch_stream.h) against
// FakeCluster: KV calls travel as ops of one stream per endpoint, concurrent
// calls share it and its messages, and the stream's failures (broken, hung)
// are retried or timed out the way a unary call's would be.
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
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


void WaitFor(const std::function<bool()>& cond) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!cond() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_TRUE(cond());
}

// KV calls are Batch ops (admin calls stay unary), and a NOT_LEADER answer
// is followed to the address in the op's answer.
TEST(BatchTransportTest, KvCallsAreBatchOpsAndFollowTheAnswersHint) {
  FakeCluster cluster(3);
  cluster.SetLeader(2);
  auto client = MakeClient(FastOptions(cluster.addresses()));

  ASSERT_TRUE(client->Put("k", "v").ok());
  EXPECT_THAT(Nodes(cluster.calls("Put")), ElementsAre(0, 2));
  EXPECT_EQ(cluster.calls("Put")[0].outcome, "not leader");
  ASSERT_TRUE(client->Get("k").ok());
  ASSERT_TRUE(client->Scan("").ok());
  ASSERT_TRUE(client->CompareAndSwap("k", Expected::Value("v"), "w").ok());
  ASSERT_TRUE(client->Delete("k").ok());
  ASSERT_TRUE(client->TransferLeader(1).ok());
  for (const auto& c : cluster.calls()) {
    EXPECT_EQ(c.batch, c.method != "TransferLeader") << c.method;
  }
  // One stream per endpoint used, none for the endpoint never asked.
  EXPECT_EQ(cluster.batch_stats(0).streams, 1);
  EXPECT_EQ(cluster.batch_stats(1).streams, 0);
  EXPECT_EQ(cluster.batch_stats(2).streams, 1);
  EXPECT_EQ(cluster.batch_stats(2).ops, 5);
}

// Many threads on one Client: one stream, ops sharing messages, every write
// applied once with a version of its own.
TEST(BatchTransportTest, ConcurrentCallsShareOneStreamAndItsMessages) {
  FakeCluster cluster(1);
  // Answers take a moment, so calls overlap.
  cluster.SetDelay(0, absl::Milliseconds(1));
  ClientOptions o = FastOptions(cluster.addresses());
  // No attempt times out however loaded the machine: one stream throughout.
  o.attempt_timeout = absl::Seconds(30);
  o.total_timeout = absl::Seconds(60);
  auto client = MakeClient(o);
  constexpr int kThreads = 16;
  constexpr int kOps = 40;
  absl::Mutex mu;
  std::vector<uint64_t> versions;
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      for (int i = 0; i < kOps; ++i) {
        const std::string key = "k" + std::to_string(t) + "/" + std::to_string(i);
        auto v = client->Put(key, "v");
        ASSERT_TRUE(v.ok()) << v.status();
        auto got = client->Get(key);
        ASSERT_TRUE(got.ok()) << got.status();
        EXPECT_EQ(got->version, *v);
        absl::MutexLock l(&mu);
        versions.push_back(*v);
      }
    });
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(std::set<uint64_t>(versions.begin(), versions.end()).size(),
            static_cast<size_t>(kThreads * kOps));
  EXPECT_EQ(cluster.applied_writes(), kThreads * kOps);
  EXPECT_THAT(cluster.header_errors(), ::testing::IsEmpty());
  const FakeCluster::BatchStats st = cluster.batch_stats(0);
  EXPECT_EQ(st.streams, 1);
  EXPECT_EQ(st.ops, 2 * kThreads * kOps);
  EXPECT_LT(st.messages, st.ops) << "no two ops ever shared a message";
  EXPECT_GT(st.max_ops, 1);
  std::cerr << st.ops << " ops in " << st.messages << " messages, at most " << st.max_ops
            << " in one\n";
}

// The stream breaks under two waiting writes: one whose write was applied
// (its answer lost), one still blocked. Both are retried on a fresh stream
// with the same sequence numbers, and each applies exactly once.
TEST(BatchTransportTest, BrokenStreamRetriesWaitingCallsExactlyOnce) {
  FakeCluster cluster(1);
  auto client = MakeClient(FastOptions(cluster.addresses()));
  cluster.Block("slow");
  absl::StatusOr<uint64_t> slow;
  std::thread t([&] { slow = client->Put("slow", "1"); });
  WaitFor([&] { return cluster.calls("Put").size() == 1; });

  cluster.LoseResponses(0, 1);
  std::thread release([&] {
    // Let the blocked write through once its first attempt gave up (the
    // stream was cut under it) and its retry arrived.
    WaitFor([&] {
      auto puts = cluster.calls("Put");
      return puts.size() >= 4 && puts[0].outcome == "cancelled";
    });
    cluster.Release("slow");
  });
  auto lost = client->Put("lost", "2");
  ASSERT_TRUE(lost.ok()) << lost.status();
  release.join();
  t.join();
  ASSERT_TRUE(slow.ok()) << slow.status();

  std::vector<std::string> lost_outcomes, slow_outcomes;
  std::set<uint64_t> lost_seqs, slow_seqs;
  for (const auto& c : cluster.calls("Put")) {
    (c.key == "lost" ? lost_outcomes : slow_outcomes).push_back(c.outcome);
    (c.key == "lost" ? lost_seqs : slow_seqs).insert(c.header.seq());
  }
  EXPECT_THAT(lost_outcomes, ElementsAre("lost", "ok (duplicate)"));
  EXPECT_THAT(slow_outcomes, ElementsAre("cancelled", "ok"));
  EXPECT_EQ(lost_seqs.size(), 1u);
  EXPECT_EQ(slow_seqs.size(), 1u);
  EXPECT_EQ(cluster.applied_writes(), 2);
  EXPECT_EQ(cluster.batch_stats(0).streams, 2);
  auto got = client->Get("lost");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version, *lost);
}

// A stream that takes ops and never answers (a stopped node, a black-holed
// connection): calls end DEADLINE_EXCEEDED within the total timeout, and once
// the node is back the next call is served at once on a fresh stream instead
// of queueing behind the dead one.
TEST(BatchTransportTest, HungStreamTimesOutAndTheNextCallGetsAFreshStream) {
  FakeCluster cluster(1);
  ClientOptions o = FastOptions(cluster.addresses());
  o.attempt_timeout = absl::Milliseconds(100);
  o.total_timeout = absl::Milliseconds(350);
  auto client = MakeClient(o);
  ASSERT_TRUE(client->Put("k", "v").ok());

  cluster.Hang(0, true);
  absl::Time start = absl::Now();
  auto g = client->Get("k");
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(g.status().code(), absl::StatusCode::kDeadlineExceeded) << g.status();
  EXPECT_THAT(g.status().message(), HasSubstr("DEADLINE_EXCEEDED"));
  EXPECT_GE(took, absl::Milliseconds(345));
  EXPECT_LT(took, absl::Milliseconds(900));

  // Several callers on the hung stream: the first to time out cancels it,
  // which fails the others UNAVAILABLE (retried); all give up in time.
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      const absl::Time start = absl::Now();
      auto g = client->Get("k");
      const absl::Duration took = absl::Now() - start;
      EXPECT_TRUE(g.status().code() == absl::StatusCode::kDeadlineExceeded ||
                  g.status().code() == absl::StatusCode::kUnavailable)
          << g.status();
      EXPECT_GE(took, absl::Milliseconds(345));
      EXPECT_LT(took, absl::Milliseconds(900));
    });
  }
  for (auto& t : threads) t.join();
  const int streams = cluster.batch_stats(0).streams;
  EXPECT_GE(streams, 3);

  cluster.Hang(0, false);  // the dead streams stay dead
  start = absl::Now();
  g = client->Get("k");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_LT(absl::Now() - start, o.attempt_timeout) << "queued behind a dead stream";
  EXPECT_EQ(g->value, "v");
  EXPECT_GT(cluster.batch_stats(0).streams, streams);
}

// One slow op timing out on a stream that keeps answering others does not
// cost the others their stream.
TEST(BatchTransportTest, SlowOpTimingOutLeavesALiveStreamAlone) {
  FakeCluster cluster(1);
  ClientOptions o = FastOptions(cluster.addresses());
  o.attempt_timeout = absl::Milliseconds(100);
  o.total_timeout = absl::Milliseconds(300);
  auto client = MakeClient(o);
  ASSERT_TRUE(client->Put("k", "v").ok());
  cluster.Block("slow");
  std::atomic<bool> done{false};
  std::thread slow([&] {
    auto v = client->Put("slow", "1");
    EXPECT_EQ(v.status().code(), absl::StatusCode::kDeadlineExceeded) << v.status();
    EXPECT_THAT(v.status().message(), HasSubstr("may or may not have been applied"));
    done = true;
  });
  int gets = 0;
  while (!done.load()) {
    auto g = client->Get("k");
    ASSERT_TRUE(g.ok()) << g.status();
    ++gets;
  }
  slow.join();
  cluster.Release("slow");
  EXPECT_GT(gets, 10);
  EXPECT_EQ(cluster.batch_stats(0).streams, 1);
}

// Ops queued together are split into messages the server accepts (gRPC's
// default 4 MiB receive limit here): 1 MiB values from many threads at once
// all go through, each on its first attempt.
TEST(BatchTransportTest, LargeOpsAreSplitAcrossMessages) {
  FakeCluster cluster(1);
  // 36 MiB through one stream: on a loaded machine an attempt may take more
  // than FastOptions' 500 ms, and a retry is not what this test is about.
  ClientOptions o = FastOptions(cluster.addresses());
  o.attempt_timeout = absl::Seconds(5);
  o.total_timeout = absl::Seconds(20);
  auto client = MakeClient(o);
  constexpr int kThreads = 12;
  constexpr int kPuts = 3;
  const std::string value(1 << 20, 'x');
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPuts; ++i) {
        auto v = client->Put("big" + std::to_string(t) + "/" + std::to_string(i), value);
        EXPECT_TRUE(v.ok()) << v.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(cluster.calls("Put").size(), static_cast<size_t>(kThreads * kPuts));
  EXPECT_EQ(cluster.batch_stats(0).streams, 1);
}

// A Client is destroyed promptly with streams in every state: idle, and
// dead on a hung node.
TEST(BatchTransportTest, DestroyedPromptlyWithStreamsOpen) {
  FakeCluster cluster(2);
  ClientOptions o = FastOptions(cluster.addresses());
  o.attempt_timeout = absl::Milliseconds(50);
  o.total_timeout = absl::Milliseconds(120);
  auto client = MakeClient(o);
  ASSERT_TRUE(client->Get("k", /*serializable=*/true).status().code() ==
              absl::StatusCode::kNotFound);
  cluster.Hang(1, true);
  cluster.SetLeader(1);
  EXPECT_FALSE(client->Put("k", "v").ok());
  const absl::Time start = absl::Now();
  client.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

}  // namespace
}  // namespace raftkv::client
