// etcd's Maintenance service (etcdserverpb.Maintenance) on the client port:
// Status, HashKV and Hash, Snapshot (a raftkv backup that `etcdctl snapshot
// save` writes), Alarm (etcd's replicated NOSPACE, server/etcd/alarm_store.h,
// and this member's own alarms), Defragment (a compaction of the data) and
// MoveLeader. What each answers and where it differs from etcd:
// docs/ETCD_MAINTENANCE.md.
//
// Every method is sync and raw (server/raw_unary.h): a body that does not
// parse gets INVALID_ARGUMENT saying so. The service also owns the space
// quota (server/etcd/space_quota.h), whose thread it starts and stops.
//
// Thread safety: gRPC calls the methods on its sync threads, concurrently.
#ifndef RAFTKV_SERVER_ETCD_MAINTENANCE_SERVICE_H_
#define RAFTKV_SERVER_ETCD_MAINTENANCE_SERVICE_H_

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "server/etcd/context.h"
#include "server/etcd/space_quota.h"

namespace raftkv::server::etcd {

// The etcd version Status reports: raftkv serves etcd 3.4's KV semantics,
// and clients (Kubernetes among them) enable features by this version, so it
// claims the first 3.4 release and none of the later ones' additions.
inline constexpr char kEtcdVersion[] = "3.4.0";

struct MaintenanceOptions {
  SpaceQuotaOptions quota;  // --quota_backend_bytes
  // Snapshot's read rate (0: unthrottled) and chunk size.
  uint64_t snapshot_bytes_per_sec = 64 << 20;
  size_t snapshot_chunk_bytes = 1 << 20;

  absl::Status Validate() const;
};

class MaintenanceService final : public etcdserverpb::Maintenance::Service {
 public:
  // Starts the space quota's thread. REQUIRES: ctx.Validate().ok(),
  // options.Validate().ok(); what ctx points to outlives the service.
  MaintenanceService(EtcdContext ctx, MaintenanceOptions options);
  ~MaintenanceService() override;  // stops the quota's thread

  // For etcd's KV service: SpaceQuota::Admit before proposing a Put or Txn.
  SpaceQuota* space_quota() { return &quota_; }

  grpc::Status Alarm(grpc::ServerContext* ctx, const etcdserverpb::AlarmRequest* req,
                     etcdserverpb::AlarmResponse* resp) override;
  grpc::Status Status(grpc::ServerContext* ctx, const etcdserverpb::StatusRequest* req,
                      etcdserverpb::StatusResponse* resp) override;
  grpc::Status Defragment(grpc::ServerContext* ctx, const etcdserverpb::DefragmentRequest* req,
                          etcdserverpb::DefragmentResponse* resp) override
      ABSL_LOCKS_EXCLUDED(defrag_mu_);
  grpc::Status Hash(grpc::ServerContext* ctx, const etcdserverpb::HashRequest* req,
                    etcdserverpb::HashResponse* resp) override;
  grpc::Status HashKV(grpc::ServerContext* ctx, const etcdserverpb::HashKVRequest* req,
                      etcdserverpb::HashKVResponse* resp) override;
  grpc::Status MoveLeader(grpc::ServerContext* ctx, const etcdserverpb::MoveLeaderRequest* req,
                          etcdserverpb::MoveLeaderResponse* resp) override;

 private:
  template <typename Req, typename Resp>
  void MarkRaw(const char* method,
               grpc::Status (MaintenanceService::*handler)(grpc::ServerContext*, const Req*,
                                                           Resp*));
  // Snapshot is server-streaming: parses its request, then streams.
  void MarkRawSnapshot();
  // Proposes `req` (ACTIVATE or DEACTIVATE) through the log and waits.
  absl::StatusOr<etcdserverpb::AlarmResponse> ProposeAlarm(const etcdserverpb::AlarmRequest& req,
                                                           absl::Time deadline);
  // A storage error, with corruption reported (CorruptionGuard::Check).
  absl::Status CheckRead(const absl::Status& s) const;

  const EtcdContext ctx_;
  const MaintenanceOptions options_;
  SpaceQuota quota_;
  absl::Mutex defrag_mu_;  // one Defragment at a time
};

}  // namespace raftkv::server::etcd

#endif  // RAFTKV_SERVER_ETCD_MAINTENANCE_SERVICE_H_
