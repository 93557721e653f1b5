// AuthService: etcd's etcdserverpb.Auth on the client port (users, roles,
// permissions, auth enable/disable, Authenticate), over the replicated
// AuthStore (server/etcd/auth_store.h).
//
// - Changes become a kvpb::AuthCommand proposed through the leader from any
//   member (EtcdContext::propose). Passwords are hashed here (bcrypt,
//   server/etcd/password.h) before the command is made: no plaintext in the
//   log. As in etcd, every change, UserList and RoleList need the root role
//   once auth is on; UserGet is also allowed for the user itself, RoleGet
//   for a holder of the role. A change refused at apply because auth changed
//   since its check is checked and proposed again.
// - Reads answer from this member's store after a ReadIndex (linearizable).
// - Authenticate checks the password here and issues a token kept by this
//   member only (server/etcd/auth_tokens.h), as etcd's simple tokens.
//
// Every method takes its request as raw bytes (server/raw_unary.h) and may
// block its gRPC thread (a bcrypt hash: ~0.1 s; a change: until applied).
//
// Thread safety: thread-safe.
#ifndef RAFTKV_SERVER_ETCD_AUTH_SERVICE_H_
#define RAFTKV_SERVER_ETCD_AUTH_SERVICE_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "proto/kv.pb.h"
#include "server/etcd/context.h"

namespace raftkv::server::etcd {

class AuthService final : public etcdserverpb::Auth::Service {
 public:
  // REQUIRES: ctx.Validate().ok() and ctx.auth set.
  explicit AuthService(EtcdContext ctx);

 private:
  template <typename Req, typename Resp>
  void Mark(const char* method, grpc::Status (AuthService::*handler)(grpc::ServerContext*,
                                                                      const Req&, Resp*));

  grpc::Status Enable(grpc::ServerContext* ctx, const etcdserverpb::AuthEnableRequest& req,
                      etcdserverpb::AuthEnableResponse* resp);
  grpc::Status Disable(grpc::ServerContext* ctx, const etcdserverpb::AuthDisableRequest& req,
                       etcdserverpb::AuthDisableResponse* resp);
  grpc::Status Authenticate(grpc::ServerContext* ctx, const etcdserverpb::AuthenticateRequest& req,
                            etcdserverpb::AuthenticateResponse* resp);
  grpc::Status UserAdd(grpc::ServerContext* ctx, const etcdserverpb::AuthUserAddRequest& req,
                       etcdserverpb::AuthUserAddResponse* resp);
  grpc::Status UserGet(grpc::ServerContext* ctx, const etcdserverpb::AuthUserGetRequest& req,
                       etcdserverpb::AuthUserGetResponse* resp);
  grpc::Status UserList(grpc::ServerContext* ctx, const etcdserverpb::AuthUserListRequest& req,
                        etcdserverpb::AuthUserListResponse* resp);
  grpc::Status UserDelete(grpc::ServerContext* ctx, const etcdserverpb::AuthUserDeleteRequest& req,
                          etcdserverpb::AuthUserDeleteResponse* resp);
  grpc::Status UserChangePassword(grpc::ServerContext* ctx,
                                  const etcdserverpb::AuthUserChangePasswordRequest& req,
                                  etcdserverpb::AuthUserChangePasswordResponse* resp);
  grpc::Status UserGrantRole(grpc::ServerContext* ctx,
                             const etcdserverpb::AuthUserGrantRoleRequest& req,
                             etcdserverpb::AuthUserGrantRoleResponse* resp);
  grpc::Status UserRevokeRole(grpc::ServerContext* ctx,
                              const etcdserverpb::AuthUserRevokeRoleRequest& req,
                              etcdserverpb::AuthUserRevokeRoleResponse* resp);
  grpc::Status RoleAdd(grpc::ServerContext* ctx, const etcdserverpb::AuthRoleAddRequest& req,
                       etcdserverpb::AuthRoleAddResponse* resp);
  grpc::Status RoleGet(grpc::ServerContext* ctx, const etcdserverpb::AuthRoleGetRequest& req,
                       etcdserverpb::AuthRoleGetResponse* resp);
  grpc::Status RoleList(grpc::ServerContext* ctx, const etcdserverpb::AuthRoleListRequest& req,
                        etcdserverpb::AuthRoleListResponse* resp);
  grpc::Status RoleDelete(grpc::ServerContext* ctx, const etcdserverpb::AuthRoleDeleteRequest& req,
                          etcdserverpb::AuthRoleDeleteResponse* resp);
  grpc::Status RoleGrantPermission(grpc::ServerContext* ctx,
                                   const etcdserverpb::AuthRoleGrantPermissionRequest& req,
                                   etcdserverpb::AuthRoleGrantPermissionResponse* resp);
  grpc::Status RoleRevokePermission(grpc::ServerContext* ctx,
                                    const etcdserverpb::AuthRoleRevokePermissionRequest& req,
                                    etcdserverpb::AuthRoleRevokePermissionResponse* resp);

  // Checks the caller is root (auth on), proposes `cmd` and waits for its
  // apply; fills `header`.
  absl::Status Change(grpc::ServerContext* ctx, kvpb::AuthCommand cmd,
                      etcdserverpb::ResponseHeader* header);
  // A ReadIndex: this member's store is then at least as new as any change
  // acknowledged before the call.
  absl::Status Linearize(grpc::ServerContext* ctx);
  // `s` as a gRPC status, logged (without passwords) when it is an error.
  grpc::Status Answer(grpc::ServerContext* ctx, const char* method, const absl::Status& s) const;

  const EtcdContext c_;
  const AuthStore& store_;
};

}  // namespace raftkv::server::etcd

#endif  // RAFTKV_SERVER_ETCD_AUTH_SERVICE_H_
