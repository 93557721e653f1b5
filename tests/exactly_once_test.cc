// Exactly-once writes (proto/kv.proto WriteHeader): a write resent with the
// same client id and sequence number after its first attempt committed is
// answered with the first result and applied only once, even when another
// client wrote the same key in between or the leader changed.
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

using ::testing::HasSubstr;

struct Session {
  uint64_t client_id = RandomId();
  void Fill(kvpb::WriteHeader* h, uint64_t seq, uint64_t first_incomplete = 0) const {
    h->set_client_id(client_id);
    h->set_seq(seq);
    h->set_first_incomplete(first_incomplete == 0 ? seq : first_incomplete);
  }
};

class ExactlyOnceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(c_.StartAll().ok());
    auto leader = c_.WaitForLeader();
    ASSERT_TRUE(leader.ok()) << leader.status();
    leader_ = *leader;
  }

  // Runs `call(stub, ctx)` on the leader; if leadership moved (an election
  // on a loaded machine), on the new one, with the same request: a write
  // keeps its client id and sequence, so this is the client's own retry.
  template <typename Call>
  grpc::Status OnLeader(Call call) {
    grpc::Status s;
    for (int attempt = 0; attempt < 20; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      s = call(c_.kv(leader_), &ctx);
      const bool moved = (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
                          absl::StrContains(s.error_message(), "not leader")) ||
                         s.error_code() == grpc::StatusCode::UNAVAILABLE;
      if (!moved) break;
      auto leader = c_.WaitForLeader();
      if (leader.ok()) leader_ = *leader;
    }
    return s;
  }

  // Put on the leader (or one attempt on node `node`).
  kvpb::PutResponse Put(const kvpb::PutRequest& req, int node = 0) {
    kvpb::PutResponse resp;
    grpc::Status s;
    if (node != 0) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      s = c_.kv(node)->Put(&ctx, req, &resp);
    } else {
      s = OnLeader([&](kvpb::KV::Stub* kv, grpc::ClientContext* ctx) {
        return kv->Put(ctx, req, &resp);
      });
    }
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  kvpb::GetResponse Get(const std::string& key) {
    kvpb::GetRequest req;
    req.set_key(key);
    kvpb::GetResponse resp;
    grpc::Status s = OnLeader([&](kvpb::KV::Stub* kv, grpc::ClientContext* ctx) {
      return kv->Get(ctx, req, &resp);
    });
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  static kvpb::PutRequest MakePut(const Session& who, uint64_t seq, const std::string& key,
                                  const std::string& value) {
    kvpb::PutRequest req;
    who.Fill(req.mutable_header(), seq);
    req.set_key(key);
    req.set_value(value);
    return req;
  }

  Cluster c_;
  int leader_ = 0;
};

TEST_F(ExactlyOnceTest, SamePutSentTwiceAppliesOnce) {
  Session a;
  const kvpb::PutRequest req = MakePut(a, 1, "k", "a1");
  const kvpb::PutResponse first = Put(req);
  ASSERT_GT(first.version(), 0u);
  const kvpb::PutResponse second = Put(req);
  EXPECT_EQ(second.version(), first.version()) << "the retry was applied again";
  const kvpb::GetResponse got = Get("k");
  ASSERT_TRUE(got.found());
  EXPECT_EQ(got.kv().value(), "a1");
  EXPECT_EQ(got.kv().version(), first.version());
}

TEST_F(ExactlyOnceTest, RetryAfterAnotherClientsWriteDoesNotOverwriteIt) {
  Session a, b;
  const kvpb::PutRequest a1 = MakePut(a, 1, "k", "a1");
  const kvpb::PutResponse first = Put(a1);
  // Another client writes the same key between A's attempt and its retry.
  const kvpb::PutResponse b1 = Put(MakePut(b, 1, "k", "b1"));
  ASSERT_GT(b1.version(), first.version());
  // A's retry gets its first answer back...
  const kvpb::PutResponse retry = Put(a1);
  EXPECT_EQ(retry.version(), first.version());
  // ...and B's value stands.
  const kvpb::GetResponse got = Get("k");
  ASSERT_TRUE(got.found());
  EXPECT_EQ(got.kv().value(), "b1");
  EXPECT_EQ(got.kv().version(), b1.version());

  // A's next write is a new one and applies.
  const kvpb::PutResponse a2 = Put(MakePut(a, 2, "k", "a2"));
  EXPECT_GT(a2.version(), b1.version());
  EXPECT_EQ(Get("k").kv().value(), "a2");
}

