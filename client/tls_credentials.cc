#include "client/tls_credentials.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/credentials.h"
#include "tls/pem_bundle.h"

namespace raftkv::client {
namespace {

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};

// A socket closed when it goes out of scope.
class Socket {
 public:
  Socket() = default;
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }
  void reset(int fd) { fd_ = fd; }

 private:
  int fd_ = -1;
};

// Splits "host:port" or "[v6]:port".
bool SplitHostPort(const std::string& endpoint, std::string* host, std::string* port) {
  if (!endpoint.empty() && endpoint[0] == '[') {
    const size_t close = endpoint.find(']');
    if (close == std::string::npos || close + 1 >= endpoint.size() || endpoint[close + 1] != ':') {
      return false;
    }
    *host = endpoint.substr(1, close - 1);
    *port = endpoint.substr(close + 2);
    return true;
  }
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos) return false;
  *host = endpoint.substr(0, colon);
  *port = endpoint.substr(colon + 1);
  return true;
}

// A TCP connection to host:port within `timeout`, with reads and writes
// bounded by what is left of it; -1 if none.
int Connect(const std::string& host, const std::string& port, absl::Time deadline) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = res; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      ::close(fd);
      fd = -1;
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof(err);
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0 || ::poll(&p, 1, ms) != 1 ||
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) return -1;
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

void BoundIo(int fd, absl::Duration d) {
  timeval tv = absl::ToTimeval(std::max(d, absl::Milliseconds(1)));
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

std::string Subject(X509* cert) {
  char buf[256];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof(buf));
  return buf;
}

std::string Issuer(X509* cert) {
  char buf[256];
  X509_NAME_oneline(X509_get_issuer_name(cert), buf, sizeof(buf));
  return buf;
}

std::string TimeText(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return "?";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromTM(tm, absl::UTCTimeZone()),
                          absl::UTCTimeZone());
}

// The certificate's DNS and IP names, comma-separated.
std::string NamesOf(X509* cert) {
  std::string out;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return "none";
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    std::string name;
    if (n->type == GEN_DNS) {
      name = std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                         ASN1_STRING_length(n->d.dNSName));
    } else if (n->type == GEN_IPADD) {
      const int len = ASN1_STRING_length(n->d.iPAddress);
      char buf[INET6_ADDRSTRLEN] = {0};
      inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(n->d.iPAddress), buf,
                sizeof(buf));
      name = buf;
    }
    if (!name.empty()) absl::StrAppend(&out, out.empty() ? "" : ", ", name);
  }
  GENERAL_NAMES_free(names);
  return out.empty() ? "none" : out;
}

// The reason of OpenSSL's first queued error (0 if none); clears the queue.
int FirstReason() {
  const unsigned long e = ERR_peek_error();
  ERR_clear_error();
  return e == 0 ? 0 : ERR_GET_REASON(e);
}

// A sentence for an alert the node sent about this client's certificate.
std::string ExplainClientAlert(const std::string& endpoint, const TlsClientFiles& files,
                               int reason) {
  switch (reason) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      return absl::StrCat(endpoint,
                          " requires a client certificate: give --cert and --key (signed by a "
                          "CA the node trusts)");
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
      return absl::StrCat(endpoint, " refused the client certificate ",
                          files.cert_file.empty() ? "" : files.cert_file, " (",
                          ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, 0, reason)),
                          "): it is not signed by a CA the node trusts");
    default:
      return "";
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const TlsClientFiles& files) {
  if (!files.enabled()) return grpc::InsecureChannelCredentials();
  if (files.cert_file.empty() != files.key_file.empty()) {
    return absl::InvalidArgumentError(files.cert_file.empty() ? "--key needs --cert"
                                                              : "--cert needs --key");
  }
  tls::TlsFiles f{files.cert_file, files.key_file, {}};
  if (!files.ca_file.empty()) f.ca_files.push_back(files.ca_file);
  absl::StatusOr<tls::PemBundle> b = tls::LoadPemBundle(f);
  if (!b.ok()) return b.status();
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = b->ca;  // empty: gRPC's default roots
  o.pem_cert_chain = b->cert_chain;
  o.pem_private_key = b->private_key;
  return grpc::SslCredentials(o);
}

bool MayBeTlsFailure(absl::string_view m) {
  return absl::StrContains(m, "Ssl handshake failed") ||
         absl::StrContains(m, "is not in peer certificate") ||
         absl::StrContains(m, "Socket closed") || absl::StrContains(m, "Connection reset") ||
         absl::StrContains(m, "handshake");
}

