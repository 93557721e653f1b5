// One client opening thousands of connections to a node and leaving them
// hanging cannot exhaust its file descriptors or grow its memory without
// bound (issue 23). Each test floods the leader of a 3-node cluster with
// raw sockets of two kinds, interleaved, and holds them all:
//   - plaintext: connections that send nothing (the node waits for the
//     HTTP/2 preface) and connections that complete HTTP/2 (preface and
//     SETTINGS) and then stay idle;
//   - TLS: connections that send nothing (the node waits for a ClientHello)
//     and connections that send the start of a ClientHello and stall.
// Meanwhile a get through the same node (on a connection made before)
// answers within 2 s, writes commit and the node keeps running; the node
// itself closes the flood's connections (handshake timeout, idle timeout)
// while the client still holds them, its descriptor count returns to where
// it was, and a new connection is served again.
//
// What this guards against (measured on gRPC 1.51 before the fixes): with
// the node's descriptor limit at 2048, 2500 connections that send nothing
// made gRPC's listener fail accept() with EMFILE and stop accepting for
// good ("Connection refused" from then on), and the next write stopped the
// node (exit 74: "creating .../RAFTKV_DURABLE_MARK.tmp: Too many open
// files"). And with the limit at 20000, each stalled TLS handshake held
// ~67 KB for gRPC's 120 s: 5000 of them took the node from 33 to 364 MiB.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

// Resident memory of `pid` in MiB (-1 if unreadable).
long RssMiB(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(f, line)) {
    long kb = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %ld kB", &kb) == 1) return kb / 1024;
  }
  return -1;
}

// Open file descriptors of `pid` (-1 if unreadable).
int FdCount(pid_t pid) {
  DIR* d = opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

int TableFiles(const std::string& dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    n += e.path().extension() == ".sst";
  }
  return n;
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Memory bounds are doubled under AddressSanitizer: its redzones and
// quarantine of freed memory (16 MB in --config=asan) made the same floods
// cost +116 and +141 MiB instead of +64 and +88.
#if defined(__SANITIZE_ADDRESS__)
constexpr long kMemoryFactor = 2;
#else
constexpr long kMemoryFactor = 1;
#endif

// What a client sends before it goes quiet.
const std::string kNothing;
// HTTP/2 client preface and an empty SETTINGS frame: the connection is up.
const std::string kHttp2 =
    std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + std::string("\0\0\0\x04\0\0\0\0\0", 9);
// A TLS record header announcing a 512-byte ClientHello, and its first
// bytes: the node waits for the rest.
const std::string kPartialClientHello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);

// Connections to 127.0.0.1:`port` opened at once, the kinds taken in turn,
// each sending its bytes once connected; held until destroyed.
class Flood {
 public:
  Flood(int port, int count, const std::vector<std::string>& kinds) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < count; ++i) {
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) break;
      if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        close(fd);
        continue;  // the node's queue was full: one connection fewer
      }
      const std::string& hello = kinds[i % kinds.size()];
      // A connection the node refused at once fails here; it is still held.
      if (!hello.empty()) (void)send(fd, hello.data(), hello.size(), MSG_NOSIGNAL);
      fds_.push_back(fd);
    }
  }
  ~Flood() {
    for (int fd : fds_) close(fd);
  }
  int size() const { return fds_.size(); }

 private:
  std::vector<int> fds_;
};

// Node `id` has not ended; if it has, it is reaped and said how.
::testing::AssertionResult Running(Cluster& c, int id) {
  const ExitResult r = c.WaitForExit(id, absl::ZeroDuration());
  if (!r.exited) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "node " << id << " ended: exit code " << r.exit_code
                                       << ", signal " << r.term_signal;
}

class ConnectionFloodTest : public ::testing::Test {
 protected:
  // A get of "small" through node `id` on the harness's connection, made
  // before the flood: it must answer "v" within 2 s.
  void ProbeGet(Cluster& c, int id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    kvpb::GetRequest req;
    req.set_key("small");
    kvpb::GetResponse resp;
    const absl::Time t = absl::Now();
    grpc::Status s = c.kv(id)->Get(&ctx, req, &resp);
    slowest_ = std::max(slowest_, absl::Now() - t);
    ++probes_;
    EXPECT_TRUE(s.ok()) << "a get during the flood: " << s.error_code() << ": "
                        << s.error_message() << " after " << (absl::Now() - t);
    if (s.ok()) EXPECT_EQ(resp.kv().value(), "v");
  }

