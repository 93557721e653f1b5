// ClusterService: etcd's etcdserverpb.Cluster on the client port, mapped onto
// raftkv's membership (server/etcd/members.h for ids, names and URLs;
// docs/ETCD.md for what differs from etcd):
//
// - MemberList: the applied membership, voters and learners.
// - MemberAdd: a new random id; always added as a learner (carrying its
//   address), which the leader promotes to voter once it has caught up
//   (--auto_promote_gap). isLearner=false asks for that promotion, it does
//   not skip the learner stage; the answer reports the member as added
//   (a learner).
// - MemberRemove, MemberPromote: raft conf changes through the leader
//   (etcd's readiness rule for a promotion is checked there:
//   CheckingPromotions in server/etcd/members.h).
// - MemberUpdate: raftkv cannot change a member's address; an update to the
//   address it has is answered OK, any other is refused (UNIMPLEMENTED).
//
// Every method takes its request as raw bytes (server/raw_unary.h) and may
// block its gRPC thread until the change is applied or the deadline passes.
//
// Thread safety: thread-safe (the context is immutable, the node and state
// machine are thread-safe).
#ifndef RAFTKV_SERVER_ETCD_CLUSTER_SERVICE_H_
#define RAFTKV_SERVER_ETCD_CLUSTER_SERVICE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "proto/etcd/rpc.pb.h"
#include "proto/raft.pb.h"
#include "server/etcd/context.h"

namespace raftkv::server::etcd {

class ClusterService final : public etcdserverpb::Cluster::Service {
 public:
  // REQUIRES: ctx.Validate().ok().
  explicit ClusterService(EtcdContext ctx);

 private:
  grpc::Status List(grpc::ServerContext* ctx, const etcdserverpb::MemberListRequest& req,
                    etcdserverpb::MemberListResponse* resp);
  grpc::Status Add(grpc::ServerContext* ctx, const etcdserverpb::MemberAddRequest& req,
                   etcdserverpb::MemberAddResponse* resp);
  grpc::Status Remove(grpc::ServerContext* ctx, const etcdserverpb::MemberRemoveRequest& req,
                      etcdserverpb::MemberRemoveResponse* resp);
  grpc::Status Update(grpc::ServerContext* ctx, const etcdserverpb::MemberUpdateRequest& req,
                      etcdserverpb::MemberUpdateResponse* resp);
  grpc::Status Promote(grpc::ServerContext* ctx, const etcdserverpb::MemberPromoteRequest& req,
                       etcdserverpb::MemberPromoteResponse* resp);

  // The applied membership.
  raftpb::ConfState Membership() const;
  // Members that have started (their incarnation is recorded), and this one.
  std::set<uint64_t> Started() const;
  // `conf`'s members as etcd's, into `out` (a repeated Member field);
  // `extra`: an address the applied state may not know yet (id -> address).
  template <typename Field>
  void FillMembers(const raftpb::ConfState& conf, const std::map<uint64_t, std::string>& extra,
                   Field* out) const;
  // Proposes `cc` through the leader, retrying while another change is in
  // flight (e.g. an automatic promotion), until `deadline`; the membership
  // after it, or the failure as etcd's error.
  absl::StatusOr<raftpb::ConfState> Change(raftpb::ConfChange cc, absl::Time deadline) const;
  grpc::Status Answer(grpc::ServerContext* ctx, const char* method, absl::Status s) const;

  const EtcdContext c_;
};

}  // namespace raftkv::server::etcd

#endif  // RAFTKV_SERVER_ETCD_CLUSTER_SERVICE_H_
