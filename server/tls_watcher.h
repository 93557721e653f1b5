// CertificateWatcher: one listener's or one outgoing side's TLS files (a
// certificate, its key, trusted CAs) turned into gRPC credentials that follow
// the files without a restart.
//
// The files are checked with tls::LoadPemBundle when the watcher starts (an
// error then is returned: the node refuses to start) and whenever one of them
// changes (polled every `poll_interval`). A good set is staged in a private
// directory as one identity file (key and chain together, written by one
// rename, so gRPC never pairs a new key with an old certificate) and one CA
// file; gRPC's FileWatcherCertificateProvider re-reads those each second,
// and new handshakes use them. A bad set (unreadable, mismatched key,
// expired, not PEM) is refused with a warning and the staged set kept: gRPC's
// own file watcher would drop its credentials and fail every handshake.
// Established connections keep the certificate they were opened with.
//
// Thread safety: every method may be called from any thread.
#ifndef RAFTKV_SERVER_TLS_WATCHER_H_
#define RAFTKV_SERVER_TLS_WATCHER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "tls/pem_bundle.h"

namespace raftkv::server {

struct CertificateWatcherOptions {
  // What to serve or present and whom to trust. Without an identity the
  // watcher can only make channel credentials (a client that presents no
  // certificate); without CA files, channels trust the system's roots.
  tls::TlsFiles files;
  // Private directory for the staged copies (created, mode 0700).
  std::string stage_dir;
  absl::Duration poll_interval = absl::Seconds(1);

  absl::Status Validate() const;
};

// Whether a TLS listener asks connecting clients for a certificate.
enum class ClientCertPolicy {
  kNone,             // never asks
  kVerifyIfPresent,  // a client may present none; one it presents must verify
  kRequire,          // the handshake fails without a verified certificate
};

class CertificateWatcher {
 public:
  // Checks and stages the files, then polls them on a thread of its own.
  static absl::StatusOr<std::unique_ptr<CertificateWatcher>> Start(
      CertificateWatcherOptions options);
  ~CertificateWatcher();  // stops polling

  CertificateWatcher(const CertificateWatcher&) = delete;
  CertificateWatcher& operator=(const CertificateWatcher&) = delete;

  // Credentials for a listener. REQUIRES: the files have an identity;
  // a policy other than kNone needs CA files.
  std::shared_ptr<grpc::ServerCredentials> ServerCredentials(ClientCertPolicy policy) const;
  // Credentials for outgoing channels: servers are verified against the CA
  // files (and their host name against the address dialled); the identity,
  // if any, is presented to servers that ask.
  std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials() const;

  // The CA bundle staged now (PEM), for checks gRPC does not make itself.
  std::string TrustedCa() const ABSL_LOCKS_EXCLUDED(mu_);
  // Sets of files taken since the start, and refused.
  uint64_t reloads() const { return reloads_.load(); }
  uint64_t refused() const { return refused_.load(); }

  // Checks the files now, as the poller does: OK if they are unchanged or
  // were taken; the refusal otherwise.
  absl::Status CheckNow() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  explicit CertificateWatcher(CertificateWatcherOptions options);
  // Checks and stages the current files if any changed since `stamp_`.
  absl::Status Refresh(bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Stage(const tls::PemBundle& bundle) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Poll();

  const CertificateWatcherOptions options_;
  const std::string identity_path_;
  const std::string ca_path_;
  mutable absl::Mutex mu_;
  std::string stamp_ ABSL_GUARDED_BY(mu_);  // the files' (inode, size, mtime) when last read
  std::string ca_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<grpc::experimental::FileWatcherCertificateProvider> provider_;
  std::atomic<uint64_t> reloads_{0};
  std::atomic<uint64_t> refused_{0};
  absl::Notification stop_;
  std::thread poller_;
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_TLS_WATCHER_H_
