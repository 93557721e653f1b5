// NodeTls: a node's TLS set-up from its eight flags (etcd's names):
// clients' certificate, key, trusted CA and whether client certificates are
// required; the same four for peers.
//
// One listener serves clients and peers, so it is TLS for both or for
// neither. It presents the client certificate and trusts the client CA and
// the peer CA. Outgoing peer connections (Raft messages, snapshots, a
// member's Admin calls to another) present the peer certificate and trust
// both CAs (the other members' listeners present their client
// certificates). With --peer_client_cert_auth a peer stream must come with a
// certificate the peer CA signed (AuthorizePeer): a client certificate from
// another CA cannot send Raft messages. With --client_cert_auth every
// connection must present a verified certificate, so admin calls
// (membership, leadership transfer, fault injection) need one too.
//
// Thread safety: every method may be called from any thread.
#ifndef RAFTKV_SERVER_NODE_TLS_H_
#define RAFTKV_SERVER_NODE_TLS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_context.h"
#include "server/tls_watcher.h"
#include "tls/pem_bundle.h"

namespace raftkv::server {

struct NodeTlsOptions {
  // --cert_file, --key_file, --trusted_ca_file, --client_cert_auth.
  std::string cert_file, key_file, trusted_ca_file;
  bool client_cert_auth = false;
  // --peer_cert_file, --peer_key_file, --peer_trusted_ca_file,
  // --peer_client_cert_auth.
  std::string peer_cert_file, peer_key_file, peer_trusted_ca_file;
  bool peer_client_cert_auth = false;
  // Private directory for staged copies (e.g. DATA_DIR/tls).
  std::string stage_dir;
  absl::Duration poll_interval = absl::Seconds(1);

  bool enabled() const { return !cert_file.empty() || !peer_cert_file.empty(); }
  // Messages name the flags.
  absl::Status Validate() const;
};

class NodeTls {
 public:
  // Checks the files (errors name the flag and file) and starts watching
  // them. Without TLS (no certificate given) everything is plaintext.
  static absl::StatusOr<std::unique_ptr<NodeTls>> Start(NodeTlsOptions options);

  bool enabled() const { return listener_ != nullptr; }
  // The listener's credentials (insecure without TLS).
  std::shared_ptr<grpc::ServerCredentials> ListenerCredentials() const;
  // For every connection this node opens to another member.
  std::shared_ptr<grpc::ChannelCredentials> PeerChannelCredentials() const;
  // OK, or PERMISSION_DENIED naming what is missing, for a Peer stream's
  // caller (see the file comment).
  grpc::Status AuthorizePeer(const grpc::ServerContextBase& context) const;

  // Files taken and refused since the start, over both sides.
  uint64_t reloads() const;
  uint64_t refused() const;

 private:
  explicit NodeTls(NodeTlsOptions options) : options_(std::move(options)) {}

  const NodeTlsOptions options_;
  std::unique_ptr<CertificateWatcher> listener_;  // client identity, both CAs
  std::unique_ptr<CertificateWatcher> peer_;      // peer identity, both CAs
  std::unique_ptr<CertificateWatcher> peer_ca_;   // the peer CA alone, if it differs
};

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_NODE_TLS_H_
