// Clusters with client and peer mutual TLS on real processes (issue 23):
// kvctl over TLS across a leader SIGKILL, the clients and callers that must
// be refused (fast, in one line), and certificate rotation under load with
// no failed request; the client certificate's CN as etcd's user.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "client/client.h"
#include "client/kvctl_lib.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

using ::testing::HasSubstr;

struct Kvctl {
  int code;
  std::string out, err;
  absl::Duration took;
};
Kvctl RunKvctl(const std::vector<std::string>& args) {
  std::istringstream in;
  std::ostringstream out, err;
  const absl::Time start = absl::Now();
  const int code = kvctl::RunKvctl(args, in, out, err, /*out_is_tty=*/false);
  return {code, out.str(), err.str(), absl::Now() - start};
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The output of a shell command.
std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  pclose(p);
  return std::string(absl::StripAsciiWhitespace(out));
}

void Sh(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(absl::StrCat(std::getenv("TEST_TMPDIR"), "/certs"));
    // One CA for clients and members, and a stranger's CA.
    Sh(absl::StrCat("tools/make_certs ", *certs_, " node client renewed"));
    Sh(absl::StrCat("tools/make_certs ", *certs_, "/other client"));
  }
  static std::string C(const std::string& name) { return absl::StrCat(*certs_, "/", name); }

  // The eight flags, with node `id`'s certificate and key in a directory of
  // its own (so that a test can rotate them).
  static std::vector<std::string> TlsFlags(const std::string& dir) {
    return {"--cert_file=" + dir + "/cert.pem",       "--key_file=" + dir + "/key.pem",
            "--trusted_ca_file=" + C("ca.pem"),       "--client_cert_auth",
            "--peer_cert_file=" + dir + "/cert.pem",  "--peer_key_file=" + dir + "/key.pem",
            "--peer_trusted_ca_file=" + C("ca.pem"),  "--peer_client_cert_auth"};
  }

  static std::shared_ptr<grpc::ChannelCredentials> ClientCredentials() {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = Read(C("ca.pem"));
    o.pem_cert_chain = Read(C("client.pem"));
    o.pem_private_key = Read(C("client-key.pem"));
    return grpc::SslCredentials(o);
  }

  // Starts a 3-node cluster with mutual TLS for clients and peers.
  std::unique_ptr<Cluster> StartTlsCluster() {
    ClusterOptions o;
    o.credentials = ClientCredentials();
    auto c = std::make_unique<Cluster>(o);
    for (int id = 1; id <= c->size(); ++id) {
      const std::string dir = absl::StrCat(c->data_dir(id), "-certs");
      Sh(absl::StrCat("mkdir -p ", dir, " && cp ", C("node.pem"), " ", dir, "/cert.pem && cp ",
                       C("node-key.pem"), " ", dir, "/key.pem"));
      cert_dirs_.push_back(dir);
      EXPECT_TRUE(c->Start(id, TlsFlags(dir)).ok());
    }
    return c;
  }

  static std::string Endpoints(const Cluster& c) {
    return absl::StrCat("--endpoints=", absl::StrJoin(c.addresses(), ","));
  }
  static std::vector<std::string> ClientFlags() {
    return {"--cacert=" + C("ca.pem"), "--cert=" + C("client.pem"), "--key=" + C("client-key.pem")};
  }
  static std::vector<std::string> With(std::vector<std::string> a,
                                       const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  // The serial number of the certificate `address` presents now.
  static std::string ServedSerial(const std::string& address) {
    return Shell(absl::StrCat("openssl s_client -connect ", address, " -CAfile ", C("ca.pem"),
                              " -cert ", C("client.pem"), " -key ", C("client-key.pem"),
                              " </dev/null 2>/dev/null | openssl x509 -noout -serial"));
  }

  static std::string* certs_;
  std::vector<std::string> cert_dirs_;
};
std::string* TlsTest::certs_ = nullptr;

