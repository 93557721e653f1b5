// KV.Batch on a real cluster: every op of a stream is answered once, by
// id, with what its unary call would answer; bad ops fail alone; a follower
// redirects writes with the leader's address; retries on a stream apply
// once; flow control holds past the server's limit of unanswered ops; a
// cancelled stream leaves the server serving.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

using ::testing::HasSubstr;
using Stream = grpc::ClientReaderWriter<kvpb::BatchRequest, kvpb::BatchResponse>;

// No test here changes leaders: production ticks (100 ms, elections after
// 1-2 s) keep a loaded machine's slow fsyncs of megabyte values from
// costing the leader its quorum (CheckQuorum) mid-test.
ClusterOptions StableLeader() {
  ClusterOptions o;
  o.tick_ms = 100;
  return o;
}

class BatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(c_.StartAll().ok());
    auto leader = c_.WaitForLeader();
    ASSERT_TRUE(leader.ok()) << leader.status();
    leader_ = *leader;
    follower_ = leader_ % c_.size() + 1;
  }

  std::unique_ptr<Stream> Open(int node, grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return c_.kv(node)->Batch(ctx);
  }

  // Reads answers until `n` distinct ids have come; fails on a duplicate.
  static std::map<uint64_t, kvpb::ResponseOp> ReadAnswers(Stream* s, size_t n) {
    std::map<uint64_t, kvpb::ResponseOp> got;
    kvpb::BatchResponse resp;
    while (got.size() < n && s->Read(&resp)) {
      for (const kvpb::ResponseOp& op : resp.ops()) {
        EXPECT_TRUE(got.emplace(op.id(), op).second) << "op " << op.id() << " answered twice";
      }
    }
    EXPECT_EQ(got.size(), n) << "the stream ended before every op was answered";
    return got;
  }

  static kvpb::RequestOp Put(uint64_t id, const std::string& key, const std::string& value,
                             uint64_t client_id = 0, uint64_t seq = 0) {
    kvpb::RequestOp op;
    op.set_id(id);
    op.mutable_put()->set_key(key);
    op.mutable_put()->set_value(value);
    if (client_id != 0) {
      op.mutable_put()->mutable_header()->set_client_id(client_id);
      op.mutable_put()->mutable_header()->set_seq(seq);
      op.mutable_put()->mutable_header()->set_first_incomplete(seq);
    }
    return op;
  }

  static kvpb::RequestOp Get(uint64_t id, const std::string& key, bool serializable = false) {
    kvpb::RequestOp op;
    op.set_id(id);
    op.mutable_get()->set_key(key);
    op.mutable_get()->set_serializable(serializable);
    return op;
  }

  Cluster c_{StableLeader()};
  int leader_ = 0;
  int follower_ = 0;
};

