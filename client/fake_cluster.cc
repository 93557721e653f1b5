#include "client/fake_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
#include "proto/kv.grpc.pb.h"

namespace raftkv::client::testing {
namespace {

constexpr absl::Duration kPoll = absl::Milliseconds(2);

}  // namespace

std::string UnusedAddress() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) std::abort();
  sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::abort();
  }
  close(fd);
  return absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
}

// A unary call's context.
class FakeCluster::UnaryCtx final : public CallCtx {
 public:
  explicit UnaryCtx(grpc::ServerContext* ctx) : ctx_(ctx) {}
  bool batch() const override { return false; }
  bool Cancelled() const override { return ctx_->IsCancelled(); }
  void SetLeader(uint64_t id, const std::string& addr) override {
    ctx_->AddTrailingMetadata(kLeaderIdKey, absl::StrCat(id));
    ctx_->AddTrailingMetadata(kLeaderAddrKey, addr);
  }
  void LoseAnswer() override {}

 private:
  grpc::ServerContext* const ctx_;
};

// One node: its server, its two services and its scripted faults (guarded by
// the cluster's mutex).
class FakeCluster::Node {
 public:
  Node(FakeCluster* cluster, int index)
      : cluster_(cluster), index_(index), kv_(this), admin_(this) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&kv_);
    builder.RegisterService(&admin_);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port == 0) std::abort();
    address_ = absl::StrCat("127.0.0.1:", port);
  }

  ~Node() { Shutdown(); }

  void Shutdown() {
    if (stopped_.exchange(true)) return;
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }

  const std::string& address() const { return address_; }

  std::optional<std::string> hint;  // ABSL_GUARDED_BY(cluster_->mu_)
  absl::Duration delay;             // ABSL_GUARDED_BY(cluster_->mu_)
  int fail_count = 0;               // ABSL_GUARDED_BY(cluster_->mu_)
  grpc::Status fail_status;         // ABSL_GUARDED_BY(cluster_->mu_)
  int lose_count = 0;               // ABSL_GUARDED_BY(cluster_->mu_)
  bool hung = false;                // ABSL_GUARDED_BY(cluster_->mu_)
  adminpb::StatusResponse status_extra;  // ABSL_GUARDED_BY(cluster_->mu_)

 private:
  // Each handler serves a unary call or a Batch op (DoPut, ...); the unary
  // methods and Batch's ops only wrap them.
  class KvService : public kvpb::KV::Service {
   public:
    explicit KvService(Node* node) : node_(node) {}

    grpc::Status Put(grpc::ServerContext* ctx, const kvpb::PutRequest* req,
                     kvpb::PutResponse* resp) override {
      UnaryCtx c(ctx);
      return DoPut(c, req, resp);
    }
    grpc::Status Delete(grpc::ServerContext* ctx, const kvpb::DeleteRequest* req,
                        kvpb::DeleteResponse* resp) override {
      UnaryCtx c(ctx);
      return DoDelete(c, req, resp);
    }
    grpc::Status CompareAndSwap(grpc::ServerContext* ctx, const kvpb::CasRequest* req,
                                kvpb::CasResponse* resp) override {
      UnaryCtx c(ctx);
      return DoCas(c, req, resp);
    }
    grpc::Status Get(grpc::ServerContext* ctx, const kvpb::GetRequest* req,
                     kvpb::GetResponse* resp) override {
      UnaryCtx c(ctx);
      return DoGet(c, req, resp);
    }
    grpc::Status Scan(grpc::ServerContext* ctx, const kvpb::ScanRequest* req,
                      kvpb::ScanResponse* resp) override {
      UnaryCtx c(ctx);
      return DoScan(c, req, resp);
    }

    grpc::Status Batch(
        grpc::ServerContext* ctx,
        grpc::ServerReaderWriter<kvpb::BatchResponse, kvpb::BatchRequest>* stream) override {
      return node_->cluster_->ServeBatch(
          node_->index_, ctx, stream,
          [this](CallCtx& c, const kvpb::RequestOp& op, kvpb::ResponseOp* out) {
            switch (op.op_case()) {
              case kvpb::RequestOp::kPut:
                return DoPut(c, &op.put(), out->mutable_put());
              case kvpb::RequestOp::kGet:
                return DoGet(c, &op.get(), out->mutable_get());
              case kvpb::RequestOp::kDelete:
                return DoDelete(c, &op.delete_(), out->mutable_delete_());
              case kvpb::RequestOp::kScan:
                return DoScan(c, &op.scan(), out->mutable_scan());
              case kvpb::RequestOp::kCas:
                return DoCas(c, &op.cas(), out->mutable_cas());
              case kvpb::RequestOp::OP_NOT_SET:
                break;
            }
            return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "op has no request");
          });
    }

   private:
    grpc::Status DoPut(CallCtx& ctx, const kvpb::PutRequest* req, kvpb::PutResponse* resp) {
      kvpb::WriteResult result;
      grpc::Status s = node_->cluster_->Write(
          node_->index_, ctx, "Put", req->key(), req->header(),
          [&](FakeCluster& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu_) {
            kvpb::WriteResult r;
            kvpb::KeyValue& kv = c.data_[req->key()];
            kv.set_key(req->key());
            kv.set_value(req->value());
            kv.set_version(++c.index_);
            r.mutable_put()->set_version(kv.version());
            return r;
          },
          &result);
      if (s.ok()) *resp = result.put();
      return s;
    }

    grpc::Status DoDelete(CallCtx& ctx, const kvpb::DeleteRequest* req,
                          kvpb::DeleteResponse* resp) {
      kvpb::WriteResult result;
      grpc::Status s = node_->cluster_->Write(
          node_->index_, ctx, "Delete", req->key(), req->header(),
          [&](FakeCluster& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu_) {
            kvpb::WriteResult r;
            ++c.index_;
            r.mutable_delete_()->set_deleted(c.data_.erase(req->key()) > 0);
            return r;
          },
          &result);
      if (s.ok()) *resp = result.delete_();
      return s;
    }

    grpc::Status DoCas(CallCtx& ctx, const kvpb::CasRequest* req, kvpb::CasResponse* resp) {
      if (req->expected_case() == kvpb::CasRequest::EXPECTED_NOT_SET) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "cas: no expected value or version");
      }
      kvpb::WriteResult result;
      grpc::Status s = node_->cluster_->Write(
          node_->index_, ctx, "CompareAndSwap", req->key(), req->header(),
          [&](FakeCluster& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu_) {
            kvpb::WriteResult r;
            kvpb::CasResponse* out = r.mutable_cas();
            ++c.index_;
            auto it = c.data_.find(req->key());
            const bool found = it != c.data_.end();
            bool match;
            if (req->expected_case() == kvpb::CasRequest::kExpectedValue) {
              match = found && it->second.value() == req->expected_value();
            } else if (req->expected_version() == 0) {
              match = !found;
            } else {
              match = found && it->second.version() == req->expected_version();
            }
            if (match) {
              kvpb::KeyValue& kv = c.data_[req->key()];
              kv.set_key(req->key());
              kv.set_value(req->new_value());
              kv.set_version(c.index_);
              out->set_succeeded(true);
              out->set_version(c.index_);
            } else if (found) {
              out->set_found(true);
              *out->mutable_current() = it->second;
            }
            return r;
          },
          &result);
      if (s.ok()) *resp = result.cas();
      return s;
    }

    grpc::Status DoGet(CallCtx& ctx, const kvpb::GetRequest* req, kvpb::GetResponse* resp) {
      FakeCluster& c = *node_->cluster_;
      grpc::Status s = c.Read(node_->index_, ctx, "Get", req->key(),
                              req->serializable());
      if (!s.ok()) return s;
      absl::MutexLock lock(&c.mu_);
      auto it = c.data_.find(req->key());
      if (it != c.data_.end()) {
        resp->set_found(true);
        *resp->mutable_kv() = it->second;
      }
      resp->mutable_header()->set_node_id(node_->index_ + 1);
      resp->mutable_header()->set_serializable(req->serializable());
      return grpc::Status::OK;
    }

    grpc::Status DoScan(CallCtx& ctx, const kvpb::ScanRequest* req,
                        kvpb::ScanResponse* resp) {
      FakeCluster& c = *node_->cluster_;
      grpc::Status s = c.Read(node_->index_, ctx, "Scan", req->prefix(),
                              req->serializable());
      if (!s.ok()) return s;
      absl::MutexLock lock(&c.mu_);
      const uint32_t limit = req->limit() == 0 ? 1000 : req->limit();
      auto it = req->start_after().empty()
                    ? c.data_.lower_bound(req->prefix())
                    : c.data_.upper_bound(req->start_after());
      for (; it != c.data_.end() && absl::StartsWith(it->first, req->prefix());
           ++it) {
        if (static_cast<uint32_t>(resp->kvs_size()) == limit) {
          resp->set_more(true);
          break;
        }
        *resp->add_kvs() = it->second;
      }
      return grpc::Status::OK;
    }

    Node* node_;
  };

  class AdminService : public adminpb::Admin::Service {
   public:
    explicit AdminService(Node* node) : node_(node) {}

    grpc::Status Status(grpc::ServerContext* ctx,
                        const adminpb::StatusRequest*,
                        adminpb::StatusResponse* resp) override {
      FakeCluster& c = *node_->cluster_;
      UnaryCtx uc(ctx);
      grpc::Status s = c.Read(node_->index_, uc, "Status", "", true);
      if (!s.ok()) return s;
      absl::MutexLock lock(&c.mu_);
      resp->set_node_id(node_->index_ + 1);
      resp->set_address(node_->address_);
      resp->set_cluster_id(42);
      resp->set_role(c.leader_ == node_->index_ ? "leader" : "follower");
      resp->set_term(3);
      if (c.leader_ >= 0) {
        resp->set_leader_id(c.leader_ + 1);
        resp->set_leader_address(c.nodes_[c.leader_]->address_);
      }
      resp->set_commit_index(c.index_);
      resp->set_applied_index(c.index_);
      resp->set_last_index(c.index_);
      resp->set_key_count(c.data_.size());
      resp->set_max_value_bytes(c.max_value_bytes_);
      resp->set_max_request_bytes(c.max_request_bytes_);
      resp->set_removed(c.Members().count(node_->index_ + 1) == 0);
      for (const auto& [id, m] : c.Members()) {
        adminpb::Member* pm = resp->add_members();
        pm->set_id(id);
        pm->set_address(m.first);
        pm->set_voter(m.second);
        (m.second ? resp->add_voters(id) : resp->add_learners(id));
      }
      resp->MergeFrom(node_->status_extra);
      return grpc::Status::OK;
    }

    // Membership calls: the leader check of writes, then the change.
    template <typename Resp>
    grpc::Status Change(grpc::ServerContext* ctx, const std::string& method, uint64_t id,
                        const std::string& address, Resp* resp)
        ABSL_NO_THREAD_SAFETY_ANALYSIS {
      FakeCluster& c = *node_->cluster_;
      size_t call;
      UnaryCtx uc(ctx);
      grpc::Status s = c.Enter(node_->index_, uc, method, "", nullptr, true, &call);
      if (!s.ok()) return s;
      auto& members = c.Members();
      auto it = members.find(id);
      grpc::Status out = grpc::Status::OK;
      if (id == 0) {
        out = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "node_id must not be 0");
      } else if (method == "AddMember") {
        if (it != members.end()) {
          out = grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "already a member");
        } else {
          members[id] = {address, false};
        }
      } else if (it == members.end()) {
        out = grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("node ", id,
                                                                     " is not a member"));
      } else if (method == "PromoteMember") {
        if (it->second.second) {
          out = grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "already a voter");
        }
        it->second.second = true;
      } else {
        members.erase(it);
      }
      c.calls_[call].outcome = out.ok() ? "ok" : "invalid";
      for (const auto& [mid, m] : members) {
        (m.second ? resp->add_voters(mid) : resp->add_learners(mid));
      }
      c.mu_.Unlock();
      return out;
    }

    grpc::Status AddMember(grpc::ServerContext* ctx, const adminpb::AddMemberRequest* req,
                           adminpb::AddMemberResponse* resp) override {
      return Change(ctx, "AddMember", req->node_id(), req->address(), resp);
    }
    grpc::Status PromoteMember(grpc::ServerContext* ctx,
                               const adminpb::PromoteMemberRequest* req,
                               adminpb::PromoteMemberResponse* resp) override {
      return Change(ctx, "PromoteMember", req->node_id(), "", resp);
    }
    grpc::Status RemoveMember(grpc::ServerContext* ctx, const adminpb::RemoveMemberRequest* req,
                              adminpb::RemoveMemberResponse* resp) override {
      return Change(ctx, "RemoveMember", req->node_id(), "", resp);
    }
    grpc::Status TransferLeader(grpc::ServerContext* ctx,
                                const adminpb::TransferLeaderRequest* req,
                                adminpb::TransferLeaderResponse* resp) override
        ABSL_NO_THREAD_SAFETY_ANALYSIS {
      FakeCluster& c = *node_->cluster_;
      size_t call;
      UnaryCtx uc(ctx);
      grpc::Status s = c.Enter(node_->index_, uc, "TransferLeader", "", nullptr, true, &call);
      if (!s.ok()) return s;
      int target = req->node_id() == 0 ? (c.leader_ + 1) % static_cast<int>(c.nodes_.size())
                                       : static_cast<int>(req->node_id()) - 1;
      if (target < 0 || target >= static_cast<int>(c.nodes_.size())) {
        c.calls_[call].outcome = "invalid";
        c.mu_.Unlock();
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "not a voter");
      }
      c.leader_ = target;
      c.calls_[call].outcome = "ok";
      resp->set_leader_id(target + 1);
      c.mu_.Unlock();
      return grpc::Status::OK;
    }

   private:
    Node* node_;
  };

  FakeCluster* const cluster_;
  const int index_;
  KvService kv_;
  AdminService admin_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::atomic<bool> stopped_{false};
};