TEST_F(TlsTest, KvctlOverMutualTlsAcrossALeaderKill) {
  std::unique_ptr<Cluster> c = StartTlsCluster();
  absl::StatusOr<int> leader = c->WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  Kvctl put = RunKvctl(With({Endpoints(*c), "put", "greeting", "hello"}, ClientFlags()));
  ASSERT_EQ(put.code, 0) << put.err;
  c->Kill(*leader);
  put = RunKvctl(With({Endpoints(*c), "put", "greeting", "again"}, ClientFlags()));
  ASSERT_EQ(put.code, 0) << put.err;
  Kvctl get = RunKvctl(With({Endpoints(*c), "get", "greeting"}, ClientFlags()));
  EXPECT_EQ(get.out, "again") << get.err;
  // The killed node comes back over TLS and catches up.
  ASSERT_TRUE(c->Start(*leader, TlsFlags(cert_dirs_[*leader - 1])).ok());
  EXPECT_TRUE(c->WaitForConvergence().ok());
  // TLS 1.2 or newer only.
  const std::string addr = c->address(1);
  EXPECT_THAT(Shell(absl::StrCat("openssl s_client -tls1_2 -connect ", addr, " -CAfile ",
                                 C("ca.pem"), " </dev/null 2>&1 | grep -c 'Protocol.*TLSv1.2'")),
              "1");
  EXPECT_THAT(Shell(absl::StrCat("openssl s_client -tls1_1 -connect ", addr,
                                 " </dev/null 2>&1 | grep -c 'Cipher is (NONE)'")),
              "1");
}

TEST_F(TlsTest, RefusesWrongClientsFastInOneLine) {
  std::unique_ptr<Cluster> c = StartTlsCluster();
  ASSERT_TRUE(c->WaitForLeader().ok());
  struct Case {
    std::vector<std::string> flags;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{}, "takes TLS connections only: give --cacert"},
      {{"--cacert=" + C("ca.pem")}, "requires a client certificate: give --cert and --key"},
      {{"--cacert=" + C("ca.pem"), "--cert=" + C("other/client.pem"),
        "--key=" + C("other/client-key.pem")},
       "refused the client certificate"},
      {{"--cacert=" + C("other/ca.pem"), "--cert=" + C("client.pem"),
        "--key=" + C("client-key.pem")},
       "is not trusted"},
  };
  for (const Case& k : cases) {
    for (const std::vector<std::string>& cmd :
         std::vector<std::vector<std::string>>{{"get", "k"},
                                               {"put", "k", "v"},
                                               {"member", "remove", "3"},
                                               {"transfer-leader"},
                                               {"status"},
                                               {"member", "list"}}) {
      Kvctl r = RunKvctl(With(With({Endpoints(*c)}, k.flags), cmd));
      EXPECT_NE(r.code, 0) << absl::StrJoin(cmd, " ");
      EXPECT_THAT(r.err, HasSubstr(k.says)) << absl::StrJoin(cmd, " ");
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
      EXPECT_LT(r.took, absl::Seconds(5)) << absl::StrJoin(cmd, " ") << ": " << r.err;
    }
  }
  // Nothing changed: three voters, no value for k.
  absl::StatusOr<adminpb::StatusResponse> st = c->Status(1);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->voters_size(), 3);
  Kvctl get = RunKvctl(With({Endpoints(*c), "get", "k"}, ClientFlags()));
  EXPECT_NE(get.code, 0);
  EXPECT_THAT(get.err, HasSubstr("not found"));
  // Fault injection through a plaintext channel: refused at the handshake.
  auto admin = adminpb::Admin::NewStub(MakeChannel(c->address(1)));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  adminpb::SetFaultsRequest req;
  adminpb::SetFaultsResponse resp;
  EXPECT_EQ(admin->SetFaults(&ctx, req, &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, ATlsClientAtAPlaintextClusterIsToldSo) {
  ClusterOptions o;
  o.size = 1;
  Cluster c(o);
  ASSERT_TRUE(c.StartAll().ok());
  ASSERT_TRUE(c.WaitForLeader().ok());
  Kvctl r = RunKvctl(With({Endpoints(c), "get", "k"}, ClientFlags()));
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("does not speak TLS (a plaintext node)"));
  EXPECT_LT(r.took, absl::Seconds(5));
}

