// Authorizer: who an etcd call runs as and what it may do, once etcd's auth
// is enabled (server/etcd/auth_store.h). The user comes, as in etcd, from
// the call's metadata "token" (an Authenticate token of this member,
// server/etcd/auth_tokens.h); without one, and with --client_cert_auth, from
// the verified client certificate's common name. With auth off every call
// passes and tokens are ignored.
//
// Checks follow etcd's authApplierV3: Range needs READ of its range; Put
// WRITE of its key (and READ with prev_kv); DeleteRange WRITE of its range
// (and READ with prev_kv); Txn READ of every compare's range and the rights
// of every op (nested txns too, which etcd 3.4 leaves unchecked). Admin
// calls need the root role. Every check reads the auth state at one
// revision, which a write carries into the log (kvpb::EtcdWrite.auth): the
// apply refuses it if auth changed since ("revision of auth store is old").
//
// Thread safety: thread-safe; the store and tokens outlive it.
#ifndef RAFTKV_SERVER_ETCD_AUTHORIZER_H_
#define RAFTKV_SERVER_ETCD_AUTHORIZER_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"
#include "proto/etcd/rpc.pb.h"
#include "proto/kv.pb.h"
#include "server/etcd/auth_store.h"
#include "server/etcd/auth_tokens.h"

namespace raftkv::server::etcd {

class Authorizer {
 public:
  Authorizer(const AuthStore* store, AuthTokens* tokens, bool client_cert_auth)
      : store_(store), tokens_(tokens), client_cert_auth_(client_cert_auth) {}

  const AuthStore& store() const { return *store_; }
  AuthTokens* tokens() const { return tokens_; }

  // The caller (revision: the store's now): the token's user, else the
  // certificate's; an empty user without credentials. kInvalidAuthToken for
  // a token that is not live on this member while auth is on (with auth off
  // such a caller gets invalid_token, refused by the checks once it is on).
  absl::StatusOr<AuthInfo> Caller(const grpc::ServerContextBase& ctx) const;

  // The caller must hold the root role (auth off: anyone).
  absl::Status CheckAdmin(const grpc::ServerContextBase& ctx) const;

  // etcd's rights for a read (Range, read-only Txn) by `who` at the store's
  // current state.
  absl::Status CheckRead(const AuthInfo& who, const etcdserverpb::RangeRequest& r) const;
  absl::Status CheckRead(const AuthInfo& who, const etcdserverpb::TxnRequest& t) const;
  // The rights for `w`, checked at one revision, which it stamps into
  // w->auth (Compact: root only).
  absl::Status CheckWrite(AuthInfo who, kvpb::EtcdWrite* w) const;

 private:
  absl::Status CheckTxn(const AuthInfo& who, const etcdserverpb::TxnRequest& t) const;

  const AuthStore* const store_;
  AuthTokens* const tokens_;
  const bool client_cert_auth_;
};

}  // namespace raftkv::server::etcd

#endif  // RAFTKV_SERVER_ETCD_AUTHORIZER_H_