TEST_F(ExactlyOnceTest, RetryOnANewLeaderGetsTheFirstAnswer) {
  Session a;
  const kvpb::PutRequest req = MakePut(a, 1, "k", "a1");
  const kvpb::PutResponse first = Put(req);
  Session b;
  const kvpb::PutResponse b1 = Put(MakePut(b, 1, "k", "b1"));

  // The session table is replicated: the new leader knows the answer.
  const int old_leader = leader_;
  c_.Kill(old_leader);
  auto leader = c_.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  leader_ = *leader;
  ASSERT_NE(leader_, old_leader);
  const kvpb::PutResponse retry = Put(req);
  EXPECT_EQ(retry.version(), first.version());
  const kvpb::GetResponse got = Get("k");
  EXPECT_EQ(got.kv().value(), "b1");
  EXPECT_EQ(got.kv().version(), b1.version());

  // So does the old leader after a restart (sessions are durable).
  ASSERT_TRUE(c_.Start(old_leader).ok());
  ASSERT_TRUE(c_.WaitForConvergence().ok());
  c_.Kill(leader_);
  leader = c_.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  leader_ = *leader;
  EXPECT_EQ(Put(req).version(), first.version());
  EXPECT_EQ(Get("k").kv().value(), "b1");
}

TEST_F(ExactlyOnceTest, CompareAndSwapAndDeleteRetriesAnswerAsBefore) {
  Session a;
  kvpb::CasRequest cas;
  a.Fill(cas.mutable_header(), 1);
  cas.set_key("lock");
  cas.set_expected_version(0);  // create only if absent
  cas.set_new_value("owner-a");
  kvpb::CasResponse r1, r2;
  ASSERT_TRUE(OnLeader([&](kvpb::KV::Stub* kv, grpc::ClientContext* ctx) {
                return kv->CompareAndSwap(ctx, cas, &r1);
              }).ok());
  ASSERT_TRUE(r1.succeeded());
  ASSERT_TRUE(OnLeader([&](kvpb::KV::Stub* kv, grpc::ClientContext* ctx) {
                return kv->CompareAndSwap(ctx, cas, &r2);
              }).ok());
  // Applied again, the comparison would fail (the key exists now).
  EXPECT_TRUE(r2.succeeded()) << "the retried CAS was re-evaluated";
  EXPECT_EQ(r2.version(), r1.version());

  kvpb::DeleteRequest del;
  a.Fill(del.mutable_header(), 2);
  del.set_key("lock");
  kvpb::DeleteResponse d1, d2;
  ASSERT_TRUE(OnLeader([&](kvpb::KV::Stub* kv, grpc::ClientContext* ctx) {
                return kv->Delete(ctx, del, &d1);
              }).ok());
  ASSERT_TRUE(OnLeader([&](kvpb::KV::Stub* kv, grpc::ClientContext* ctx) {
                return kv->Delete(ctx, del, &d2);
              }).ok());
  EXPECT_TRUE(d1.deleted());
  EXPECT_TRUE(d2.deleted()) << "the retried delete was re-applied";
  EXPECT_FALSE(Get("lock").found());
}

TEST_F(ExactlyOnceTest, RetryOfAForgottenWriteIsRefusedNotReapplied) {
  Session a, b;
  const kvpb::PutRequest a1 = MakePut(a, 1, "k", "a1");
  Put(a1);
  // A says it no longer waits for anything below 2: result 1 may be dropped.
  kvpb::PutRequest a2 = MakePut(a, 2, "other", "x");
  Put(a2);
  const kvpb::PutResponse b1 = Put(MakePut(b, 1, "k", "b1"));

  kvpb::PutResponse resp;
  grpc::Status s = OnLeader(
      [&](kvpb::KV::Stub* kv, grpc::ClientContext* ctx) { return kv->Put(ctx, a1, &resp); });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("already answered"));
  const kvpb::GetResponse got = Get("k");
  EXPECT_EQ(got.kv().value(), "b1");
  EXPECT_EQ(got.kv().version(), b1.version());
}

}  // namespace
}  // namespace raftkv::testing