// Every node's certificate and key are replaced (renewed: same CA, new
// key) while four writers run through the client library; no request
// fails, and each node presents the new certificate to new connections.
// A bad file after that is refused and the node keeps serving.
TEST_F(TlsTest, RotatesCertificatesUnderLoadWithoutAFailedRequest) {
  std::unique_ptr<Cluster> c = StartTlsCluster();
  ASSERT_TRUE(c->WaitForLeader().ok());
  const std::string old_serial = ServedSerial(c->address(1));
  const std::string new_serial =
      Shell(absl::StrCat("openssl x509 -noout -serial -in ", C("renewed.pem")));
  ASSERT_FALSE(old_serial.empty());
  ASSERT_NE(old_serial, new_serial);

  absl::Notification stop;
  std::atomic<int> ok{0}, failed{0};
  std::string first_error;
  absl::Mutex mu;
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      client::ClientOptions o;
      o.endpoints = c->addresses();
      o.tls = {C("ca.pem"), C("client.pem"), C("client-key.pem")};
      auto cl = client::Client::Create(o);
      if (!cl.ok()) {
        failed++;
        return;
      }
      for (int i = 0; !stop.HasBeenNotified(); ++i) {
        absl::StatusOr<uint64_t> r = (*cl)->Put(absl::StrCat("w", w, "-", i), "v");
        if (r.ok()) {
          ok++;
        } else {
          failed++;
          absl::MutexLock l(&mu);
          if (first_error.empty()) first_error = r.status().ToString();
        }
      }
    });
  }
  ASSERT_TRUE(Cluster::WaitFor([&] { return ok.load() > 100; }, absl::Seconds(20)));
  for (const std::string& dir : cert_dirs_) {
    // Written beside and renamed, key first, as an operator would.
    Sh(absl::StrCat("cd ", dir, " && cp ", C("renewed-key.pem"), " k.tmp && cp ",
                     C("renewed.pem"), " c.tmp && mv k.tmp key.pem && mv c.tmp cert.pem"));
  }
  for (int id = 1; id <= c->size(); ++id) {
    EXPECT_TRUE(Cluster::WaitFor([&] { return ServedSerial(c->address(id)) == new_serial; },
                                 absl::Seconds(15), absl::Milliseconds(200)))
        << "node " << id << " still presents " << ServedSerial(c->address(id));
  }
  const int after_rotation = ok.load();
  ASSERT_TRUE(Cluster::WaitFor([&] { return ok.load() > after_rotation + 100; },
                               absl::Seconds(20)));
  // A bad file: refused with a warning; the node serves on with the
  // renewed certificate.
  std::ofstream(cert_dirs_[0] + "/cert.pem") << "-----BEGIN CERTIFICATE-----\nnot one\n";
  EXPECT_TRUE(Cluster::WaitFor(
      [&] {
        return c->LogTail(1).find("refusing the new TLS files, keeping the current ones") !=
               std::string::npos;
      },
      absl::Seconds(10), absl::Milliseconds(100)));
  const int after_bad = ok.load();
  ASSERT_TRUE(Cluster::WaitFor([&] { return ok.load() > after_bad + 100; }, absl::Seconds(20)));
  EXPECT_EQ(ServedSerial(c->address(1)), new_serial);
  Kvctl get = RunKvctl(With({Endpoints(*c), "get", "w0-0"}, ClientFlags()));
  EXPECT_EQ(get.code, 0) << get.err;
  stop.Notify();
  for (auto& t : writers) t.join();
  EXPECT_EQ(failed.load(), 0) << "first error: " << first_error;
  EXPECT_GT(ok.load(), 300);
}


