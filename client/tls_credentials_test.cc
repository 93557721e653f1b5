#include "client/tls_credentials.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/kv.grpc.pb.h"

namespace raftkv::client {
namespace {

class NoKv final : public kvpb::KV::Service {};

std::string Read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class TlsCredentialsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(std::getenv("TEST_TMPDIR"), "/certs"));
    Run(absl::StrCat("tools/make_certs ", *dir_, " node client"));
    Run(absl::StrCat("tools/make_certs ", *dir_, "/other client"));
    Run(absl::StrCat("CERT_EXPIRED=1 tools/make_certs ", *dir_, " expired"));
    Run(absl::StrCat("CERT_SAN=DNS:example.com tools/make_certs ", *dir_, " wronghost"));
  }
  static void Run(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }
  static std::string F(const std::string& name) { return absl::StrCat(*dir_, "/", name); }

  // A gRPC server presenting `cert` ("" = plaintext), requiring client
  // certificates of our CA if `require_client_cert`.
  std::string Serve(const std::string& cert, bool require_client_cert = false) {
    std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
    if (!cert.empty()) {
      grpc::SslServerCredentialsOptions o(
          require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                              : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
      o.pem_root_certs = Read(F("ca.pem"));
      o.pem_key_cert_pairs.push_back({Read(F(cert + "-key.pem")), Read(F(cert + ".pem"))});
      creds = grpc::SslServerCredentials(o);
    }
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", creds, &port);
    b.RegisterService(&service_);
    servers_.push_back(b.BuildAndStart());
    return absl::StrCat("127.0.0.1:", port);
  }

  static TlsClientFiles Trusting(const std::string& ca, const std::string& cert = "") {
    TlsClientFiles f;
    f.ca_file = F(ca);
    if (!cert.empty()) {
      f.cert_file = F(cert + ".pem");
      f.key_file = F(cert + "-key.pem");
    }
    return f;
  }

  static void ExpectDiagnosis(const std::string& endpoint, const TlsClientFiles& files,
                              const std::string& needle) {
    const absl::Time start = absl::Now();
    const std::string d = DiagnoseTls(endpoint, files, absl::Seconds(5));
    EXPECT_NE(d.find(needle), std::string::npos) << "diagnosis: \"" << d << "\"";
    EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  }

  static std::string* dir_;
  NoKv service_;
  std::vector<std::unique_ptr<grpc::Server>> servers_;
};
std::string* TlsCredentialsTest::dir_ = nullptr;

TEST_F(TlsCredentialsTest, AHealthyTlsConnectionHasNoDiagnosis) {
  EXPECT_EQ(DiagnoseTls(Serve("node"), Trusting("ca.pem"), absl::Seconds(5)), "");
  EXPECT_EQ(DiagnoseTls(Serve("node", true), Trusting("ca.pem", "client"), absl::Seconds(5)), "");
}

TEST_F(TlsCredentialsTest, NothingListeningIsNotATlsMatter) {
  const std::string ep = Serve("");
  servers_.back()->Shutdown();
  servers_.clear();
  EXPECT_EQ(DiagnoseTls(ep, Trusting("ca.pem"), absl::Seconds(2)), "");
  EXPECT_EQ(DiagnoseTls(ep, TlsClientFiles(), absl::Seconds(2)), "");
}

TEST_F(TlsCredentialsTest, PlaintextClientAtATlsNode) {
  ExpectDiagnosis(Serve("node"), TlsClientFiles(), "takes TLS connections only: give --cacert");
  EXPECT_EQ(DiagnoseTls(Serve(""), TlsClientFiles(), absl::Seconds(5)), "");
}

TEST_F(TlsCredentialsTest, TlsClientAtAPlaintextNode) {
  ExpectDiagnosis(Serve(""), Trusting("ca.pem"), "does not speak TLS (a plaintext node)");
}

TEST_F(TlsCredentialsTest, ServerCertificateProblems) {
  ExpectDiagnosis(Serve("node"), Trusting("other/ca.pem"), "is not trusted");
  ExpectDiagnosis(Serve("expired"), Trusting("ca.pem"), "expired at");
  ExpectDiagnosis(Serve("wronghost"), Trusting("ca.pem"),
                  "is not for 127.0.0.1: it names example.com");
}

TEST_F(TlsCredentialsTest, ClientCertificateProblems) {
  const std::string ep = Serve("node", /*require_client_cert=*/true);
  ExpectDiagnosis(ep, Trusting("ca.pem"), "requires a client certificate: give --cert and --key");
  ExpectDiagnosis(ep, Trusting("ca.pem", "other/client"), "refused the client certificate");
}

TEST_F(TlsCredentialsTest, MayBeTlsFailureReadsGrpcsMessages) {
  EXPECT_TRUE(MayBeTlsFailure(
      "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Ssl handshake "
      "failed: SSL_ERROR_SSL: error:0A000086:SSL routines::certificate verify failed"));
  EXPECT_TRUE(MayBeTlsFailure("last error: UNAVAILABLE: ipv4:127.0.0.1:1: Socket closed"));
  EXPECT_TRUE(MayBeTlsFailure("UNKNOWN: Peer name 127.0.0.1 is not in peer certificate"));
  EXPECT_FALSE(MayBeTlsFailure("failed to connect to all addresses; last error: UNKNOWN: "
                               "ipv4:127.0.0.1:1: Failed to connect to remote host: Connection "
                               "refused"));
}

TEST_F(TlsCredentialsTest, CredentialsFromBadFilesNameTheFile) {
  EXPECT_TRUE(ChannelCredentialsFor(TlsClientFiles()).ok());
  EXPECT_TRUE(ChannelCredentialsFor(Trusting("ca.pem", "client")).ok());
  TlsClientFiles f = Trusting("ca.pem", "client");
  f.key_file = F("node-key.pem");
  auto c = ChannelCredentialsFor(f);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("node-key.pem"), std::string::npos) << c.status();
  f = Trusting("ca.pem");
  f.key_file = F("client-key.pem");
  EXPECT_EQ(ChannelCredentialsFor(f).status().message(), "--key needs --cert");
  c = ChannelCredentialsFor(Trusting("nope.pem"));
  EXPECT_TRUE(absl::IsNotFound(c.status())) << c.status();
  c = ChannelCredentialsFor(Trusting("ca.pem", "expired"));
  EXPECT_NE(c.status().message().find("expired at"), std::string::npos) << c.status();
}

}  // namespace
}  // namespace raftkv::client
