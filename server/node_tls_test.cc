#include "server/node_tls.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/peer.grpc.pb.h"

namespace raftkv::server {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A Peer service whose InstallSnapshot answers with NodeTls's verdict on
// the caller.
class Judge final : public peerpb::Peer::Service {
 public:
  explicit Judge(const NodeTls* tls) : tls_(tls) {}
  grpc::Status InstallSnapshot(grpc::ServerContext* context,
                               grpc::ServerReader<peerpb::SnapshotChunk>*,
                               peerpb::SnapshotAck*) override {
    return tls_->AuthorizePeer(*context);
  }

 private:
  const NodeTls* const tls_;
};

class NodeTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(std::getenv("TEST_TMPDIR"), "/certs"));
    // A client CA and a peer CA.
    Run(absl::StrCat("tools/make_certs ", *dir_, "/clients node client"));
    Run(absl::StrCat("tools/make_certs ", *dir_, "/peers node"));
  }
  static void Run(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }
  static std::string F(const std::string& name) { return absl::StrCat(*dir_, "/", name); }

  static NodeTlsOptions Options() {
    NodeTlsOptions o;
    o.cert_file = F("clients/node.pem");
    o.key_file = F("clients/node-key.pem");
    o.trusted_ca_file = F("clients/ca.pem");
    o.peer_cert_file = F("peers/node.pem");
    o.peer_key_file = F("peers/node-key.pem");
    o.peer_trusted_ca_file = F("peers/ca.pem");
    o.peer_client_cert_auth = true;
    o.stage_dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/stage-",
                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    return o;
  }

  void Serve(NodeTlsOptions o) {
    auto t = NodeTls::Start(std::move(o));
    ASSERT_TRUE(t.ok()) << t.status();
    tls_ = std::move(*t);
    judge_ = std::make_unique<Judge>(tls_.get());
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", tls_->ListenerCredentials(), &port_);
    b.RegisterService(judge_.get());
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }

  grpc::Status Ask(std::shared_ptr<grpc::ChannelCredentials> creds) {
    auto stub = peerpb::Peer::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), std::move(creds)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    peerpb::SnapshotAck ack;
    auto writer = stub->InstallSnapshot(&ctx, &ack);
    writer->WritesDone();
    return writer->Finish();
  }

  // A client trusting the client CA, presenting `cert` (none if empty).
  static std::shared_ptr<grpc::ChannelCredentials> As(const std::string& cert,
                                                      const std::string& key) {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = Read(F("clients/ca.pem"));
    if (!cert.empty()) {
      o.pem_cert_chain = Read(F(cert));
      o.pem_private_key = Read(F(key));
    }
    return grpc::SslCredentials(o);
  }

  static std::string* dir_;
  std::unique_ptr<NodeTls> tls_;
  std::unique_ptr<Judge> judge_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};
std::string* NodeTlsTest::dir_ = nullptr;

TEST_F(NodeTlsTest, OnlyPeerCertificatesMaySendPeerStreams) {
  Serve(Options());
  // A member's own channel: its peer certificate, trusting the listener's
  // client certificate.
  EXPECT_TRUE(Ask(tls_->PeerChannelCredentials()).ok());
  grpc::Status client = Ask(As("clients/client.pem", "clients/client-key.pem"));
  EXPECT_EQ(client.error_code(), grpc::StatusCode::PERMISSION_DENIED) << client.error_message();
  EXPECT_NE(client.error_message().find("not a peer certificate"), std::string::npos)
      << client.error_message();
  grpc::Status none = Ask(As("", ""));
  EXPECT_EQ(none.error_code(), grpc::StatusCode::PERMISSION_DENIED) << none.error_message();
  EXPECT_NE(none.error_message().find("needs a client certificate"), std::string::npos);
}

TEST_F(NodeTlsTest, ClientCertAuthRefusesConnectionsWithoutACertificate) {
  NodeTlsOptions o = Options();
  o.client_cert_auth = true;
  Serve(o);
  EXPECT_EQ(Ask(As("", "")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(Ask(tls_->PeerChannelCredentials()).ok());
}

TEST_F(NodeTlsTest, WithoutPeerCertAuthPeerStreamsAreNotJudged) {
  NodeTlsOptions o = Options();
  o.peer_client_cert_auth = false;
  Serve(o);
  EXPECT_TRUE(Ask(As("", "")).ok());
}

TEST_F(NodeTlsTest, PlaintextWithoutFiles) {
  auto t = NodeTls::Start(NodeTlsOptions());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE((*t)->enabled());
}

TEST_F(NodeTlsTest, FlagCombinationsAreCheckedByName) {
  auto refused = [](NodeTlsOptions o, const std::string& needle) {
    absl::Status s = o.Validate();
    EXPECT_FALSE(s.ok()) << needle;
    EXPECT_NE(s.message().find(needle), std::string::npos) << s;
  };
  NodeTlsOptions o = Options();
  o.key_file = "";
  refused(o, "--cert_file and --key_file go together");
  o = Options();
  o.peer_cert_file = o.peer_key_file = o.peer_trusted_ca_file = "";
  o.peer_client_cert_auth = false;
  refused(o, "TLS needs both --cert_file and --peer_cert_file");
  o = Options();
  o.trusted_ca_file = "";
  o.client_cert_auth = true;
  refused(o, "--client_cert_auth needs --trusted_ca_file");
  o = Options();
  o.peer_trusted_ca_file = "";
  o.peer_client_cert_auth = false;
  refused(o, "--peer_cert_file needs --peer_trusted_ca_file");
  // A file that is not what it should be names its flag.
  o = Options();
  o.peer_key_file = F("clients/node-key.pem");
  auto t = NodeTls::Start(o);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("--peer_cert_file/--peer_key_file"), std::string::npos)
      << t.status();
}

}  // namespace
}  // namespace raftkv::server