FakeCluster::FakeCluster(int nodes) {
  for (int i = 0; i < nodes; ++i) {
    nodes_.push_back(std::make_unique<Node>(this, i));
  }
}

FakeCluster::~FakeCluster() {
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
  }
  for (auto& node : nodes_) node->Shutdown();
}

std::string FakeCluster::address(int node) const {
  return nodes_[node]->address();
}

std::vector<std::string> FakeCluster::addresses() const {
  std::vector<std::string> out;
  for (const auto& node : nodes_) out.push_back(node->address());
  return out;
}

void FakeCluster::Preload(const std::string& key, const std::string& value) {
  absl::MutexLock lock(&mu_);
  kvpb::KeyValue& kv = data_[key];
  kv.set_key(key);
  kv.set_value(value);
  kv.set_version(++index_);
}

void FakeCluster::SetLeader(int node) {
  absl::MutexLock lock(&mu_);
  leader_ = node;
}

void FakeCluster::SetHint(int node, std::optional<std::string> addr) {
  absl::MutexLock lock(&mu_);
  nodes_[node]->hint = std::move(addr);
}

void FakeCluster::SetLimits(uint64_t max_value_bytes, uint64_t max_request_bytes) {
  absl::MutexLock lock(&mu_);
  max_value_bytes_ = max_value_bytes;
  max_request_bytes_ = max_request_bytes;
}

