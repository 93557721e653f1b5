// Channel credentials for a client of a TLS cluster, from etcdctl's three
// flags (--cacert, --cert, --key), and a diagnosis of a connection that
// failed, in plain words.
//
// gRPC reports most TLS failures as a bare "Socket closed" (a plaintext
// client at a TLS node, a client certificate the node refuses) or as
// "certificate verify failed" (an unknown CA and an expired certificate
// alike), which a client cannot tell from a node that is restarting and
// would retry until its timeout. DiagnoseTls makes one handshake of its own
// with OpenSSL and names what is wrong.
//
// Thread safety: functions only; safe from any thread.
#ifndef RAFTKV_CLIENT_TLS_CREDENTIALS_H_
#define RAFTKV_CLIENT_TLS_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"

namespace raftkv::client {

struct TlsClientFiles {
  std::string ca_file;    // trusted CA(s), PEM; empty: the system's roots
  std::string cert_file;  // this client's certificate, PEM; empty: none
  std::string key_file;   // its key
  // Any file given: the client speaks TLS.
  bool enabled() const { return !ca_file.empty() || !cert_file.empty() || !key_file.empty(); }
};

// Plaintext credentials if no file is given, else TLS ones made from the
// files, read and checked now (tls/pem_bundle.h). InvalidArgument or
// NotFound naming the file (and the etcdctl flag) otherwise.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const TlsClientFiles& files);

// Whether a failed call's gRPC message may come from a TLS problem (a
// handshake failure, or a connection closed at once).
bool MayBeTlsFailure(absl::string_view grpc_message);

// One handshake with `endpoint` ("host:port") as `files` describe (none:
// a plaintext client asking whether the node wants TLS), within `timeout`.
// A sentence naming the problem if it is one no retry can fix (the node
// wants TLS or does not speak it; its certificate is expired, not for this
// host, or from a CA the client does not trust; it wants a client
// certificate or refuses this one); "" if no such problem shows (the node
// is down, say).
std::string DiagnoseTls(const std::string& endpoint, const TlsClientFiles& files,
                        absl::Duration timeout);

}  // namespace raftkv::client

#endif  // RAFTKV_CLIENT_TLS_CREDENTIALS_H_
