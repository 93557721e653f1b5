#include "server/tls_watcher.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "storage/synced_file.h"

namespace raftkv::server {
namespace {

// (inode, size, mtime) of every file: a change in any means "read again".
std::string StampOf(const tls::TlsFiles& files) {
  std::string stamp;
  auto add = [&stamp](const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      absl::StrAppend(&stamp, path, ":missing;");
      return;
    }
    absl::StrAppend(&stamp, path, ":", st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".",
                    st.st_mtim.tv_nsec, ";");
  };
  if (files.has_identity()) {
    add(files.cert_file);
    add(files.key_file);
  }
  for (const std::string& f : files.ca_files) add(f);
  return stamp;
}

}  // namespace

absl::Status CertificateWatcherOptions::Validate() const {
  if (absl::Status s = files.Validate(); !s.ok()) return s;
  if (stage_dir.empty()) return absl::InvalidArgumentError("no stage_dir for TLS files");
  if (poll_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("poll_interval must be positive");
  }
  return absl::OkStatus();
}

CertificateWatcher::CertificateWatcher(CertificateWatcherOptions options)
    : options_(std::move(options)),
      identity_path_(options_.stage_dir + "/identity.pem"),
      ca_path_(options_.stage_dir + "/ca.pem") {}

absl::StatusOr<std::unique_ptr<CertificateWatcher>> CertificateWatcher::Start(
    CertificateWatcherOptions options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  if (::mkdir(options.stage_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(
        absl::StrCat("creating ", options.stage_dir, ": ", std::strerror(errno)));
  }
  ::chmod(options.stage_dir.c_str(), 0700);  // it holds a copy of the private key
  std::unique_ptr<CertificateWatcher> w(new CertificateWatcher(std::move(options)));
  {
    absl::MutexLock l(&w->mu_);
    if (absl::Status s = w->Refresh(/*force=*/true); !s.ok()) return s;
  }
  const CertificateWatcherOptions& o = w->options_;
  // gRPC re-reads the staged files each second; one path for key and chain.
  w->provider_ = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      o.files.has_identity() ? w->identity_path_ : "",
      o.files.has_identity() ? w->identity_path_ : "", o.files.ca_files.empty() ? "" : w->ca_path_,
      /*refresh_interval_sec=*/1);
  w->poller_ = std::thread([p = w.get()] { p->Poll(); });
  return w;
}

CertificateWatcher::~CertificateWatcher() {
  stop_.Notify();
  if (poller_.joinable()) poller_.join();
}

absl::Status CertificateWatcher::Refresh(bool force) {
  const std::string stamp = StampOf(options_.files);
  if (!force && stamp == stamp_) return absl::OkStatus();
  absl::StatusOr<tls::PemBundle> bundle = tls::LoadPemBundle(options_.files);
  if (!bundle.ok()) {
    // Judged once per change: a file half-written now is read again when
    // its writer finishes (its stamp changes again).
    stamp_ = stamp;
    return bundle.status();
  }
  if (absl::Status s = Stage(*bundle); !s.ok()) return s;
  stamp_ = stamp;
  ca_ = bundle->ca;
  if (!force) {
    reloads_.fetch_add(1);
    LOG(INFO) << "TLS files reloaded" << (bundle->subject.empty() ? "" : ": ")
              << bundle->subject
              << (options_.files.has_identity()
                      ? absl::StrCat(", valid until ",
                                     absl::FormatTime(bundle->not_after, absl::UTCTimeZone()))
                      : "");
  }
  return absl::OkStatus();
}

absl::Status CertificateWatcher::Stage(const tls::PemBundle& bundle) {
  if (!bundle.cert_chain.empty()) {
    std::string identity = bundle.private_key;
    if (!identity.empty() && identity.back() != '\n') identity += '\n';
    identity += bundle.cert_chain;
    if (absl::Status s = storage::WriteFileAtomically(identity_path_, identity); !s.ok()) {
      return s;
    }
  }
  if (!bundle.ca.empty()) return storage::WriteFileAtomically(ca_path_, bundle.ca);
  return absl::OkStatus();
}

absl::Status CertificateWatcher::CheckNow() {
  absl::MutexLock l(&mu_);
  absl::Status s = Refresh(/*force=*/false);
  if (!s.ok()) {
    refused_.fetch_add(1);
    LOG(WARNING) << "refusing the new TLS files, keeping the current ones: " << s.message();
  }
  return s;
}

void CertificateWatcher::Poll() {
  while (!stop_.WaitForNotificationWithTimeout(options_.poll_interval)) (void)CheckNow();
}

std::string CertificateWatcher::TrustedCa() const {
  absl::MutexLock l(&mu_);
  return ca_;
}

std::shared_ptr<grpc::ServerCredentials> CertificateWatcher::ServerCredentials(
    ClientCertPolicy policy) const {
  CHECK(options_.files.has_identity()) << "a TLS listener needs a certificate";
  CHECK(policy == ClientCertPolicy::kNone || !options_.files.ca_files.empty())
      << "verifying client certificates needs a trusted CA file";
  grpc::experimental::TlsServerCredentialsOptions o(provider_);
  o.watch_identity_key_cert_pairs();
  switch (policy) {
    case ClientCertPolicy::kNone:
      o.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
      break;
    case ClientCertPolicy::kVerifyIfPresent:
      o.watch_root_certs();
      o.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
      break;
    case ClientCertPolicy::kRequire:
      o.watch_root_certs();
      o.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
      break;
  }
  return grpc::experimental::TlsServerCredentials(o);
}

std::shared_ptr<grpc::ChannelCredentials> CertificateWatcher::ChannelCredentials() const {
  grpc::experimental::TlsChannelCredentialsOptions o;
  o.set_certificate_provider(provider_);
  if (!options_.files.ca_files.empty()) o.watch_root_certs();
  if (options_.files.has_identity()) o.watch_identity_key_cert_pairs();
  return grpc::experimental::TlsCredentials(o);
}

}  // namespace raftkv::server
