#include "server/etcd/auth_service.h"

#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "glog/logging.h"
#include "google/protobuf/descriptor.h"
#include "server/await_node.h"
#include "server/etcd/errors.h"
#include "server/etcd/password.h"
#include "server/raw_unary.h"

namespace raftkv::server::etcd {
namespace {

using namespace etcdserverpb;  // NOLINT: the Auth messages, one per method

// Changes refused at apply because auth changed since their check are
// checked and proposed again, up to this many times in all.
constexpr int kAttempts = 5;

}  // namespace

template <typename Req, typename Resp>
void AuthService::Mark(const char* method,
                       grpc::Status (AuthService::*handler)(grpc::ServerContext*, const Req&,
                                                            Resp*)) {
  const google::protobuf::MethodDescriptor* m =
      AuthEnableRequest::descriptor()->file()->FindServiceByName("Auth")->FindMethodByName(method);
  CHECK(m != nullptr) << "no method etcdserverpb.Auth." << method;
  MarkMethodStreamed(m->index(),
                     RawUnaryHandler<Req, Resp>([this, handler](grpc::ServerContext* ctx,
                                                                const Req& req, Resp* resp) {
                       return (this->*handler)(ctx, req, resp);
                     }));
}

AuthService::AuthService(EtcdContext ctx) : c_(std::move(ctx)), store_(c_.sm->etcd_auth()) {
  CHECK(c_.auth != nullptr) << "the Auth service needs an authorizer";
  Mark("AuthEnable", &AuthService::Enable);
  Mark("AuthDisable", &AuthService::Disable);
  Mark("Authenticate", &AuthService::Authenticate);
  Mark("UserAdd", &AuthService::UserAdd);
  Mark("UserGet", &AuthService::UserGet);
  Mark("UserList", &AuthService::UserList);
  Mark("UserDelete", &AuthService::UserDelete);
  Mark("UserChangePassword", &AuthService::UserChangePassword);
  Mark("UserGrantRole", &AuthService::UserGrantRole);
  Mark("UserRevokeRole", &AuthService::UserRevokeRole);
  Mark("RoleAdd", &AuthService::RoleAdd);
  Mark("RoleGet", &AuthService::RoleGet);
  Mark("RoleList", &AuthService::RoleList);
  Mark("RoleDelete", &AuthService::RoleDelete);
  Mark("RoleGrantPermission", &AuthService::RoleGrantPermission);
  Mark("RoleRevokePermission", &AuthService::RoleRevokePermission);
}

grpc::Status AuthService::Answer(grpc::ServerContext* ctx, const char* method,
                                 const absl::Status& s) const {
  if (!s.ok()) VLOG(1) << "etcd Auth." << method << " from " << ctx->peer() << ": " << s;
  return ToGrpc(s);
}

absl::Status AuthService::Linearize(grpc::ServerContext* ctx) {
  const absl::Time deadline = DeadlineOf(c_, ctx->deadline());
  absl::StatusOr<bool> r = AwaitNode<bool>(deadline, [&](std::function<void(absl::StatusOr<bool>)> done) {
    c_.node->Read(deadline, [done = std::move(done)](absl::Status s) {
      if (s.ok()) {
        done(true);
      } else {
        done(s);
      }
    });
  });
  return FromNode(r.status());
}

absl::Status AuthService::Change(grpc::ServerContext* ctx, kvpb::AuthCommand cmd,
                                 ResponseHeader* header) {
  const absl::Time deadline = DeadlineOf(c_, ctx->deadline());
  absl::Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    absl::StatusOr<AuthInfo> who = c_.auth->Caller(*ctx);
    if (!who.ok()) return who.status();
    // The revision first: a change between it and the check shows at apply.
    cmd.set_auth_revision(who->revision);
    if (absl::Status s = store_.CheckAdmin(*who); !s.ok()) return s;
    kvpb::Command command;
    *command.mutable_auth() = cmd;
    absl::StatusOr<kvpb::WriteResult> r = AwaitNode<kvpb::WriteResult>(
        deadline, [&](std::function<void(absl::StatusOr<kvpb::WriteResult>)> done) {
          c_.propose(command.SerializeAsString(), deadline, std::move(done));
        });
    last = r.status();
    if (IsEtcdError(last, Error::kAuthOldRevision)) {
      // Checked again once this member applied the change.
      if (absl::Status s = Linearize(ctx); !s.ok()) return s;
      continue;
    }
    if (absl::IsDeadlineExceeded(last)) return EtcdError(Error::kTimeout);
    if (!last.ok()) return FromNode(last);
    FillHeader(c_, c_.sm->mvcc()->revision(), header);
    return absl::OkStatus();
  }
  return last;
}

