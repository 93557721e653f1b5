#include "server/etcd/cluster_service.h"

#include <random>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "google/protobuf/descriptor.h"
#include "raft/membership.h"
#include "server/etcd/errors.h"
#include "server/etcd/members.h"
#include "server/raw_unary.h"

namespace raftkv::server::etcd {
namespace {

using etcdserverpb::MemberAddRequest;
using etcdserverpb::MemberAddResponse;
using etcdserverpb::MemberListRequest;
using etcdserverpb::MemberListResponse;
using etcdserverpb::MemberPromoteRequest;
using etcdserverpb::MemberPromoteResponse;
using etcdserverpb::MemberRemoveRequest;
using etcdserverpb::MemberRemoveResponse;
using etcdserverpb::MemberUpdateRequest;
using etcdserverpb::MemberUpdateResponse;

int MethodIndex(const char* name) {
  const google::protobuf::MethodDescriptor* m =
      MemberListRequest::descriptor()->file()->FindServiceByName("Cluster")->FindMethodByName(
          name);
  CHECK(m != nullptr) << "no method etcdserverpb.Cluster." << name;
  return m->index();
}

// A refusal that proposed nothing and goes away by itself: another change
// still uncommitted, a new leader's first entry, a leadership transfer.
bool Transient(const absl::Status& s) {
  const absl::string_view m = s.message();
  return (absl::IsFailedPrecondition(s) &&
          (absl::StrContains(m, "is in progress") || absl::StrContains(m, "; retry"))) ||
         (absl::IsUnavailable(s) && absl::StrContains(m, "leadership transfer in progress"));
}

// raft's refusals of a change (raft/membership.cc) as etcd's errors.
absl::Status FromConfChange(const raftpb::ConfChange& cc, const absl::Status& s) {
  if (absl::IsNotFound(s)) return EtcdError(Error::kMemberNotFound);
  if (cc.type() == raftpb::CONF_ADD_VOTER && absl::IsAlreadyExists(s)) {
    return EtcdError(Error::kMemberNotLearner);
  }
  if (cc.type() == raftpb::CONF_ADD_LEARNER &&
      (absl::IsAlreadyExists(s) ||
       (absl::IsFailedPrecondition(s) && absl::StrContains(s.message(), "is a voter")))) {
    return EtcdError(Error::kMemberExist);
  }
  return FromNode(s);
}

// A new member's id: random, as etcd's are unpredictable (a hash of its
// URLs, the cluster and the time); members.h excludes 0 and ids in use.
uint64_t RandomId() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd();
}

std::vector<std::string> ToVector(const google::protobuf::RepeatedPtrField<std::string>& f) {
  return std::vector<std::string>(f.begin(), f.end());
}

}  // namespace

ClusterService::ClusterService(EtcdContext ctx) : c_(std::move(ctx)) {
  MarkMethodStreamed(MethodIndex("MemberList"),
                     RawUnaryHandler<MemberListRequest, MemberListResponse>(
                         [this](grpc::ServerContext* ctx, const MemberListRequest& req,
                                MemberListResponse* resp) { return List(ctx, req, resp); }));
  MarkMethodStreamed(MethodIndex("MemberAdd"),
                     RawUnaryHandler<MemberAddRequest, MemberAddResponse>(
                         [this](grpc::ServerContext* ctx, const MemberAddRequest& req,
                                MemberAddResponse* resp) { return Add(ctx, req, resp); }));
  MarkMethodStreamed(MethodIndex("MemberRemove"),
                     RawUnaryHandler<MemberRemoveRequest, MemberRemoveResponse>(
                         [this](grpc::ServerContext* ctx, const MemberRemoveRequest& req,
                                MemberRemoveResponse* resp) { return Remove(ctx, req, resp); }));
  MarkMethodStreamed(MethodIndex("MemberUpdate"),
                     RawUnaryHandler<MemberUpdateRequest, MemberUpdateResponse>(
                         [this](grpc::ServerContext* ctx, const MemberUpdateRequest& req,
                                MemberUpdateResponse* resp) { return Update(ctx, req, resp); }));
  MarkMethodStreamed(MethodIndex("MemberPromote"),
                     RawUnaryHandler<MemberPromoteRequest, MemberPromoteResponse>(
                         [this](grpc::ServerContext* ctx, const MemberPromoteRequest& req,
                                MemberPromoteResponse* resp) { return Promote(ctx, req, resp); }));
}