void FakeCluster::Stop(int node) { nodes_[node]->Shutdown(); }

void FakeCluster::SetDelay(int node, absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  nodes_[node]->delay = delay;
}

void FakeCluster::SetStatusExtra(int node, const adminpb::StatusResponse& extra) {
  absl::MutexLock lock(&mu_);
  nodes_[node]->status_extra = extra;
}

void FakeCluster::FailNext(int node, grpc::Status status, int count) {
  absl::MutexLock lock(&mu_);
  nodes_[node]->fail_status = std::move(status);
  nodes_[node]->fail_count = count;
}

void FakeCluster::LoseResponses(int node, int count) {
  absl::MutexLock lock(&mu_);
  nodes_[node]->lose_count = count;
}

void FakeCluster::Block(const std::string& key) {
  absl::MutexLock lock(&mu_);
  blocked_[key] = true;
}

void FakeCluster::Release(const std::string& key) {
  absl::MutexLock lock(&mu_);
  blocked_.erase(key);
}

void FakeCluster::Hang(int node, bool hung) {
  absl::MutexLock lock(&mu_);
  nodes_[node]->hung = hung;
}

bool FakeCluster::HungLocked(int node) const { return nodes_[node]->hung; }

FakeCluster::BatchStats FakeCluster::batch_stats(int node) const {
  absl::MutexLock lock(&mu_);
  auto it = batch_stats_.find(node);
  return it == batch_stats_.end() ? BatchStats() : it->second;
}

