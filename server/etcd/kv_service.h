// KvService: etcd's KV service (etcdserverpb.KV) over the MVCC store, on
// the client port, on every member.
//
// Reads (Range, read-only Txn) are linearizable by default: a Node::Read
// (ReadIndex, from any member) first, then a view of the local store; a
// serializable request reads the local store at once. Writes (Put,
// DeleteRange, Txn with writes, Compact) become a kvpb::EtcdWrite command
// proposed through EtcdContext::propose (the leader, from any member) and
// answer what the state machine's apply returned (server/etcd/kv_apply.h).
// Compact with `physical` returns once the compacted history is gone from
// disk (MvccCompactor::WaitRemoved).
//
// Every method takes its request as raw bytes (a body that does not parse
// is INVALID_ARGUMENT saying so); Range, Put, DeleteRange and Txn use the
// callback API (a call waiting for its entry holds no thread), Compact a
// sync thread (the physical wait blocks). Errors are etcd's
// (server/etcd/errors.h): requests over max_request_bytes get "request is
// too large", node failures map through FromNode.
//
// Thread safety: gRPC calls the methods on its threads.
#ifndef RAFTKV_SERVER_ETCD_KV_SERVICE_H_
#define RAFTKV_SERVER_ETCD_KV_SERVICE_H_

#include "proto/etcd/rpc.grpc.pb.h"
#include "server/etcd/context.h"

namespace raftkv::server::etcd {

using RawKvBase = etcdserverpb::KV::WithRawCallbackMethod_Range<
    etcdserverpb::KV::WithRawCallbackMethod_Put<etcdserverpb::KV::WithRawCallbackMethod_DeleteRange<
        etcdserverpb::KV::WithRawCallbackMethod_Txn<etcdserverpb::KV::Service>>>>;

class KvService final : public RawKvBase {
 public:
  // REQUIRES: context.Validate().ok(); what it points to outlives the service.
  explicit KvService(EtcdContext context);

  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                  grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* ctx,
                                        const grpc::ByteBuffer* req,
                                        grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                grpc::ByteBuffer* resp) override;

 private:
  // Called once with the answer (its header filled) or an error.
  template <typename Resp>
  using Done = std::function<void(absl::StatusOr<Resp>)>;

  // A read: after a linearizable Node::Read unless `serializable`, runs
  // `read(view)` on a view of the local store.
  template <typename Resp>
  void ReadThen(bool serializable, absl::Time deadline,
                std::function<absl::StatusOr<Resp>(const mvcc::Reader&)> read, Done<Resp> done);
  // A write by `who`: checks its rights (server/etcd/authorizer.h),
  // proposes `w` and hands the applied result to `done`. Refused at apply
  // because auth changed since the check, it is checked and proposed again
  // (`attempts` in all).
  void Write(kvpb::EtcdWrite w, AuthInfo who, absl::Time deadline,
             std::function<void(absl::StatusOr<kvpb::EtcdWriteResult>)> done, int attempts = 5);
  // Who the call runs as (server/etcd/authorizer.h).
  absl::StatusOr<AuthInfo> Caller(const grpc::ServerContextBase& ctx) const;
  // Compact, on a sync thread.
  grpc::Status Compact(grpc::ServerContext* ctx, const etcdserverpb::CompactionRequest& req,
                       etcdserverpb::CompactionResponse* resp);
  // OK, or why a read is refused now (corrupt data).
  absl::Status ReadRefusal() const;
  // `s` of a local read, with corruption reported.
  absl::Status CheckRead(const absl::Status& s) const;

  const EtcdContext c_;
};

}  // namespace raftkv::server::etcd

#endif  // RAFTKV_SERVER_ETCD_KV_SERVICE_H_