grpc::Status AuthService::Enable(grpc::ServerContext* ctx, const AuthEnableRequest& req,
                                 AuthEnableResponse* resp) {
  kvpb::AuthCommand cmd;
  *cmd.mutable_auth_enable() = req;
  absl::Status s = Change(ctx, std::move(cmd), resp->mutable_header());
  if (s.ok()) LOG(INFO) << "etcd auth enabled";
  return Answer(ctx, "AuthEnable", s);
}

grpc::Status AuthService::Disable(grpc::ServerContext* ctx, const AuthDisableRequest& req,
                                  AuthDisableResponse* resp) {
  kvpb::AuthCommand cmd;
  *cmd.mutable_auth_disable() = req;
  absl::Status s = Change(ctx, std::move(cmd), resp->mutable_header());
  if (s.ok()) LOG(INFO) << "etcd auth disabled";
  return Answer(ctx, "AuthDisable", s);
}

grpc::Status AuthService::Authenticate(grpc::ServerContext* ctx, const AuthenticateRequest& req,
                                       AuthenticateResponse* resp) {
  const absl::Time deadline = DeadlineOf(c_, ctx->deadline());
  absl::Status s = Linearize(ctx);
  for (int attempt = 0; s.ok() && attempt < kAttempts; ++attempt) {
    if (!store_.enabled()) {
      s = EtcdError(Error::kAuthNotEnabled);
      break;
    }
    // The revision first: a change between it and the check shows at apply.
    const uint64_t revision = store_.revision();
    std::optional<authpb::User> user = store_.GetUser(req.name());
    // etcd: no such user, a user without a password, a wrong password: all
    // the same answer.
    if (!user.has_value() || user->options().no_password() ||
        !PasswordMatches(req.password(), user->password())) {
      LOG(INFO) << "etcd Authenticate from " << ctx->peer() << ": refused for user \""
                << absl::CEscape(req.name()) << "\"";
      s = EtcdError(Error::kAuthFailed);
      break;
    }
    absl::StatusOr<std::string> token = AuthTokens::New();
    if (!token.ok()) {
      s = token.status();
      break;
    }
    kvpb::Command command;
    kvpb::AuthCommand* cmd = command.mutable_auth();
    cmd->set_auth_revision(revision);
    cmd->mutable_authenticate()->set_name(req.name());
    cmd->set_token(*token);
    absl::StatusOr<kvpb::WriteResult> r = AwaitNode<kvpb::WriteResult>(
        deadline, [&](std::function<void(absl::StatusOr<kvpb::WriteResult>)> done) {
          c_.propose(command.SerializeAsString(), deadline, std::move(done));
        });
    s = r.status();
    if (IsEtcdError(s, Error::kAuthOldRevision)) {
      s = Linearize(ctx);  // checked again once this member applied the change
      continue;
    }
    if (absl::IsDeadlineExceeded(s)) s = EtcdError(Error::kTimeout);
    s = FromNode(s);
    // The token is this member's once it applied the entry: a ReadIndex
    // waits for that.
    if (s.ok()) s = Linearize(ctx);
    if (s.ok()) resp->set_token(*std::move(token));
    break;
  }
  if (s.ok() && resp->token().empty()) s = EtcdError(Error::kAuthOldRevision);
  if (s.ok()) FillHeader(c_, c_.sm->mvcc()->revision(), resp->mutable_header());
  return Answer(ctx, "Authenticate", s);
}