// With --client_cert_auth and etcd's auth on, a call without a token runs as
// the user named by its certificate's CN (etcd's rule): "client" here.
TEST_F(TlsTest, TheClientCertificatesCommonNameIsTheEtcdUser) {
  std::unique_ptr<Cluster> c = StartTlsCluster();
  auto leader = c->WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  auto channel = grpc::CreateChannel(c->address(*leader % 3 + 1), ClientCredentials());
  auto auth = etcdserverpb::Auth::NewStub(channel);
  auto kv = etcdserverpb::KV::NewStub(channel);
  auto ctx = [](const std::string& token = "") {
    auto x = std::make_unique<grpc::ClientContext>();
    x->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) x->AddMetadata("token", token);
    return x;
  };
  etcdserverpb::AuthUserAddRequest add;
  etcdserverpb::AuthUserAddResponse added;
  add.set_name("root");
  add.set_password("rpw");
  ASSERT_TRUE(auth->UserAdd(ctx().get(), add, &added).ok());
  add.set_name("client");
  add.clear_password();
  add.mutable_options()->set_no_password(true);  // certificate only
  ASSERT_TRUE(auth->UserAdd(ctx().get(), add, &added).ok());
  etcdserverpb::AuthUserGrantRoleRequest grant;
  etcdserverpb::AuthUserGrantRoleResponse granted;
  grant.set_user("root");
  grant.set_role("root");
  ASSERT_TRUE(auth->UserGrantRole(ctx().get(), grant, &granted).ok());
  etcdserverpb::AuthRoleAddRequest role;
  etcdserverpb::AuthRoleAddResponse role_added;
  role.set_name("c");
  ASSERT_TRUE(auth->RoleAdd(ctx().get(), role, &role_added).ok());
  etcdserverpb::AuthRoleGrantPermissionRequest perm;
  etcdserverpb::AuthRoleGrantPermissionResponse perm_granted;
  perm.set_name("c");
  perm.mutable_perm()->set_permtype(authpb::Permission::READWRITE);
  perm.mutable_perm()->set_key("c/");
  perm.mutable_perm()->set_range_end("c0");
  ASSERT_TRUE(auth->RoleGrantPermission(ctx().get(), perm, &perm_granted).ok());
  grant.set_user("client");
  grant.set_role("c");
  ASSERT_TRUE(auth->UserGrantRole(ctx().get(), grant, &granted).ok());
  etcdserverpb::AuthEnableRequest enable;
  etcdserverpb::AuthEnableResponse enabled;
  ASSERT_TRUE(auth->AuthEnable(ctx().get(), enable, &enabled).ok());

  auto put = [&](const std::string& key, const std::string& token = "") {
    etcdserverpb::PutRequest req;
    req.set_key(key);
    req.set_value("v");
    etcdserverpb::PutResponse resp;
    return kv->Put(ctx(token).get(), req, &resp);
  };
  grpc::Status mine = put("c/1");
  EXPECT_TRUE(mine.ok()) << mine.error_message();
  grpc::Status other = put("d");
  EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED) << other.error_message();
  etcdserverpb::AuthUserListRequest list;
  etcdserverpb::AuthUserListResponse users;
  EXPECT_EQ(auth->UserList(ctx().get(), list, &users).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // A user without a password cannot authenticate; a token wins over the CN.
  etcdserverpb::AuthenticateRequest login;
  etcdserverpb::AuthenticateResponse token;
  login.set_name("client");
  EXPECT_EQ(auth->Authenticate(ctx().get(), login, &token).error_message(),
            "etcdserver: authentication failed, invalid user ID or password");
  login.set_name("root");
  login.set_password("rpw");
  ASSERT_TRUE(auth->Authenticate(ctx().get(), login, &token).ok());
  EXPECT_TRUE(put("d", token.token()).ok());
  EXPECT_TRUE(auth->UserList(ctx(token.token()).get(), list, &users).ok());
  EXPECT_EQ(users.users_size(), 2);
}

}  // namespace
}  // namespace raftkv::testing