raftpb::ConfState ClusterService::Membership() const { return c_.sm->Membership().second; }

std::set<uint64_t> ClusterService::Started() const {
  std::set<uint64_t> out;
  for (const auto& [id, incarnation] : c_.sm->Incarnations()) out.insert(id);
  out.insert(c_.member_id);
  return out;
}

template <typename Field>
void ClusterService::FillMembers(const raftpb::ConfState& conf,
                                 const std::map<uint64_t, std::string>& extra, Field* out) const {
  std::map<uint64_t, std::string> addresses = c_.member_addresses();
  for (const auto& [id, address] : extra) addresses[id] = address;
  for (etcdserverpb::Member& m : ListMembers(conf, addresses, Started(), c_.client_tls)) {
    *out->Add() = std::move(m);
  }
}

absl::StatusOr<raftpb::ConfState> ClusterService::Change(raftpb::ConfChange cc,
                                                         absl::Time deadline) const {
  while (true) {
    absl::StatusOr<raftpb::ConfState> r = c_.change_membership(cc, deadline);
    if (r.ok()) return r;
    if (!Transient(r.status())) return FromConfChange(cc, r.status());
    if (absl::Now() + absl::Milliseconds(20) >= deadline) return EtcdError(Error::kTimeout);
    absl::SleepFor(absl::Milliseconds(20));
  }
}

grpc::Status ClusterService::Answer(grpc::ServerContext* ctx, const char* method,
                                    absl::Status s) const {
  if (!s.ok()) LOG(INFO) << "etcd Cluster." << method << " from " << ctx->peer() << ": " << s;
  return ToGrpc(s);
}

grpc::Status ClusterService::List(grpc::ServerContext* ctx, const MemberListRequest& req,
                                  MemberListResponse* resp) {
  // etcd 3.4 answers from the membership this member applied (its
  // `linearizable` flag came in 3.5); so does raftkv, whatever the flag.
  (void)ctx;
  (void)req;
  FillHeader(c_, 0, resp->mutable_header());  // etcd's Cluster headers carry no revision
  FillMembers(Membership(), {}, resp->mutable_members());
  return grpc::Status::OK;
}

grpc::Status ClusterService::Add(grpc::ServerContext* ctx, const MemberAddRequest& req,
                                 MemberAddResponse* resp) {
  if (absl::Status s = CheckAdmin(c_, *ctx); !s.ok()) return Answer(ctx, "MemberAdd", s);  // etcd: root
  std::string why;
  absl::StatusOr<std::string> address =
      AddressOfPeerURLs(ToVector(req.peerurls()), c_.client_tls, &why);
  if (!address.ok()) {
    LOG(INFO) << "etcd Cluster.MemberAdd from " << ctx->peer() << ": " << why;
    return ToGrpc(address.status());
  }
  std::set<uint64_t> taken;
  for (const auto& [id, a] : c_.member_addresses()) {
    if (a == *address) return Answer(ctx, "MemberAdd", EtcdError(Error::kPeerURLExist));
    taken.insert(id);
  }
  const uint64_t id = NewMemberId(taken, RandomId);
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_ADD_LEARNER);
  cc.set_node_id(id);
  cc.set_context(*address);
  auto conf = Change(std::move(cc), DeadlineOf(c_, ctx->deadline()));
  if (!conf.ok()) return Answer(ctx, "MemberAdd", conf.status());
  LOG(INFO) << "etcd Cluster.MemberAdd: added node " << id << " (" << absl::StrCat(absl::Hex(id))
            << " in hex) at " << *address << " as a learner"
            << (req.islearner() ? "" : ", to be promoted once caught up") << "; start it with --id="
            << id << " --join=...";
  FillHeader(c_, 0, resp->mutable_header());
  etcdserverpb::Member* m = resp->mutable_member();
  m->set_id(id);
  m->add_peerurls(MemberURL(*address, c_.client_tls));
  m->set_islearner(true);
  FillMembers(*conf, {{id, *address}}, resp->mutable_members());
  return grpc::Status::OK;
}

