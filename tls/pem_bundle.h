// PEM files for TLS, read and checked with OpenSSL before anything uses
// them: a certificate chain and the private key that matches its first
// certificate, and a bundle of trusted CA certificates. A node or client
// that would otherwise fail every handshake (or, on a reload, start failing
// them) gets one clear error naming the file instead.
//
// Thread safety: functions only; safe from any thread.
#ifndef RAFTKV_TLS_PEM_BUNDLE_H_
#define RAFTKV_TLS_PEM_BUNDLE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace raftkv::tls {

// Which files make one side's TLS set-up. Empty = not given.
struct TlsFiles {
  std::string cert_file;  // PEM chain, the leaf first
  std::string key_file;   // PEM private key of the leaf
  // PEM bundles of trusted CAs, concatenated in order (a listener that
  // serves clients and peers trusts both CAs).
  std::vector<std::string> ca_files;

  bool has_identity() const { return !cert_file.empty(); }
  bool empty() const { return cert_file.empty() && key_file.empty() && ca_files.empty(); }
  // A certificate needs its key and a key its certificate.
  absl::Status Validate() const;
};

// The checked contents of a TlsFiles.
struct PemBundle {
  std::string cert_chain;   // PEM; empty without an identity
  std::string private_key;  // PEM; empty without an identity
  std::string ca;           // PEM; empty without CA files
  std::string subject;      // the leaf's subject, for logs
  absl::Time not_after = absl::InfiniteFuture();  // the leaf's expiry
};

// Reads every file and checks: the chain holds a certificate, valid at
// `now` (not expired, not yet valid is refused too); the key parses and is
// the leaf's; every CA file holds at least one certificate. Errors
// (InvalidArgument, or NotFound for a missing file) name the file.
absl::StatusOr<PemBundle> LoadPemBundle(const TlsFiles& files, absl::Time now = absl::Now());

// Whether the first certificate of `cert_chain_pem` (with the rest of the
// chain as intermediates) verifies against the CA certificates in `ca_pem`
// at `now`. PermissionDenied with OpenSSL's reason if not.
absl::Status VerifyCertificate(absl::string_view cert_chain_pem, absl::string_view ca_pem,
                               absl::Time now = absl::Now());

}  // namespace raftkv::tls

#endif  // RAFTKV_TLS_PEM_BUNDLE_H_
