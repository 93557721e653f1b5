#include "server/tls_watcher.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "grpcpp/grpcpp.h"
#include "proto/kv.grpc.pb.h"

namespace raftkv::server {
namespace {

// A KV service with no methods: a call that reaches it ends UNIMPLEMENTED,
// so UNIMPLEMENTED means "the TLS handshake succeeded".
class NoKv final : public kvpb::KV::Service {};

std::string Read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class TlsWatcherTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(std::getenv("TEST_TMPDIR"), "/certs"));
    Run(absl::StrCat("tools/make_certs ", *dir_, " node node2 client"));
    Run(absl::StrCat("tools/make_certs ", *dir_, "/other node client"));
    Run(absl::StrCat("CERT_SAN=DNS:example.com tools/make_certs ", *dir_, " wronghost"));
  }
  static void Run(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }
  static std::string F(const std::string& name) { return absl::StrCat(*dir_, "/", name); }

  void SetUp() override {
    // The node's files live in a directory of their own, rotated by copies.
    live_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/live-",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    Run(absl::StrCat("mkdir -p ", live_, " && cp ", F("node.pem"), " ", live_, "/cert.pem && cp ",
                     F("node-key.pem"), " ", live_, "/key.pem && cp ", F("ca.pem"), " ", live_,
                     "/ca.pem"));
  }

  void StartServer(ClientCertPolicy policy) {
    CertificateWatcherOptions o;
    o.files = {live_ + "/cert.pem", live_ + "/key.pem", {live_ + "/ca.pem"}};
    o.stage_dir = live_ + "/stage";
    o.poll_interval = absl::Milliseconds(50);
    absl::StatusOr<std::unique_ptr<CertificateWatcher>> w = CertificateWatcher::Start(o);
    ASSERT_TRUE(w.ok()) << w.status();
    watcher_ = std::move(*w);
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", watcher_->ServerCredentials(policy), &port_);
    b.RegisterService(&service_);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }

  // One call on a new channel, as a client trusting `ca` and presenting
  // `cert` (none if empty), dialling `host`.
  grpc::Status Call(const std::string& ca, const std::string& cert, const std::string& key,
                    const std::string& host = "127.0.0.1") {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = Read(ca);
    if (!cert.empty()) {
      o.pem_cert_chain = Read(cert);
      o.pem_private_key = Read(key);
    }
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a new connection each time
    auto stub = kvpb::KV::NewStub(grpc::CreateCustomChannel(
        absl::StrCat(host, ":", port_), grpc::SslCredentials(o), args));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    kvpb::GetRequest req;
    kvpb::GetResponse resp;
    return stub->Get(&ctx, req, &resp);
  }

  // Polls until a new connection's call ends `code`.
  bool EventuallyCallEnds(grpc::StatusCode code, const std::string& ca, const std::string& cert,
                          const std::string& key) {
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (absl::Now() < give_up) {
      if (Call(ca, cert, key).error_code() == code) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  static std::string* dir_;
  std::string live_;
  NoKv service_;
  std::unique_ptr<CertificateWatcher> watcher_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};
std::string* TlsWatcherTest::dir_ = nullptr;

TEST_F(TlsWatcherTest, RequiresAVerifiedClientCertificate) {
  StartServer(ClientCertPolicy::kRequire);
  EXPECT_EQ(Call(F("ca.pem"), F("client.pem"), F("client-key.pem")).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  grpc::Status none = Call(F("ca.pem"), "", "");
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAVAILABLE) << none.error_message();
  grpc::Status foreign = Call(F("ca.pem"), F("other/client.pem"), F("other/client-key.pem"));
  EXPECT_EQ(foreign.error_code(), grpc::StatusCode::UNAVAILABLE) << foreign.error_message();
  // The client checks the server too: another CA, another name.
  grpc::Status unknown_ca = Call(F("other/ca.pem"), F("client.pem"), F("client-key.pem"));
  EXPECT_EQ(unknown_ca.error_code(), grpc::StatusCode::UNAVAILABLE) << unknown_ca.error_message();
}

TEST_F(TlsWatcherTest, WithoutClientCertAuthAnyClientConnects) {
  StartServer(ClientCertPolicy::kNone);
  EXPECT_EQ(Call(F("ca.pem"), "", "").error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(TlsWatcherTest, ChecksTheServersHostName) {
  Run(absl::StrCat("cp ", F("wronghost.pem"), " ", live_, "/cert.pem && cp ",
                   F("wronghost-key.pem"), " ", live_, "/key.pem"));
  StartServer(ClientCertPolicy::kNone);
  grpc::Status s = Call(F("ca.pem"), "", "");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(TlsWatcherTest, RotatesToNewFilesWithoutARestart) {
  StartServer(ClientCertPolicy::kRequire);
  ASSERT_EQ(Call(F("ca.pem"), F("client.pem"), F("client-key.pem")).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  // Rotate to the other CA: its certificate, its key, trusting its clients.
  // Written beside and renamed, as an operator (or cert-manager) does.
  Run(absl::StrCat("cd ", live_, " && cp ", F("other/node.pem"), " c.tmp && cp ",
                   F("other/node-key.pem"), " k.tmp && cp ", F("other/ca.pem"),
                   " a.tmp && mv k.tmp key.pem && mv c.tmp cert.pem && mv a.tmp ca.pem"));
  EXPECT_TRUE(EventuallyCallEnds(grpc::StatusCode::UNIMPLEMENTED, F("other/ca.pem"),
                                 F("other/client.pem"), F("other/client-key.pem")))
      << "the new certificate and CA were not taken";
  EXPECT_GE(watcher_->reloads(), 1u);
  EXPECT_EQ(Call(F("ca.pem"), F("client.pem"), F("client-key.pem")).error_code(),
            grpc::StatusCode::UNAVAILABLE)
      << "the old CA is still trusted";
  EXPECT_EQ(watcher_->TrustedCa(), Read(F("other/ca.pem")));
}

TEST_F(TlsWatcherTest, RefusesBadNewFilesAndKeepsTheCurrentOnes) {
  StartServer(ClientCertPolicy::kRequire);
  // A key of another certificate: refused, and still served with the old.
  Run(absl::StrCat("cp ", F("node2-key.pem"), " ", live_, "/key.pem"));
  absl::Status s = watcher_->CheckNow();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("is not the key of"), std::string::npos) << s;
  // Garbage in the certificate file, then a missing CA file.
  std::ofstream(live_ + "/cert.pem") << "-----BEGIN CERTIFICATE-----\ngarbage\n";
  EXPECT_FALSE(watcher_->CheckNow().ok());
  Run(absl::StrCat("rm ", live_, "/ca.pem"));
  EXPECT_FALSE(watcher_->CheckNow().ok());
  EXPECT_GE(watcher_->refused(), 1u);
  EXPECT_EQ(watcher_->reloads(), 0u);
  // gRPC re-reads the staged files each second: wait past that, then the
  // old identity and CA still work, for new connections too.
  absl::SleepFor(absl::Milliseconds(1500));  // gRPC's own refresh period
  EXPECT_EQ(Call(F("ca.pem"), F("client.pem"), F("client-key.pem")).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(watcher_->TrustedCa(), Read(F("ca.pem")));
}

TEST_F(TlsWatcherTest, RefusesToStartWithBadFiles) {
  CertificateWatcherOptions o;
  o.files = {F("node.pem"), F("client-key.pem"), {F("ca.pem")}};
  o.stage_dir = live_ + "/stage-bad";
  absl::StatusOr<std::unique_ptr<CertificateWatcher>> w = CertificateWatcher::Start(o);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("client-key.pem"), std::string::npos) << w.status();
}

}  // namespace
}  // namespace raftkv::server