grpc::Status AuthService::UserAdd(grpc::ServerContext* ctx, const AuthUserAddRequest& req,
                                  AuthUserAddResponse* resp) {
  if (req.name().empty()) return Answer(ctx, "UserAdd", EtcdError(Error::kUserEmpty));
  // Only root may add users (auth on): checked before the costly hash too.
  if (absl::Status s = CheckAdmin(c_, *ctx); !s.ok()) return Answer(ctx, "UserAdd", s);
  kvpb::AuthCommand cmd;
  *cmd.mutable_user_add() = req;
  cmd.mutable_user_add()->clear_password();
  if (!req.options().no_password()) {
    absl::StatusOr<std::string> hash = HashPassword(req.password());
    if (!hash.ok()) return Answer(ctx, "UserAdd", hash.status());
    cmd.set_password_hash(*std::move(hash));
  }
  return Answer(ctx, "UserAdd", Change(ctx, std::move(cmd), resp->mutable_header()));
}

grpc::Status AuthService::UserChangePassword(grpc::ServerContext* ctx,
                                             const AuthUserChangePasswordRequest& req,
                                             AuthUserChangePasswordResponse* resp) {
  if (absl::Status s = CheckAdmin(c_, *ctx); !s.ok()) {
    return Answer(ctx, "UserChangePassword", s);
  }
  kvpb::AuthCommand cmd;
  *cmd.mutable_user_change_password() = req;
  cmd.mutable_user_change_password()->clear_password();
  absl::StatusOr<std::string> hash = HashPassword(req.password());
  if (!hash.ok()) return Answer(ctx, "UserChangePassword", hash.status());
  cmd.set_password_hash(*std::move(hash));
  return Answer(ctx, "UserChangePassword", Change(ctx, std::move(cmd), resp->mutable_header()));
}

grpc::Status AuthService::UserGet(grpc::ServerContext* ctx, const AuthUserGetRequest& req,
                                  AuthUserGetResponse* resp) {
  absl::Status s = Linearize(ctx);
  if (s.ok() && store_.enabled()) {
    // etcd: root, or the user asking about itself.
    absl::StatusOr<AuthInfo> who = c_.auth->Caller(*ctx);
    s = who.status();
    if (s.ok()) {
      s = store_.CheckAdmin(*who);
      if (!s.ok() && !who->user.empty() && who->user == req.name()) s = absl::OkStatus();
    }
  }
  if (s.ok()) {
    std::optional<authpb::User> u = store_.GetUser(req.name());
    if (!u.has_value()) {
      s = EtcdError(Error::kUserNotFound);
    } else {
      for (const std::string& role : u->roles()) resp->add_roles(role);
      FillHeader(c_, c_.sm->mvcc()->revision(), resp->mutable_header());
    }
  }
  return Answer(ctx, "UserGet", s);
}

grpc::Status AuthService::UserList(grpc::ServerContext* ctx, const AuthUserListRequest& req,
                                   AuthUserListResponse* resp) {
  (void)req;
  absl::Status s = Linearize(ctx);
  if (s.ok()) s = CheckAdmin(c_, *ctx);
  if (s.ok()) {
    for (const std::string& name : store_.UserNames()) resp->add_users(name);
    FillHeader(c_, c_.sm->mvcc()->revision(), resp->mutable_header());
  }
  return Answer(ctx, "UserList", s);
}

grpc::Status AuthService::UserDelete(grpc::ServerContext* ctx, const AuthUserDeleteRequest& req,
                                     AuthUserDeleteResponse* resp) {
  kvpb::AuthCommand cmd;
  *cmd.mutable_user_delete() = req;
  return Answer(ctx, "UserDelete", Change(ctx, std::move(cmd), resp->mutable_header()));
}