TEST_F(BatchTest, EveryKindOfOpIsAnsweredOnceByIdAndBadOpsFailAlone) {
  grpc::ClientContext ctx;
  auto s = Open(leader_, &ctx);
  kvpb::BatchRequest req;
  *req.add_ops() = Put(1, "k1", "v1");
  *req.add_ops() = Put(2, "k2", "v2", /*client_id=*/77, /*seq=*/1);
  kvpb::RequestOp* cas = req.add_ops();
  cas->set_id(3);
  cas->mutable_cas()->set_key("k3");
  cas->mutable_cas()->set_expected_version(0);  // absent
  cas->mutable_cas()->set_new_value("v3");
  kvpb::RequestOp* del = req.add_ops();
  del->set_id(4);
  del->mutable_delete_()->set_key("no-such-key");
  *req.add_ops() = Put(5, "", "empty key");  // invalid
  req.add_ops()->set_id(6);                  // no op at all
  ASSERT_TRUE(s->Write(req));
  auto got = ReadAnswers(s.get(), 6);
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got[1].code(), 0) << got[1].message();
  EXPECT_GT(got[1].put().version(), 0u);
  EXPECT_EQ(got[2].code(), 0) << got[2].message();
  EXPECT_EQ(got[3].code(), 0) << got[3].message();
  EXPECT_TRUE(got[3].cas().succeeded());
  EXPECT_EQ(got[4].code(), 0) << got[4].message();
  EXPECT_FALSE(got[4].delete_().deleted());
  EXPECT_EQ(got[5].code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(got[5].message(), HasSubstr("key must not be empty"));
  EXPECT_FALSE(got[5].has_put());
  EXPECT_EQ(got[6].code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(got[1].put().header().node_id(), static_cast<uint64_t>(leader_));

  // The writes are visible to the reads of a later message on the same stream.
  req.Clear();
  *req.add_ops() = Get(10, "k1");
  *req.add_ops() = Get(11, "k3", /*serializable=*/true);
  *req.add_ops() = Get(12, "no-such-key");
  kvpb::RequestOp* scan = req.add_ops();
  scan->set_id(13);
  scan->mutable_scan()->set_prefix("k");
  ASSERT_TRUE(s->Write(req));
  got = ReadAnswers(s.get(), 4);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_TRUE(got[10].get().found());
  EXPECT_EQ(got[10].get().kv().value(), "v1");
  EXPECT_TRUE(got[11].get().found());
  EXPECT_EQ(got[11].get().kv().value(), "v3");
  EXPECT_EQ(got[12].code(), 0);
  EXPECT_FALSE(got[12].get().found());
  ASSERT_EQ(got[13].scan().kvs_size(), 3);
  EXPECT_EQ(got[13].scan().kvs(1).key(), "k2");

  // Closing our side ends the stream cleanly once everything is answered.
  s->WritesDone();
  grpc::Status end = s->Finish();
  EXPECT_TRUE(end.ok()) << end.error_code() << ": " << end.error_message();
}

TEST_F(BatchTest, AFollowerAnswersWritesNotLeaderWithTheLeadersAddress) {
  grpc::ClientContext ctx;
  auto s = Open(follower_, &ctx);
  kvpb::BatchRequest req;
  *req.add_ops() = Put(1, "k", "v");
  *req.add_ops() = Get(2, "k", /*serializable=*/true);  // served locally
  ASSERT_TRUE(s->Write(req));
  auto got = ReadAnswers(s.get(), 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(got[1].message(), HasSubstr("not leader"));
  EXPECT_EQ(got[1].leader_id(), static_cast<uint64_t>(leader_));
  EXPECT_EQ(got[1].leader_addr(), c_.address(leader_));
  EXPECT_EQ(got[2].code(), 0) << got[2].message();
  EXPECT_TRUE(got[2].get().header().serializable());
  s->WritesDone();
  EXPECT_TRUE(s->Finish().ok());
}

TEST_F(BatchTest, ARetriedWriteIsAppliedOnceWithinAndAcrossMessages) {
  grpc::ClientContext ctx;
  auto s = Open(leader_, &ctx);
  kvpb::BatchRequest req;
  *req.add_ops() = Put(1, "once", "a", /*client_id=*/991, /*seq=*/1);
  *req.add_ops() = Put(2, "once", "a", 991, 1);  // the same write again
  ASSERT_TRUE(s->Write(req));
  auto got = ReadAnswers(s.get(), 2);
  ASSERT_EQ(got.size(), 2u);
  ASSERT_EQ(got[1].code(), 0) << got[1].message();
  ASSERT_EQ(got[2].code(), 0) << got[2].message();
  const uint64_t version = got[1].put().version();
  EXPECT_EQ(got[2].put().version(), version);
  req.Clear();
  *req.add_ops() = Put(3, "once", "a", 991, 1);
  *req.add_ops() = Get(4, "once");
  ASSERT_TRUE(s->Write(req));
  got = ReadAnswers(s.get(), 2);
  EXPECT_EQ(got[3].put().version(), version);
  EXPECT_EQ(got[4].get().kv().version(), version) << "the retry was applied again";
  s->WritesDone();
  EXPECT_TRUE(s->Finish().ok());
}

// More unanswered ops than the server takes at once (1024): it stops
// reading, then resumes, and every op is answered.
TEST_F(BatchTest, FlowControlHoldsPastTheServersLimit) {
  constexpr int kOps = 6000;
  grpc::ClientContext ctx;
  auto s = Open(leader_, &ctx);
  std::map<uint64_t, kvpb::ResponseOp> got;
  std::thread reader([&] { got = ReadAnswers(s.get(), kOps); });
  for (int base = 0; base < kOps; base += 500) {
    kvpb::BatchRequest req;
    for (int i = base; i < base + 500; ++i) {
      *req.add_ops() = Put(i + 1, absl::StrCat("flow-", i), "v");
    }
    ASSERT_TRUE(s->Write(req));
  }
  s->WritesDone();
  reader.join();
  ASSERT_EQ(got.size(), static_cast<size_t>(kOps));
  for (const auto& [id, op] : got) {
    ASSERT_EQ(op.code(), 0) << "op " << id << ": " << op.message();
  }
  EXPECT_TRUE(s->Finish().ok());
}

// Answers that finish together share a message only up to ~1 MiB, so a
// client with gRPC's default 4 MiB receive limit gets big values too.
TEST_F(BatchTest, BigAnswersAreSplitAcrossMessages) {
  constexpr int kKeys = 8;
  const std::string big(900 << 10, 'x');
  grpc::ClientContext ctx;
  auto s = Open(leader_, &ctx);
  kvpb::BatchRequest req;
  for (int i = 0; i < kKeys; ++i) *req.add_ops() = Put(i + 1, absl::StrCat("big-", i), big);
  ASSERT_TRUE(s->Write(req));
  auto got = ReadAnswers(s.get(), kKeys);
  for (const auto& [id, op] : got) ASSERT_EQ(op.code(), 0) << op.message();
  req.Clear();
  for (int i = 0; i < kKeys; ++i) *req.add_ops() = Get(100 + i, absl::StrCat("big-", i));
  ASSERT_TRUE(s->Write(req));
  got = ReadAnswers(s.get(), kKeys);
  ASSERT_EQ(got.size(), static_cast<size_t>(kKeys));
  for (const auto& [id, op] : got) {
    ASSERT_EQ(op.code(), 0) << op.message();
    EXPECT_EQ(op.get().kv().value().size(), big.size());
  }
  s->WritesDone();
  grpc::Status end = s->Finish();
  EXPECT_TRUE(end.ok()) << end.error_code() << ": " << end.error_message();
}

// Resident memory of `pid` in MiB (-1 if unreadable).
long RssMiB(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(f, line)) {
    long kb = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %ld kB", &kb) == 1) return kb / 1024;
  }
  return -1;
}

// A client that sends but never reads: the server stops reading the stream
// once its backlog (ops unanswered plus answers unsent) reaches its limit,
// so it does not hold all 4000 answers of 32 KiB (125 MiB) in memory.
TEST_F(BatchTest, AClientThatDoesNotReadCannotGrowTheServersMemory) {
  constexpr int kGets = 4000;
  grpc::ClientContext ctx;
  auto s = Open(leader_, &ctx);
  kvpb::BatchRequest req;
  *req.add_ops() = Put(1, "value", std::string(32 << 10, 'x'));
  ASSERT_TRUE(s->Write(req));
  auto got = ReadAnswers(s.get(), 1);
  ASSERT_EQ(got[1].code(), 0) << got[1].message();
  const long before = RssMiB(c_.pid(leader_));
  ASSERT_GT(before, 0);

  std::thread writer([&] {
    for (int i = 0; i < kGets; i += 100) {
      kvpb::BatchRequest r;
      for (int j = i; j < i + 100; ++j) *r.add_ops() = Get(100 + j, "value");
      if (!s->Write(r)) return;
    }
  });
  // Watch the leader's memory for 3 s: long enough to serve every get had
  // it kept reading (it serves thousands per second).
  long peak = before;
  const absl::Time end = absl::Now() + absl::Seconds(3);
  while (absl::Now() < end) {
    peak = std::max(peak, RssMiB(c_.pid(leader_)));
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_LT(peak - before, 80) << "MiB of growth on the leader";
  ctx.TryCancel();
  writer.join();
  s->Finish();
}

TEST_F(BatchTest, ACancelledStreamLeavesTheServerServing) {
  {
    grpc::ClientContext ctx;
    auto s = Open(leader_, &ctx);
    kvpb::BatchRequest req;
    for (int i = 0; i < 2000; ++i) *req.add_ops() = Put(i + 1, absl::StrCat("c-", i), "v");
    ASSERT_TRUE(s->Write(req));
    ctx.TryCancel();
    EXPECT_FALSE(s->Finish().ok());
  }
  grpc::ClientContext ctx;
  auto s = Open(leader_, &ctx);
  kvpb::BatchRequest req;
  *req.add_ops() = Put(1, "after", "cancel");
  ASSERT_TRUE(s->Write(req));
  auto got = ReadAnswers(s.get(), 1);
  EXPECT_EQ(got[1].code(), 0) << got[1].message();
  s->WritesDone();
  EXPECT_TRUE(s->Finish().ok());
}

}  // namespace
}  // namespace raftkv::testing