std::vector<FakeCluster::Call> FakeCluster::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

std::vector<FakeCluster::Call> FakeCluster::calls(const std::string& method,
                                                  bool ok_only) const {
  absl::MutexLock lock(&mu_);
  std::vector<Call> out;
  for (const Call& c : calls_) {
    if (c.method == method && (!ok_only || c.outcome == "ok")) {
      out.push_back(c);
    }
  }
  return out;
}

void FakeCluster::ClearCalls() {
  absl::MutexLock lock(&mu_);
  calls_.clear();
}

int FakeCluster::applied_writes() const {
  absl::MutexLock lock(&mu_);
  return applied_;
}

std::map<uint64_t, std::vector<uint64_t>> FakeCluster::answered_seqs() const {
  absl::MutexLock lock(&mu_);
  return answered_;
}

std::vector<std::string> FakeCluster::header_errors() const {
  absl::MutexLock lock(&mu_);
  return header_errors_;
}

// Sleeps `node`'s delay (cut short if the client gives up or the cluster
// stops), then records the call and applies the scripted failure, the
// leader check. Returns with mu_ held and OK, or with mu_ released and the
// status to answer. `*call` is the recorded call's index.
grpc::Status FakeCluster::Enter(int node, CallCtx& ctx,
                                const std::string& method,
                                const std::string& key,
                                const kvpb::WriteHeader* header,
                                bool needs_leader, size_t* call) {
  absl::Duration delay;
  {
    absl::MutexLock lock(&mu_);
    delay = nodes_[node]->delay;
  }
  const absl::Time until = absl::Now() + delay;
  while (absl::Now() < until) {
    if (ctx.Cancelled()) return ctx.GaveUp();
    absl::SleepFor(kPoll);
  }

  mu_.Lock();
  Call c{node, method, key, header != nullptr ? *header : kvpb::WriteHeader(),
         "", ctx.batch()};
  *call = calls_.size();
  Node& n = *nodes_[node];
  if (n.fail_count > 0) {
    --n.fail_count;
    c.outcome = "injected";
    calls_.push_back(std::move(c));
    grpc::Status s = n.fail_status;
    mu_.Unlock();
    return s;
  }
  if (needs_leader && leader_ != node) {
    std::string hint = leader_ >= 0 ? nodes_[leader_]->address() : "";
    if (n.hint.has_value()) hint = *n.hint;
    ctx.SetLeader(leader_ >= 0 ? leader_ + 1 : 0, hint);
    c.outcome = "not leader";
    calls_.push_back(std::move(c));
    mu_.Unlock();
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("not leader; leader is ",
                                     hint.empty() ? "unknown" : hint));
  }
  c.outcome = "ok";
  calls_.push_back(std::move(c));
  return grpc::Status::OK;
}

