#include "server/etcd/authorizer.h"

#include <openssl/bio.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "server/etcd/errors.h"

namespace raftkv::server::etcd {
namespace {

using authpb::Permission;

std::string Metadata(const grpc::ServerContextBase& ctx, const char* key) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// The common name of the first certificate in `pem`; "" if none.
std::string CommonName(absl::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                &BIO_free);
  if (bio == nullptr) return "";
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (cert == nullptr) return "";
  X509_NAME* subject = X509_get_subject_name(cert.get());
  const int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (i < 0) return "";
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), n);
  OPENSSL_free(utf8);
  return out;
}

}  // namespace

absl::StatusOr<AuthInfo> Authorizer::Caller(const grpc::ServerContextBase& ctx) const {
  AuthInfo who;
  who.revision = store_->revision();
  // Resolved whether or not auth is on now: a request may be checked again
  // after auth came on (a write refused at apply, then retried).
  std::string token = Metadata(ctx, "token");
  if (token.empty()) token = Metadata(ctx, "authorization");  // etcd's gateway's name
  if (!token.empty()) {
    std::optional<std::string> user = tokens_->User(token);
    if (user.has_value()) {
      who.user = *user;
    } else {
      who.invalid_token = true;
      if (store_->enabled()) return EtcdError(Error::kInvalidAuthToken);
    }
    return who;
  }
  if (client_cert_auth_) {
    // The handshake verified the certificate (--client_cert_auth): its CN.
    std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
    if (auth != nullptr) {
      std::vector<grpc::string_ref> pem = auth->FindPropertyValues("x509_pem_cert");
      if (!pem.empty()) who.user = CommonName(absl::string_view(pem[0].data(), pem[0].size()));
    }
  }
  return who;
}

absl::Status Authorizer::CheckAdmin(const grpc::ServerContextBase& ctx) const {
  if (!store_->enabled()) return absl::OkStatus();
  absl::StatusOr<AuthInfo> who = Caller(ctx);
  if (!who.ok()) return who.status();
  return store_->CheckAdmin(*who);
}

absl::Status Authorizer::CheckRead(const AuthInfo& who,
                                   const etcdserverpb::RangeRequest& r) const {
  if (who.invalid_token && store_->enabled()) return EtcdError(Error::kInvalidAuthToken);
  AuthInfo now = who;
  now.revision = store_->revision();
  return store_->CheckRange(now, r.key(), r.range_end(), Permission::READ);
}

absl::Status Authorizer::CheckRead(const AuthInfo& who, const etcdserverpb::TxnRequest& t) const {
  if (who.invalid_token && store_->enabled()) return EtcdError(Error::kInvalidAuthToken);
  AuthInfo now = who;
  now.revision = store_->revision();
  return CheckTxn(now, t);
}

absl::Status Authorizer::CheckTxn(const AuthInfo& who, const etcdserverpb::TxnRequest& t) const {
  for (const etcdserverpb::Compare& c : t.compare()) {
    if (absl::Status s = store_->CheckRange(who, c.key(), c.range_end(), Permission::READ);
        !s.ok()) {
      return s;
    }
  }
  for (const auto* ops : {&t.success(), &t.failure()}) {
    for (const etcdserverpb::RequestOp& op : *ops) {
      absl::Status s;
      switch (op.request_case()) {
        case etcdserverpb::RequestOp::kRequestRange:
          s = store_->CheckRange(who, op.request_range().key(), op.request_range().range_end(),
                                 Permission::READ);
          break;
        case etcdserverpb::RequestOp::kRequestPut:
          s = store_->CheckRange(who, op.request_put().key(), "", Permission::WRITE);
          if (s.ok() && op.request_put().prev_kv()) {
            s = store_->CheckRange(who, op.request_put().key(), "", Permission::READ);
          }
          break;
        case etcdserverpb::RequestOp::kRequestDeleteRange: {
          const auto& d = op.request_delete_range();
          if (d.prev_kv()) s = store_->CheckRange(who, d.key(), d.range_end(), Permission::READ);
          if (s.ok()) s = store_->CheckRange(who, d.key(), d.range_end(), Permission::WRITE);
          break;
        }
        case etcdserverpb::RequestOp::kRequestTxn:
          s = CheckTxn(who, op.request_txn());
          break;
        case etcdserverpb::RequestOp::REQUEST_NOT_SET:
          break;
      }
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Authorizer::CheckWrite(AuthInfo who, kvpb::EtcdWrite* w) const {
  // The revision is read before the rights: a change in between shows as an
  // old revision (here, or at apply), never as rights of a newer state
  // stamped with an older revision.
  who.revision = store_->revision();
  if (who.invalid_token && store_->enabled()) return EtcdError(Error::kInvalidAuthToken);
  absl::Status s;
  switch (w->request_case()) {
    case kvpb::EtcdWrite::kPut:
      s = store_->CheckRange(who, w->put().key(), "", Permission::WRITE);
      if (s.ok() && w->put().prev_kv()) {
        s = store_->CheckRange(who, w->put().key(), "", Permission::READ);
      }
      break;
    case kvpb::EtcdWrite::kDeleteRange: {
      const auto& d = w->delete_range();
      if (d.prev_kv()) s = store_->CheckRange(who, d.key(), d.range_end(), Permission::READ);
      if (s.ok()) s = store_->CheckRange(who, d.key(), d.range_end(), Permission::WRITE);
      break;
    }
    case kvpb::EtcdWrite::kTxn:
      s = CheckTxn(who, w->txn());
      break;
    case kvpb::EtcdWrite::kCompaction:
      // etcd 3.4 lets any user compact; raftkv keeps it to root.
      s = store_->CheckAdmin(who);
      break;
    case kvpb::EtcdWrite::REQUEST_NOT_SET:
      break;
  }
  if (!s.ok()) return s;
  w->mutable_auth()->set_revision(who.revision);
  return absl::OkStatus();
}

}  // namespace raftkv::server::etcd
