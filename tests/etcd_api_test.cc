// raftkv's etcd API where raftkv goes beyond etcd on purpose, or where only
// raftkv's side can be seen (etcd-behaviour tests, run against real etcd
// first, are in etcdctl_test and clientv3_test): every member takes writes
// (followers forward them to the leader), and a Range's memory is bounded
// (--max_range_bytes) where etcd's would grow without bound; and automatic
// compaction (--auto_compaction_*), which needs server flags per target.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

class EtcdApiTest : public ::testing::Test {
 protected:
  void StartCluster(std::vector<std::string> extra_flags = {}) {
    ClusterOptions o;
    o.size = 3;
    o.extra_flags = std::move(extra_flags);
    cluster_ = std::make_unique<Cluster>(o);
    ASSERT_TRUE(cluster_->StartAll().ok());
    auto leader = cluster_->WaitForLeader();
    ASSERT_TRUE(leader.ok()) << leader.status();
    leader_ = *leader;
  }
  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) cluster_->PrintLogs();
  }
  std::unique_ptr<etcdserverpb::KV::Stub> Kv(int id) {
    return etcdserverpb::KV::NewStub(
        grpc::CreateChannel(cluster_->address(id), grpc::InsecureChannelCredentials()));
  }
  static void Deadline(grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  }

  std::unique_ptr<Cluster> cluster_;
  int leader_ = 0;
};

TEST_F(EtcdApiTest, EveryMemberTakesWritesAndAnswersAsItself) {
  StartCluster();
  int64_t last_revision = 0;
  for (int round = 0; round < 2; ++round) {
    for (int id = 1; id <= 3; ++id) {
      auto kv = Kv(id);
      grpc::ClientContext ctx;
      Deadline(&ctx);
      etcdserverpb::PutRequest put;
      put.set_key(absl::StrCat("k", id));
      put.set_value(absl::StrCat("v", round));
      put.set_prev_kv(true);
      etcdserverpb::PutResponse resp;
      grpc::Status s = kv->Put(&ctx, put, &resp);
      ASSERT_TRUE(s.ok()) << "member " << id << " (leader " << leader_ << "): "
                          << s.error_message();
      // The header is the answering member's; the revision the leader's apply.
      EXPECT_EQ(resp.header().member_id(), static_cast<uint64_t>(id));
      EXPECT_NE(resp.header().cluster_id(), 0u);
      EXPECT_GT(resp.header().raft_term(), 0u);
      EXPECT_EQ(resp.header().revision(), last_revision == 0 ? 2 : last_revision + 1);
      last_revision = resp.header().revision();
      EXPECT_EQ(resp.has_prev_kv(), round == 1);
      // A linearizable read on another member sees the write at once.
      grpc::ClientContext rctx;
      Deadline(&rctx);
      etcdserverpb::RangeRequest get;
      get.set_key(put.key());
      etcdserverpb::RangeResponse got;
      ASSERT_TRUE(Kv(id % 3 + 1)->Range(&rctx, get, &got).ok());
      ASSERT_EQ(got.kvs_size(), 1);
      EXPECT_EQ(got.kvs(0).value(), put.value());
      EXPECT_EQ(got.kvs(0).mod_revision(), last_revision);
      EXPECT_GE(got.header().revision(), last_revision);
    }
  }
}

TEST_F(EtcdApiTest, ARangeLargerThanMaxRangeBytesFailsAndALimitServesIt) {
  StartCluster({"--max_range_bytes=4096"});
  auto kv = Kv(leader_);
  const std::string value(100, 'x');
  for (int i = 0; i < 60; ++i) {  // 60 keys of ~104 bytes: ~6 KB in all
    grpc::ClientContext ctx;
    Deadline(&ctx);
    etcdserverpb::PutRequest put;
    put.set_key(absl::StrCat("r", 100 + i));
    put.set_value(value);
    etcdserverpb::PutResponse resp;
    ASSERT_TRUE(kv->Put(&ctx, put, &resp).ok());
  }
  etcdserverpb::RangeRequest all;
  all.set_key("r");
  all.set_range_end("s");
  for (bool serializable : {false, true}) {
    all.set_serializable(serializable);
    grpc::ClientContext ctx;
    Deadline(&ctx);
    etcdserverpb::RangeResponse resp;
    grpc::Status s = kv->Range(&ctx, all, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_NE(s.error_message().find("--max_range_bytes"), std::string::npos) << s.error_message();
  }
  // Pages within the bound, and counts, are served.
  all.set_serializable(false);
  all.set_limit(30);
  grpc::ClientContext ctx;
  Deadline(&ctx);
  etcdserverpb::RangeResponse page;
  ASSERT_TRUE(kv->Range(&ctx, all, &page).ok());
  EXPECT_EQ(page.kvs_size(), 30);
  EXPECT_EQ(page.count(), 60);
  EXPECT_TRUE(page.more());
  // So is the same range in a read-only txn's page, and refused whole.
  etcdserverpb::TxnRequest txn;
  *txn.add_success()->mutable_request_range() = all;
  all.set_limit(0);
  *txn.add_success()->mutable_request_range() = all;
  grpc::ClientContext tctx;
  Deadline(&tctx);
  etcdserverpb::TxnResponse tresp;
  EXPECT_EQ(kv->Txn(&tctx, txn, &tresp).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

// --auto_compaction_retention (etcd's periodic mode): the leader compacts
// the history older than the period through the log, on every member.
TEST_F(EtcdApiTest, PeriodicAutoCompactionDropsHistoryOlderThanThePeriod) {
  StartCluster({"--auto_compaction_mode=periodic", "--auto_compaction_retention=2s"});
  auto kv = Kv(leader_);
  int64_t first = 0;
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    etcdserverpb::PutRequest put;
    put.set_key("ac");
    put.set_value(absl::StrCat("v", i));
    etcdserverpb::PutResponse resp;
    ASSERT_TRUE(kv->Put(&ctx, put, &resp).ok());
    if (first == 0) first = resp.header().revision();
  }
  auto range_at = [&](int id, int64_t revision) {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    etcdserverpb::RangeRequest get;
    get.set_key("ac");
    get.set_revision(revision);
    get.set_serializable(true);  // this member's own history
    etcdserverpb::RangeResponse resp;
    return Kv(id)->Range(&ctx, get, &resp);
  };
  ASSERT_TRUE(range_at(leader_, first).ok());
  for (int id = 1; id <= 3; ++id) {
    EXPECT_TRUE(Cluster::WaitFor(
        [&] {
          grpc::Status s = range_at(id, first);
          return s.error_code() == grpc::StatusCode::OUT_OF_RANGE &&
                 s.error_message() == "etcdserver: mvcc: required revision has been compacted";
        },
        absl::Seconds(20)))
        << "member " << id << " still has revision " << first;
  }
  grpc::ClientContext ctx;
  Deadline(&ctx);
  etcdserverpb::RangeRequest get;
  get.set_key("ac");
  etcdserverpb::RangeResponse latest;
  ASSERT_TRUE(kv->Range(&ctx, get, &latest).ok());
  ASSERT_EQ(latest.kvs_size(), 1);
  EXPECT_EQ(latest.kvs(0).value(), "v2");
}

}  // namespace
}  // namespace raftkv::testing