  // Samples node `pid`'s memory and descriptors.
  void Sample(pid_t pid) {
    peak_rss_ = std::max(peak_rss_, RssMiB(pid));
    peak_fds_ = std::max(peak_fds_, FdCount(pid));
  }

  // Runs the flood against the leader of `c` (started, "small" = "v"):
  // `idle` real gRPC clients connect and then make no call, `count` raw
  // connections of `kinds` follow while writes go on, then the node must
  // close them all. `credentials`: how a gRPC client connects.
  void FloodAndRecover(Cluster& c, int leader, int idle, int count,
                       const std::vector<std::string>& kinds,
                       const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    const pid_t pid = c.pid(leader);
    ProbeGet(c, leader);
    const long rss_before = RssMiB(pid);
    const int fds_before = FdCount(pid);
    const int tables_before = TableFiles(c.data_dir(leader));
    peak_rss_ = rss_before;
    peak_fds_ = fds_before;
    // They answer the node's keepalive pings, so only the idle timeout
    // closes their connections; then they must reconnect by themselves.
    std::vector<std::unique_ptr<kvpb::KV::Stub>> idle_clients;
    for (int i = 0; i < idle; ++i) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection each
      args.SetInt("raftkv.test.connection", i);
      auto ch = grpc::CreateCustomChannel(c.address(leader), credentials, args);
      ASSERT_TRUE(ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10)));
      idle_clients.push_back(kvpb::KV::NewStub(ch));
    }
    const absl::Time start = absl::Now();
    auto flood = std::make_unique<Flood>(PortOf(c.address(leader)), count, kinds);
    // Writes under the flood: the node rewrites its durable mark, and 6 MiB
    // fill the 4 MiB memtable, so the store creates a table file. Each
    // needs a descriptor.
    TestClient writer(&c);
    writer.set_preferred(leader);
    for (int i = 0; i < 6; ++i) {
      auto put = writer.Put(absl::StrCat("big", i), std::string(1 << 20, 'x'), absl::Seconds(10));
      ASSERT_TRUE(put.ok()) << "a write during the flood: " << put.status();
      Sample(pid);
      ProbeGet(c, leader);
      ASSERT_TRUE(Running(c, leader));
    }
    const int peak_during_writes = peak_fds_;
    // The node's own timeouts close every flood connection while the
    // client still holds them; gets go on meanwhile.
    int fds = 0;
    bool flushed = false;
    const bool reclaimed = Cluster::WaitFor(
        [&] {
          if (!c.running(leader) || !Running(c, leader)) return true;
          Sample(pid);
          ProbeGet(c, leader);
          fds = FdCount(pid);
          flushed = flushed || TableFiles(c.data_dir(leader)) > tables_before;
          return fds <= fds_before + 5 && flushed;
        },
        absl::Seconds(30), absl::Milliseconds(200));
    std::fprintf(stderr,
                 "%d idle clients, %d connections held (%d opened); node %d: RSS %ld MiB before, peak %ld MiB; "
                 "%d descriptors before, peak %d (%d during the writes), %d after %s; "
                 "%d gets, slowest %s\n",
                 idle, count, flood->size(), leader, rss_before, peak_rss_, fds_before, peak_fds_,
                 peak_during_writes, fds, absl::FormatDuration(absl::Now() - start).c_str(),
                 probes_, absl::FormatDuration(slowest_).c_str());
    ASSERT_TRUE(c.running(leader)) << "the node ended during the flood";
    EXPECT_GE(flood->size(), count * 9 / 10) << "connections the client could open";
    EXPECT_TRUE(flushed) << "the store wrote a table file during the flood";
    EXPECT_TRUE(reclaimed) << "the node closed the flood's connections: " << fds
                           << " descriptors open, " << fds_before << " before";
    // Room again: a new client is served, and those the node cut off for
    // idling reconnect by themselves.
    auto fresh = kvpb::KV::NewStub(grpc::CreateChannel(c.address(leader), credentials));
    for (auto* stub : {fresh.get(), idle_clients.front().get(), idle_clients.back().get()}) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      kvpb::GetRequest req;
      req.set_key("small");
      req.set_serializable(true);
      kvpb::GetResponse resp;
      grpc::Status s = stub->Get(&ctx, req, &resp);
      EXPECT_TRUE(s.ok()) << "a get after the flood: " << s.error_message();
    }
    flood.reset();
  }

  static int PortOf(const std::string& address) {
    int port = 0;
    EXPECT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) << address;
    return port;
  }

  long peak_rss_ = 0;
  int peak_fds_ = 0;
  int probes_ = 0;
  absl::Duration slowest_;
};

