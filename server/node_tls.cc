#include "server/node_tls.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/security/auth_context.h"

namespace raftkv::server {
namespace {

// Both CA files, the first given first, each once.
std::vector<std::string> BothCas(const std::string& first, const std::string& second) {
  std::vector<std::string> out;
  if (!first.empty()) out.push_back(first);
  if (!second.empty() && second != first) out.push_back(second);
  return out;
}

absl::StatusOr<std::unique_ptr<CertificateWatcher>> Watch(tls::TlsFiles files,
                                                          const NodeTlsOptions& o,
                                                          const std::string& name,
                                                          absl::string_view flags) {
  CertificateWatcherOptions w;
  w.files = std::move(files);
  w.stage_dir = absl::StrCat(o.stage_dir, "/", name);
  w.poll_interval = o.poll_interval;
  auto watcher = CertificateWatcher::Start(std::move(w));
  if (!watcher.ok()) {
    return absl::Status(watcher.status().code(),
                        absl::StrCat(flags, ": ", watcher.status().message()));
  }
  return watcher;
}

}  // namespace

absl::Status NodeTlsOptions::Validate() const {
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError("--cert_file and --key_file go together");
  }
  if (peer_cert_file.empty() != peer_key_file.empty()) {
    return absl::InvalidArgumentError("--peer_cert_file and --peer_key_file go together");
  }
  if (client_cert_auth && trusted_ca_file.empty()) {
    return absl::InvalidArgumentError("--client_cert_auth needs --trusted_ca_file");
  }
  if (peer_client_cert_auth && peer_trusted_ca_file.empty()) {
    return absl::InvalidArgumentError("--peer_client_cert_auth needs --peer_trusted_ca_file");
  }
  if (cert_file.empty() && (client_cert_auth || !trusted_ca_file.empty())) {
    return absl::InvalidArgumentError(
        "--trusted_ca_file and --client_cert_auth need --cert_file and --key_file");
  }
  if (peer_cert_file.empty() && (peer_client_cert_auth || !peer_trusted_ca_file.empty())) {
    return absl::InvalidArgumentError(
        "--peer_trusted_ca_file and --peer_client_cert_auth need --peer_cert_file and "
        "--peer_key_file");
  }
  if (cert_file.empty() != peer_cert_file.empty()) {
    return absl::InvalidArgumentError(
        "clients and peers share this node's one listener, so TLS needs both --cert_file and "
        "--peer_cert_file (the same files will do)");
  }
  if (!peer_cert_file.empty() && peer_trusted_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "--peer_cert_file needs --peer_trusted_ca_file (the CA members' certificates are "
        "checked against)");
  }
  if (enabled() && stage_dir.empty()) return absl::InvalidArgumentError("no TLS stage dir");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<NodeTls>> NodeTls::Start(NodeTlsOptions options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  std::unique_ptr<NodeTls> t(new NodeTls(std::move(options)));
  const NodeTlsOptions& o = t->options_;
  if (!o.enabled()) return t;
  if (::mkdir(o.stage_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("creating ", o.stage_dir, ": ", std::strerror(errno)));
  }
  auto listener = Watch({o.cert_file, o.key_file, BothCas(o.trusted_ca_file, o.peer_trusted_ca_file)},
                        o, "listener", "--cert_file/--key_file/--trusted_ca_file");
  if (!listener.ok()) return listener.status();
  t->listener_ = std::move(*listener);
  auto peer = Watch({o.peer_cert_file, o.peer_key_file,
                     BothCas(o.peer_trusted_ca_file, o.trusted_ca_file)},
                    o, "peer", "--peer_cert_file/--peer_key_file/--peer_trusted_ca_file");
  if (!peer.ok()) return peer.status();
  t->peer_ = std::move(*peer);
  if (o.peer_client_cert_auth && o.peer_trusted_ca_file != o.trusted_ca_file) {
    auto peer_ca = Watch({"", "", {o.peer_trusted_ca_file}}, o, "peer-ca", "--peer_trusted_ca_file");
    if (!peer_ca.ok()) return peer_ca.status();
    t->peer_ca_ = std::move(*peer_ca);
  }
  return t;
}

std::shared_ptr<grpc::ServerCredentials> NodeTls::ListenerCredentials() const {
  if (!enabled()) return grpc::InsecureServerCredentials();
  ClientCertPolicy policy = ClientCertPolicy::kNone;
  if (options_.client_cert_auth) {
    policy = ClientCertPolicy::kRequire;
  } else if (options_.peer_client_cert_auth) {
    policy = ClientCertPolicy::kVerifyIfPresent;  // peers present one; clients may not
  }
  return listener_->ServerCredentials(policy);
}

std::shared_ptr<grpc::ChannelCredentials> NodeTls::PeerChannelCredentials() const {
  if (!enabled()) return grpc::InsecureChannelCredentials();
  return peer_->ChannelCredentials();
}

grpc::Status NodeTls::AuthorizePeer(const grpc::ServerContextBase& context) const {
  if (!enabled() || !options_.peer_client_cert_auth) return grpc::Status::OK;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  std::vector<grpc::string_ref> pem =
      auth == nullptr ? std::vector<grpc::string_ref>() : auth->FindPropertyValues("x509_pem_cert");
  if (pem.empty()) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "a peer stream needs a client certificate (--peer_client_cert_auth)");
  }
  if (peer_ca_ == nullptr) return grpc::Status::OK;  // the handshake verified it: one CA
  absl::Status s = tls::VerifyCertificate(absl::string_view(pem[0].data(), pem[0].size()),
                                          peer_ca_->TrustedCa());
  if (!s.ok()) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("not a peer certificate (--peer_trusted_ca_file): ",
                                     s.message()));
  }
  return grpc::Status::OK;
}

uint64_t NodeTls::reloads() const {
  uint64_t n = 0;
  for (const auto* w : {listener_.get(), peer_.get(), peer_ca_.get()}) {
    if (w != nullptr) n += w->reloads();
  }
  return n;
}

uint64_t NodeTls::refused() const {
  uint64_t n = 0;
  for (const auto* w : {listener_.get(), peer_.get(), peer_ca_.get()}) {
    if (w != nullptr) n += w->refused();
  }
  return n;
}

}  // namespace raftkv::server
