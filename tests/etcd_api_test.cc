// raftkv's etcd API where raftkv goes beyond etcd on purpose, or where only
// raftkv's side can be seen (etcd-behaviour tests, run against real etcd
// first, are in etcdctl_test and clientv3_test): every member takes writes
// (followers forward them to the leader), and a Range's memory is bounded
// (--max_range_bytes) where etcd's would grow without bound; and automatic
// compaction (--auto_compaction_*), which needs server flags per target; and
// etcd's auth state across restarts and snapshots.
#include <memory>
#include <string>

#include "absl/strings/match.h"
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


// etcd's auth state is replicated state: it survives a restart of every
// member and reaches a member that was down through a snapshot (the leader
// compacted its log meanwhile); the native API is closed while auth is on.
TEST_F(EtcdApiTest, AuthStateSurvivesRestartsAndTravelsInSnapshots) {
  StartCluster({"--snapshot_entries=20", "--snapshot_keep_entries=5"});
  const int down = leader_ % 3 + 1;
  cluster_->Kill(down);
  auto auth = [&](int id) {
    return etcdserverpb::Auth::NewStub(
        grpc::CreateChannel(cluster_->address(id), grpc::InsecureChannelCredentials()));
  };
  const int up = down % 3 + 1;  // a running member
  auto call = [&](int id, auto method, const auto& req, auto* resp,
                  const std::string& token = "") {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    if (!token.empty()) ctx.AddMetadata("token", token);
    return (auth(id).get()->*method)(&ctx, req, resp);
  };
  using etcdserverpb::Auth;
  {
    etcdserverpb::AuthUserAddRequest add;
    etcdserverpb::AuthUserAddResponse r;
    add.set_name("root");
    add.set_password("rpw");
    ASSERT_TRUE(call(up, &Auth::Stub::UserAdd, add, &r).ok());
    add.set_name("u");
    add.set_password("upw");
    ASSERT_TRUE(call(up, &Auth::Stub::UserAdd, add, &r).ok());
    etcdserverpb::AuthUserGrantRoleRequest grant;
    etcdserverpb::AuthUserGrantRoleResponse gr;
    grant.set_user("root");
    grant.set_role("root");
    ASSERT_TRUE(call(up, &Auth::Stub::UserGrantRole, grant, &gr).ok());
    etcdserverpb::AuthRoleAddRequest role;
    etcdserverpb::AuthRoleAddResponse rr;
    role.set_name("r");
    ASSERT_TRUE(call(up, &Auth::Stub::RoleAdd, role, &rr).ok());
    etcdserverpb::AuthRoleGrantPermissionRequest perm;
    etcdserverpb::AuthRoleGrantPermissionResponse pr;
    perm.set_name("r");
    perm.mutable_perm()->set_permtype(authpb::Permission::READWRITE);
    perm.mutable_perm()->set_key("a/");
    perm.mutable_perm()->set_range_end("a0");
    ASSERT_TRUE(call(up, &Auth::Stub::RoleGrantPermission, perm, &pr).ok());
    grant.set_user("u");
    grant.set_role("r");
    ASSERT_TRUE(call(up, &Auth::Stub::UserGrantRole, grant, &gr).ok());
    etcdserverpb::AuthEnableRequest enable;
    etcdserverpb::AuthEnableResponse er;
    grpc::Status s = call(up, &Auth::Stub::AuthEnable, enable, &er);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  auto token = [&](int id, const std::string& name, const std::string& pw) -> std::string {
    etcdserverpb::AuthenticateRequest req;
    etcdserverpb::AuthenticateResponse resp;
    req.set_name(name);
    req.set_password(pw);
    grpc::Status s = call(id, &Auth::Stub::Authenticate, req, &resp);
    EXPECT_TRUE(s.ok()) << "member " << id << ": " << s.error_message();
    return resp.token();
  };
  auto put = [&](int id, const std::string& key, const std::string& tok) {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    if (!tok.empty()) ctx.AddMetadata("token", tok);
    etcdserverpb::PutRequest req;
    req.set_key(key);
    req.set_value("v");
    etcdserverpb::PutResponse resp;
    return Kv(id)->Put(&ctx, req, &resp);
  };
  // Enough writes for the members to compact their logs past the auth changes.
  const std::string root_token = token(up, "root", "rpw");
  for (int i = 0; i < 60; ++i) {
    grpc::Status s = put(up, absl::StrCat("k", i), root_token);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  ASSERT_TRUE(cluster_->Start(down).ok());
  // The member that was down learns the auth state from a snapshot.
  std::string u_token;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    etcdserverpb::AuthenticateRequest req;
    etcdserverpb::AuthenticateResponse resp;
    req.set_name("u");
    req.set_password("upw");
    if (call(down, &Auth::Stub::Authenticate, req, &resp).ok()) {
      u_token = resp.token();
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_FALSE(u_token.empty()) << "member " << down << " never took u's password";
  EXPECT_TRUE(absl::StrContains(cluster_->LogTail(down), "installed the snapshot"))
      << "member " << down << " should have caught up by a snapshot";
  EXPECT_TRUE(put(down, "a/1", u_token).ok());
  grpc::Status denied = put(down, "b", u_token);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED) << denied.error_message();
  EXPECT_EQ(denied.error_message(), "etcdserver: permission denied");

  // Every member restarted: still enabled, the same users and rights.
  cluster_->KillAll();
  ASSERT_TRUE(cluster_->StartAll().ok());
  auto leader = cluster_->WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  for (int id = 1; id <= 3; ++id) {
    grpc::Status anonymous = put(id, "a/2", "");
    EXPECT_EQ(anonymous.error_message(), "etcdserver: user name is empty") << "member " << id;
    const std::string t = token(id, "u", "upw");
    EXPECT_TRUE(put(id, "a/2", t).ok()) << "member " << id;
    EXPECT_EQ(put(id, "c", t).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  // raftkv's own API has no credentials: closed while auth is on.
  grpc::ClientContext ctx;
  Deadline(&ctx);
  kvpb::PutRequest native;
  native.set_key("a/3");
  native.set_value("v");
  kvpb::PutResponse nr;
  grpc::Status ns = cluster_->kv(*leader)->Put(&ctx, native, &nr);
  EXPECT_EQ(ns.error_code(), grpc::StatusCode::PERMISSION_DENIED) << ns.error_message();
  grpc::ClientContext gctx;
  Deadline(&gctx);
  kvpb::GetRequest get;
  get.set_key("a/1");
  kvpb::GetResponse gr;
  grpc::Status gs = cluster_->kv(*leader)->Get(&gctx, get, &gr);
  EXPECT_EQ(gs.error_code(), grpc::StatusCode::PERMISSION_DENIED) << gs.error_message();
  // Admin: Status for anyone; changes and backups for root only.
  EXPECT_TRUE(cluster_->Status(*leader).ok());
  grpc::ClientContext actx;
  Deadline(&actx);
  adminpb::TransferLeaderRequest transfer;
  transfer.set_node_id(*leader % 3 + 1);
  adminpb::TransferLeaderResponse tr;
  grpc::Status as = cluster_->admin(*leader)->TransferLeader(&actx, transfer, &tr);
  EXPECT_EQ(as.error_message(), "etcdserver: user name is empty");
  grpc::ClientContext rctx;
  Deadline(&rctx);
  rctx.AddMetadata("token", token(*leader, "u", "upw"));
  as = cluster_->admin(*leader)->TransferLeader(&rctx, transfer, &tr);
  EXPECT_EQ(as.error_message(), "etcdserver: permission denied");
  grpc::ClientContext root_ctx;
  Deadline(&root_ctx);
  root_ctx.AddMetadata("token", token(*leader, "root", "rpw"));
  as = cluster_->admin(*leader)->TransferLeader(&root_ctx, transfer, &tr);
  EXPECT_TRUE(as.ok()) << as.error_message();
}

}  // namespace
}  // namespace raftkv::testing