grpc::Status ClusterService::Remove(grpc::ServerContext* ctx, const MemberRemoveRequest& req,
                                    MemberRemoveResponse* resp) {
  if (absl::Status s = CheckAdmin(c_, *ctx); !s.ok()) return Answer(ctx, "MemberRemove", s);  // etcd: root
  if (!raft::IsMember(Membership(), req.id())) {
    return Answer(ctx, "MemberRemove", EtcdError(Error::kMemberNotFound));
  }
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_REMOVE_NODE);
  cc.set_node_id(req.id());
  auto conf = Change(std::move(cc), DeadlineOf(c_, ctx->deadline()));
  if (!conf.ok()) return Answer(ctx, "MemberRemove", conf.status());
  FillHeader(c_, 0, resp->mutable_header());
  FillMembers(*conf, {}, resp->mutable_members());
  return grpc::Status::OK;
}

grpc::Status ClusterService::Update(grpc::ServerContext* ctx, const MemberUpdateRequest& req,
                                    MemberUpdateResponse* resp) {
  if (absl::Status s = CheckAdmin(c_, *ctx); !s.ok()) return Answer(ctx, "MemberUpdate", s);  // etcd: root
  const raftpb::ConfState conf = Membership();
  if (!raft::IsMember(conf, req.id())) {
    return Answer(ctx, "MemberUpdate", EtcdError(Error::kMemberNotFound));
  }
  std::string why;
  absl::StatusOr<std::string> address =
      AddressOfPeerURLs(ToVector(req.peerurls()), c_.client_tls, &why);
  if (!address.ok()) {
    LOG(INFO) << "etcd Cluster.MemberUpdate from " << ctx->peer() << ": " << why;
    return ToGrpc(address.status());
  }
  const std::map<uint64_t, std::string> addresses = c_.member_addresses();
  for (const auto& [id, a] : addresses) {
    if (id != req.id() && a == *address) {
      return Answer(ctx, "MemberUpdate", EtcdError(Error::kPeerURLExist));
    }
  }
  auto it = addresses.find(req.id());
  if (it == addresses.end() || it->second != *address) {
    return Answer(ctx, "MemberUpdate",
                  absl::UnimplementedError(absl::StrCat(
                      "raftkv cannot change a member's peer URL (node ", req.id(), " is at ",
                      it == addresses.end() ? "an unknown address" : it->second,
                      "): remove the member and add it again at the new URL")));
  }
  FillHeader(c_, 0, resp->mutable_header());
  FillMembers(conf, {}, resp->mutable_members());
  return grpc::Status::OK;
}

grpc::Status ClusterService::Promote(grpc::ServerContext* ctx, const MemberPromoteRequest& req,
                                     MemberPromoteResponse* resp) {
  if (absl::Status s = CheckAdmin(c_, *ctx); !s.ok()) return Answer(ctx, "MemberPromote", s);  // etcd: root
  const raftpb::ConfState applied = Membership();
  if (raft::IsVoter(applied, req.id())) {
    return Answer(ctx, "MemberPromote", EtcdError(Error::kMemberNotLearner));
  }
  if (!raft::IsLearner(applied, req.id())) {
    return Answer(ctx, "MemberPromote", EtcdError(Error::kMemberNotFound));
  }
  // Only the leader knows how far the learner got: change_membership checks
  // it there (CheckingPromotions, wired in the server's main).
  raftpb::ConfChange cc;
  cc.set_type(raftpb::CONF_ADD_VOTER);
  cc.set_node_id(req.id());
  auto conf = Change(std::move(cc), DeadlineOf(c_, ctx->deadline()));
  if (!conf.ok()) return Answer(ctx, "MemberPromote", conf.status());
  FillHeader(c_, 0, resp->mutable_header());
  FillMembers(*conf, {}, resp->mutable_members());
  return grpc::Status::OK;
}

}  // namespace raftkv::server::etcd