grpc::Status AuthService::UserGrantRole(grpc::ServerContext* ctx,
                                        const AuthUserGrantRoleRequest& req,
                                        AuthUserGrantRoleResponse* resp) {
  kvpb::AuthCommand cmd;
  *cmd.mutable_user_grant_role() = req;
  return Answer(ctx, "UserGrantRole", Change(ctx, std::move(cmd), resp->mutable_header()));
}

grpc::Status AuthService::UserRevokeRole(grpc::ServerContext* ctx,
                                         const AuthUserRevokeRoleRequest& req,
                                         AuthUserRevokeRoleResponse* resp) {
  kvpb::AuthCommand cmd;
  *cmd.mutable_user_revoke_role() = req;
  return Answer(ctx, "UserRevokeRole", Change(ctx, std::move(cmd), resp->mutable_header()));
}

grpc::Status AuthService::RoleAdd(grpc::ServerContext* ctx, const AuthRoleAddRequest& req,
                                  AuthRoleAddResponse* resp) {
  kvpb::AuthCommand cmd;
  *cmd.mutable_role_add() = req;
  return Answer(ctx, "RoleAdd", Change(ctx, std::move(cmd), resp->mutable_header()));
}

grpc::Status AuthService::RoleGet(grpc::ServerContext* ctx, const AuthRoleGetRequest& req,
                                  AuthRoleGetResponse* resp) {
  absl::Status s = Linearize(ctx);
  if (s.ok() && store_.enabled()) {
    // etcd: root, or a holder of the role.
    absl::StatusOr<AuthInfo> who = c_.auth->Caller(*ctx);
    s = who.status();
    if (s.ok()) {
      s = store_.CheckAdmin(*who);
      if (!s.ok() && store_.HasRole(who->user, req.role())) s = absl::OkStatus();
    }
  }
  if (s.ok()) {
    std::optional<authpb::Role> r = store_.GetRole(req.role());
    if (!r.has_value()) {
      s = EtcdError(Error::kRoleNotFound);
    } else {
      for (const authpb::Permission& p : r->keypermission()) *resp->add_perm() = p;
      FillHeader(c_, c_.sm->mvcc()->revision(), resp->mutable_header());
    }
  }
  return Answer(ctx, "RoleGet", s);
}

grpc::Status AuthService::RoleList(grpc::ServerContext* ctx, const AuthRoleListRequest& req,
                                   AuthRoleListResponse* resp) {
  (void)req;
  absl::Status s = Linearize(ctx);
  if (s.ok()) s = CheckAdmin(c_, *ctx);
  if (s.ok()) {
    for (const std::string& name : store_.RoleNames()) resp->add_roles(name);
    FillHeader(c_, c_.sm->mvcc()->revision(), resp->mutable_header());
  }
  return Answer(ctx, "RoleList", s);
}

grpc::Status AuthService::RoleDelete(grpc::ServerContext* ctx, const AuthRoleDeleteRequest& req,
                                     AuthRoleDeleteResponse* resp) {
  kvpb::AuthCommand cmd;
  *cmd.mutable_role_delete() = req;
  return Answer(ctx, "RoleDelete", Change(ctx, std::move(cmd), resp->mutable_header()));
}

grpc::Status AuthService::RoleGrantPermission(grpc::ServerContext* ctx,
                                              const AuthRoleGrantPermissionRequest& req,
                                              AuthRoleGrantPermissionResponse* resp) {
  kvpb::AuthCommand cmd;
  *cmd.mutable_role_grant_permission() = req;
  return Answer(ctx, "RoleGrantPermission", Change(ctx, std::move(cmd), resp->mutable_header()));
}

grpc::Status AuthService::RoleRevokePermission(grpc::ServerContext* ctx,
                                               const AuthRoleRevokePermissionRequest& req,
                                               AuthRoleRevokePermissionResponse* resp) {
  kvpb::AuthCommand cmd;
  *cmd.mutable_role_revoke_permission() = req;
  return Answer(ctx, "RoleRevokePermission", Change(ctx, std::move(cmd), resp->mutable_header()));
}

}  // namespace raftkv::server::etcd