// The node's descriptor limit at 2048: the store keeps 512 table files and
// 256 more descriptors for itself, so connections take at most
// 2048 - 768 = 1280 descriptor numbers; the 3000 connections would take
// them all. Short timeouts so the node closes the flood within seconds.
TEST_F(ConnectionFloodTest, PlaintextFloodCannotExhaustTheNodesDescriptors) {
  ClusterOptions o;
  o.tick_ms = 100;  // as the memory-bound test: a busy 2-core machine
  o.fd_limit = 2048;
  o.extra_flags = {"--handshake_timeout_ms=4000", "--max_connection_idle_ms=4000"};
  Cluster c(o);
  ASSERT_TRUE(c.StartAll().ok());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  TestClient client(&c);
  client.set_preferred(*leader);
  ASSERT_TRUE(client.Put("small", "v").ok());
  const long rss_start = RssMiB(c.pid(*leader));
  FloodAndRecover(c, *leader, 300, 3000, {kNothing, kHttp2}, grpc::InsecureChannelCredentials());
  if (HasFatalFailure()) return;
  // Connections never held the store's share of descriptors: 1280 at most
  // for them and the ~30 the node had open anyway.
  EXPECT_GE(peak_fds_, 1200) << "the flood filled what connections may take";
  EXPECT_LE(peak_fds_, 1280 + 64);
  // 1280 connections at ~20 KB each (measured: 5000 idle HTTP/2 connections
  // took ~82 MiB), and the 6 MiB written (memtable, caches): well within 200.
  EXPECT_LE(peak_rss_, rss_start + 200 * kMemoryFactor);
}

// With TLS, the limit left as it is (20000 here), --max_connections=1000:
// 5000 connections, most stalled in their handshake, each holding ~67 KB
// until closed. At most 1000 are held: ~70 MiB; all 5000 took ~330 MiB.
TEST_F(ConnectionFloodTest, TlsFloodIsCappedAndClosedByTheHandshakeTimeout) {
  const std::string certs = absl::StrCat(std::getenv("TEST_TMPDIR"), "/certs");
  ASSERT_EQ(std::system(absl::StrCat("tools/make_certs ", certs, " node client").c_str()), 0);
  grpc::SslCredentialsOptions so;
  so.pem_root_certs = Read(certs + "/ca.pem");
  so.pem_cert_chain = Read(certs + "/client.pem");
  so.pem_private_key = Read(certs + "/client-key.pem");
  ClusterOptions o;
  o.tick_ms = 100;
  o.credentials = grpc::SslCredentials(so);
  o.extra_flags = {"--max_connections=1000", "--handshake_timeout_ms=3000",
                   "--max_connection_idle_ms=3000",
                   "--cert_file=" + certs + "/node.pem", "--key_file=" + certs + "/node-key.pem",
                   "--trusted_ca_file=" + certs + "/ca.pem", "--client_cert_auth",
                   "--peer_cert_file=" + certs + "/node.pem",
                   "--peer_key_file=" + certs + "/node-key.pem",
                   "--peer_trusted_ca_file=" + certs + "/ca.pem", "--peer_client_cert_auth"};
  Cluster c(o);
  ASSERT_TRUE(c.StartAll().ok());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  TestClient client(&c);
  client.set_preferred(*leader);
  ASSERT_TRUE(client.Put("small", "v").ok());
  const long rss_start = RssMiB(c.pid(*leader));
  FloodAndRecover(c, *leader, 20, 5000, {kNothing, kPartialClientHello, kPartialClientHello,
                                     kPartialClientHello},
                  o.credentials);
  if (HasFatalFailure()) return;
  EXPECT_GE(peak_fds_, 1000) << "the flood filled what connections may take";
  EXPECT_LE(peak_fds_, 1000 + 64);
  // 1000 connections at <= 70 KB and the 6 MiB written: within 150 MiB.
  EXPECT_LE(peak_rss_, rss_start + 150 * kMemoryFactor);
}

}  // namespace
}  // namespace raftkv::testing