std::string DiagnoseTls(const std::string& endpoint, const TlsClientFiles& files,
                        absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string host, port;
  if (!SplitHostPort(endpoint, &host, &port)) return "";
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (ctx == nullptr) return "";
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Verification runs either way; its result is read after the handshake.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  if (files.enabled()) {
    if (!files.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx.get(), files.ca_file.c_str(), nullptr) != 1) {
        ERR_clear_error();
        return "";  // ChannelCredentialsFor reports bad files
      }
    } else {
      SSL_CTX_set_default_verify_paths(ctx.get());
    }
    if (!files.cert_file.empty() &&
        (SSL_CTX_use_certificate_chain_file(ctx.get(), files.cert_file.c_str()) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx.get(), files.key_file.c_str(), SSL_FILETYPE_PEM) != 1)) {
      ERR_clear_error();
      return "";
    }
  }
  static const unsigned char kAlpnH2[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpnH2, sizeof(kAlpnH2));

  Socket sock;
  sock.reset(Connect(host, port, deadline));
  if (sock.fd() < 0) return "";  // not reachable: not a TLS matter
  BoundIo(sock.fd(), deadline - absl::Now());
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), sock.fd());
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  in6_addr ip;
  const bool is_ip = inet_pton(AF_INET, host.c_str(), &ip) == 1 ||
                     inet_pton(AF_INET6, host.c_str(), &ip) == 1;
  if (is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
  }
  ERR_clear_error();
  if (SSL_connect(ssl.get()) != 1) {
    const int reason = FirstReason();
    if (!files.enabled()) return "";  // neither side speaks TLS: not a TLS matter
    if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
        reason == SSL_R_RECORD_LENGTH_MISMATCH || reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
      return absl::StrCat(endpoint,
                          " does not speak TLS (a plaintext node): leave out --cacert, --cert "
                          "and --key");
    }
    return ExplainClientAlert(endpoint, files, reason);
  }
  if (!files.enabled()) {
    return absl::StrCat(endpoint,
                        " takes TLS connections only: give --cacert (and --cert and --key if it "
                        "requires client certificates)");
  }
  const long verify = SSL_get_verify_result(ssl.get());
  if (verify != X509_V_OK) {
    std::unique_ptr<X509, X509Free> peer(SSL_get1_peer_certificate(ssl.get()));
    if (peer == nullptr) return absl::StrCat(endpoint, " presented no certificate");
    const std::string who = absl::StrCat(endpoint, "'s certificate (", Subject(peer.get()), ")");
    switch (verify) {
      case X509_V_ERR_CERT_HAS_EXPIRED:
        return absl::StrCat(who, " expired at ", TimeText(X509_get0_notAfter(peer.get())));
      case X509_V_ERR_CERT_NOT_YET_VALID:
        return absl::StrCat(who, " is not valid before ",
                            TimeText(X509_get0_notBefore(peer.get())));
      case X509_V_ERR_HOSTNAME_MISMATCH:
      case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return absl::StrCat(who, " is not for ", host, ": it names ", NamesOf(peer.get()));
      default:
        return absl::StrCat(who, " is not trusted: ", X509_verify_cert_error_string(verify),
                            " (issuer ", Issuer(peer.get()), "; trusted: ",
                            files.ca_file.empty() ? "the system's CAs"
                                                  : absl::StrCat("--cacert ", files.ca_file),
                            ")");
    }
  }
  // A TLS 1.3 node judges the client's certificate after the handshake: a
  // refusal is an alert, or (gRPC) the connection closed, on the first
  // read. An HTTP/2 node sends its SETTINGS at once: data means "accepted".
  char byte;
  BoundIo(sock.fd(), std::min(deadline - absl::Now(), absl::Seconds(1)));
  ERR_clear_error();
  errno = 0;
  const int read = SSL_read(ssl.get(), &byte, 1);
  if (read <= 0) {
    const int err = SSL_get_error(ssl.get(), read);
    const bool timed_out = err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (err == SSL_ERROR_SSL) {
      if (std::string d = ExplainClientAlert(endpoint, files, FirstReason()); !d.empty()) return d;
    }
    if (!timed_out) {
      ERR_clear_error();
      return files.cert_file.empty()
                 ? absl::StrCat(endpoint,
                                " closed the connection after the TLS handshake: it requires a "
                                "client certificate: give --cert and --key")
                 : absl::StrCat(endpoint, " closed the connection after the TLS handshake: it "
                                          "refused the client certificate ",
                                files.cert_file, " (not signed by a CA it trusts?)");
    }
  }
  ERR_clear_error();
  return "";
}

}  // namespace raftkv::client