std::map<uint64_t, std::pair<std::string, bool>>& FakeCluster::Members() {
  if (members_.empty()) {
    for (size_t i = 0; i < nodes_.size(); ++i) members_[i + 1] = {nodes_[i]->address(), true};
  }
  return members_;
}

grpc::Status FakeCluster::Read(int node, CallCtx& ctx,
                               const std::string& method,
                               const std::string& key, bool serializable) {
  size_t call;
  grpc::Status s =
      Enter(node, ctx, method, key, nullptr, !serializable, &call);
  if (!s.ok()) return s;
  bool empty_key = key.empty() && method == "Get";
  mu_.Unlock();
  if (empty_key) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty key");
  }
  return grpc::Status::OK;
}

grpc::Status FakeCluster::Write(
    int node, CallCtx& ctx, const std::string& method,
    const std::string& key, const kvpb::WriteHeader& header,
    const std::function<kvpb::WriteResult(FakeCluster&)>& apply,
    kvpb::WriteResult* result) {
  size_t call;
  grpc::Status s = Enter(node, ctx, method, key, &header, true, &call);
  if (!s.ok()) return s;
  // mu_ is held.
  if (key.empty()) {
    calls_[call].outcome = "invalid";
    mu_.Unlock();
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty key");
  }
  while (blocked_.count(key) > 0 && !shutting_down_) {
    if (ctx.Cancelled()) {
      calls_[call].outcome = "cancelled";
      mu_.Unlock();
      return ctx.GaveUp();
    }
    mu_.Unlock();
    absl::SleepFor(kPoll);
    mu_.Lock();
  }

  const uint64_t id = header.client_id();
  if (id == 0) {
    *result = apply(*this);
    ++applied_;
  } else {
    const uint64_t seq = header.seq();
    const uint64_t fi = header.first_incomplete();
    if (seq == 0 || fi == 0 || fi > seq) {
      header_errors_.push_back(absl::StrCat("client ", id, ": seq ", seq,
                                            " first_incomplete ", fi));
    }
    // Every sequence below first_incomplete must have been answered: the
    // client can only have finished a write it got an answer to.
    std::vector<uint64_t>& answered = answered_[id];
    for (uint64_t s2 = 1; s2 < fi && s2 < seq; ++s2) {
      if (std::find(answered.begin(), answered.end(), s2) == answered.end()) {
        header_errors_.push_back(absl::StrCat(
            "client ", id, ": seq ", seq, " first_incomplete ", fi,
            " but seq ", s2, " was never answered"));
        break;
      }
    }
    Session& session = sessions_[id];
    auto it = session.results.find(seq);
    if (it != session.results.end()) {
      *result = it->second;
      calls_[call].outcome = "ok (duplicate)";
    } else {
      *result = apply(*this);
      ++applied_;
      session.results[seq] = *result;
    }
    session.results.erase(session.results.begin(),
                          session.results.lower_bound(fi));
  }
  Node& n = *nodes_[node];
  if (n.lose_count > 0) {
    --n.lose_count;
    calls_[call].outcome = "lost";
    mu_.Unlock();
    ctx.LoseAnswer();
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "connection lost (injected)");
  }
  if (id != 0) {
    std::vector<uint64_t>& answered = answered_[id];
    if (std::find(answered.begin(), answered.end(), header.seq()) ==
        answered.end()) {
      answered.push_back(header.seq());
    }
  }
  mu_.Unlock();
  return grpc::Status::OK;
}

ClientOptions FastOptions(std::vector<std::string> endpoints) {
  ClientOptions o;
  o.endpoints = std::move(endpoints);
  o.attempt_timeout = absl::Milliseconds(500);
  o.total_timeout = absl::Seconds(5);
  o.backoff_initial = absl::Milliseconds(5);
  o.backoff_max = absl::Milliseconds(50);
  return o;
}

std::unique_ptr<Client> MakeClient(ClientOptions o) {
  auto c = Client::Create(std::move(o));
  if (!c.ok()) {
    ADD_FAILURE() << c.status();
    return nullptr;
  }
  return std::move(*c);
}

std::vector<int> Nodes(const std::vector<FakeCluster::Call>& calls) {
  std::vector<int> out;
  for (const auto& c : calls) out.push_back(c.node);
  return out;
}

}  // namespace raftkv::client::testing
