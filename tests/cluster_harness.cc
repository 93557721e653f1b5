#include "tests/cluster_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

extern char** environ;

namespace raftkv::testing {
namespace {

constexpr char kLeaderAddrKey[] = "raftkv-leader-addr";

bool FileExists(const std::string& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void AppendLine(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << "\n";
}

std::string DescribeExit(const ExitResult& r) {
  if (!r.exited) return "still running";
  if (r.term_signal != 0) return absl::StrCat("killed by signal ", r.term_signal);
  return absl::StrCat("exit code ", r.exit_code);
}

std::string Brief(const adminpb::StatusResponse& s) {
  return absl::StrCat("node ", s.node_id(), " ", s.role(), " term ", s.term(), " leader ",
                      s.leader_id(), " commit ", s.commit_index(), " applied ",
                      s.applied_index());
}

std::string TestName() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  if (info == nullptr) return "cluster";
  std::string name = absl::StrCat(info->test_suite_name(), ".", info->name());
  for (char& c : name) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  }
  return name;
}

}  // namespace

std::string ServerBinary() {
  if (const char* p = std::getenv("RAFTKV_SERVER"); p != nullptr && *p != '\0') return p;
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir != nullptr) {
    std::string p = absl::StrCat(srcdir, "/", workspace != nullptr ? workspace : "raftkv",
                                 "/server/server");
    if (FileExists(p)) return p;
  }
  for (const char* p : {"server/server", "bazel-bin/server/server"}) {
    if (FileExists(p)) return p;
  }
  return "server/server";
}

int PickFreePort() {
  static absl::Mutex mu(absl::kConstInit);
  static std::set<int>* used = new std::set<int>();
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) continue;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    int port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      socklen_t len = sizeof(addr);
      if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
        port = ntohs(addr.sin_port);
      }
    }
    close(fd);
    if (port == 0) continue;
    absl::MutexLock l(&mu);
    if (used->insert(port).second) return port;
  }
  ADD_FAILURE() << "no free port found";
  return 0;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                          std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  // Reconnect soon after a node restarts (the default backoff grows to 2 min).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  // Separate channels per Cluster/client, never shared subchannels.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 20);
  return grpc::CreateCustomChannel(
      address, credentials != nullptr ? credentials : grpc::InsecureChannelCredentials(), args);
}

uint64_t RandomId() {
  static absl::Mutex mu(absl::kConstInit);
  static std::mt19937_64* rng = new std::mt19937_64(std::random_device()());
  absl::MutexLock l(&mu);
  uint64_t v = 0;
  while (v == 0) v = (*rng)();
  return v;
}

std::string TrailingMetadata(const grpc::ClientContext& ctx, const std::string& key) {
  const auto& md = ctx.GetServerTrailingMetadata();
  auto it = md.find(key);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// ---------------------------------------------------------------------------
// Cluster

Cluster::Cluster(ClusterOptions options) : options_(std::move(options)) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string base = tmp != nullptr ? tmp : "/tmp";
  dir_ = absl::StrCat(base, "/", options_.name.empty() ? TestName() : options_.name);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  std::filesystem::create_directories(dir_, ec);
  for (int id = 1; id <= options_.size + options_.spares; ++id) {
    Node& n = nodes_[id];
    n.id = id;
    ClusterOptions::NodeNetwork net;
    if (options_.network) net = options_.network(id);
    // A node in its own namespace has every port free; any will do.
    n.address = absl::StrCat(net.host, ":", PickFreePort());
    n.netns = net.netns;
    n.data_dir = absl::StrCat(dir_, "/n", id);
    n.log_path = absl::StrCat(dir_, "/n", id, ".log");
    n.channel = MakeChannel(n.address, options_.credentials);
    n.kv = kvpb::KV::NewStub(n.channel);
    n.admin = adminpb::Admin::NewStub(n.channel);
  }
}

Cluster::~Cluster() {
  if (::testing::Test::HasFailure()) PrintLogs();
  KillAll();
}

std::vector<std::string> Cluster::addresses() const {
  std::vector<std::string> out;
  for (const auto& [id, n] : nodes_) out.push_back(n.address);
  return out;
}

std::string Cluster::cluster_flag() const {
  std::vector<std::string> parts;
  for (const auto& [id, n] : nodes_) {
    if (id <= options_.size) parts.push_back(absl::StrCat(id, "=", n.address));
  }
  return absl::StrJoin(parts, ",");
}

int Cluster::IdOf(const std::string& address) const {
  for (const auto& [id, n] : nodes_) {
    if (n.address == address) return id;
  }
  return 0;
}

std::vector<int> Cluster::running_ids() const {
  std::vector<int> out;
  for (const auto& [id, n] : nodes_) {
    if (n.pid > 0) out.push_back(id);
  }
  return out;
}

std::vector<std::string> Cluster::NodeFlags(int id) const {
  std::vector<std::string> founders;
  for (const auto& [i, n] : nodes_) {
    if (i <= options_.size) founders.push_back(n.address);
  }
  std::vector<std::string> flags = {
      absl::StrCat("--id=", id),
      id <= options_.size ? absl::StrCat("--cluster=", cluster_flag())
                          : absl::StrCat("--join=", absl::StrJoin(founders, ",")),
      absl::StrCat("--data_dir=", data_dir(id)),
      absl::StrCat("--tick_ms=", options_.tick_ms),
      absl::StrCat("--election_ticks=", options_.election_ticks),
      // The test environment sets GLOG_minloglevel=1; node logs are only
      // read on failure, so keep INFO (elections, recovery) in them.
      "--minloglevel=0",
  };
  if (id > options_.size) flags.push_back(absl::StrCat("--listen=", address(id)));
  // A founding member's first start founds the cluster; later ones find
  // their store (and refuse an empty data dir, as a real restart would).
  if (id <= options_.size && !nodes_.at(id).started) {
    flags.push_back("--initial_cluster_state=new");
  }
  for (const auto& f : options_.extra_flags) flags.push_back(f);
  return flags;
}

void ExpectQuickFailure(const ExitResult& r, const std::vector<std::string>& texts,
                        absl::Duration quick) {
  ASSERT_TRUE(r.exited) << "the server kept running; output:\n" << r.output;
  EXPECT_EQ(r.term_signal, 0) << "crashed instead of exiting; output:\n" << r.output;
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(r.elapsed, quick);
  for (const auto& t : texts) {
    EXPECT_NE(r.output.find(t), std::string::npos) << "no \"" << t << "\" in:\n" << r.output;
  }
}

absl::Status Cluster::StartAll() {
  for (const auto& [id, n] : nodes_) {
    if (n.pid > 0 || id > options_.size) continue;
    if (absl::Status s = Start(id); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Cluster::Start(int id, const std::vector<std::string>& extra) {
  Node& n = nodes_.at(id);
  if (n.pid > 0) return absl::FailedPreconditionError(absl::StrCat("node ", id, " is running"));
  std::vector<std::string> args = NodeFlags(id);
  args.insert(args.end(), extra.begin(), extra.end());
  AppendLine(n.log_path, absl::StrCat("=== harness: starting node ", id, ": ",
                                      absl::StrJoin(args, " ")));
  auto pid = Spawn(args, n.log_path, n.netns);
  if (!pid.ok()) return pid.status();
  n.pid = *pid;
  n.started = true;
  return absl::OkStatus();
}

absl::StatusOr<pid_t> Cluster::Spawn(const std::vector<std::string>& args,
                                     const std::string& log_path, const std::string& netns) {
  std::string binary = ServerBinary();
  std::vector<std::string> argv_s = {binary};
  if (options_.fd_limit > 0) {
    // The shell sets the limit and becomes the server (same pid).
    argv_s = {"/bin/sh", "-c", absl::StrCat("ulimit -n ", options_.fd_limit, " && exec \"$0\" \"$@\""),
              binary};
    binary = "/bin/sh";
  }
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, deflt;
  sigemptyset(&none);
  sigemptyset(&deflt);
  sigaddset(&deflt, SIGTERM);
  sigaddset(&deflt, SIGINT);
  sigaddset(&deflt, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &deflt);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = 0;
  if (netns.empty()) {
    rc = posix_spawn(&pid, binary.c_str(), &fa, &attr, argv.data(), environ);
  } else {
    // setns() moves only the calling thread, and a child starts in its
    // parent thread's namespace: spawn from a short-lived thread that
    // entered the node's namespace, so no other thread of this process moves.
    const int fd = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      rc = errno;
    } else {
      std::thread([&] {
        if (setns(fd, CLONE_NEWNET) != 0) {
          rc = errno;
          return;
        }
        rc = posix_spawn(&pid, binary.c_str(), &fa, &attr, argv.data(), environ);
      }).join();
      close(fd);
    }
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("cannot run ", binary,
                                            netns.empty() ? "" : " in netns " + netns, ": ",
                                            strerror(rc)));
  }
  return pid;
}

bool Cluster::Reap(pid_t pid, absl::Duration timeout, ExitResult* r) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  while (true) {
    int status = 0;
    pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == pid) {
      r->exited = true;
      r->elapsed = absl::Now() - start;
      if (WIFEXITED(status)) r->exit_code = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) r->term_signal = WTERMSIG(status);
      return true;
    }
    if (got < 0 && errno != EINTR) {
      r->exited = true;  // not our child any more: nothing to wait for
      return true;
    }
    if (absl::Now() >= deadline) {
      r->elapsed = absl::Now() - start;
      return false;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

void Cluster::Kill(int id) {
  Node& n = nodes_.at(id);
  if (n.pid <= 0) return;
  kill(n.pid, SIGKILL);
  ExitResult r;
  Reap(n.pid, absl::InfiniteDuration(), &r);
  AppendLine(n.log_path, absl::StrCat("=== harness: node ", id, " SIGKILLed"));
  n.pid = -1;
}

void Cluster::KillAll() {
  std::vector<int> ids = running_ids();
  for (int id : ids) kill(nodes_.at(id).pid, SIGKILL);
  for (int id : ids) Kill(id);
}

ExitResult Cluster::Stop(int id, absl::Duration grace) {
  Node& n = nodes_.at(id);
  ExitResult r;
  if (n.pid <= 0) return r;
  const absl::Time start = absl::Now();
  kill(n.pid, SIGTERM);
  if (!Reap(n.pid, grace, &r)) {
    kill(n.pid, SIGKILL);
    ExitResult killed;
    Reap(n.pid, absl::InfiniteDuration(), &killed);
    r.term_signal = killed.term_signal;
  }
  r.elapsed = absl::Now() - start;
  AppendLine(n.log_path, absl::StrCat("=== harness: node ", id, " stopped with SIGTERM: ",
                                      DescribeExit(r), " after ", absl::FormatDuration(r.elapsed)));
  n.pid = -1;
  return r;
}

ExitResult Cluster::WaitForExit(int id, absl::Duration timeout) {
  Node& n = nodes_.at(id);
  ExitResult r;
  if (n.pid <= 0 || !Reap(n.pid, timeout, &r)) return r;
  AppendLine(n.log_path, absl::StrCat("=== harness: node ", id, " ended: ", DescribeExit(r)));
  n.pid = -1;
  return r;
}

std::map<int, ExitResult> Cluster::StopAll(absl::Duration grace) {
  std::map<int, ExitResult> out;
  std::vector<int> ids = running_ids();
  for (int id : ids) kill(nodes_.at(id).pid, SIGTERM);
  for (int id : ids) out[id] = Stop(id, grace);  // a second SIGTERM is harmless
  return out;
}

ExitResult Cluster::RunServer(const std::vector<std::string>& args, const std::string& log_name,
                              absl::Duration timeout) {
  const std::string log = absl::StrCat(dir_, "/", log_name);
  std::error_code ec;
  std::filesystem::remove(log, ec);
  ExitResult r;
  auto pid = Spawn(args, log);
  if (!pid.ok()) {
    r.output = std::string(pid.status().message());
    return r;
  }
  if (!Reap(*pid, timeout, &r)) {
    kill(*pid, SIGKILL);
    ExitResult killed;
    Reap(*pid, absl::InfiniteDuration(), &killed);
    r.exited = false;
  }
  r.output = ReadFile(log);
  return r;
}

absl::StatusOr<adminpb::StatusResponse> Cluster::Status(int id, bool digest) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   (digest ? std::chrono::seconds(10) : std::chrono::seconds(1)));
  adminpb::StatusRequest req;
  req.set_include_digest(digest);
  adminpb::StatusResponse resp;
  grpc::Status s = admin(id)->Status(&ctx, req, &resp);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat("Status of node ", id, ": ", s.error_message()));
  }
  return resp;
}

bool Cluster::WaitFor(const std::function<bool()>& pred, absl::Duration timeout,
                      absl::Duration poll) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (pred()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(poll);
  }
}

absl::StatusOr<int> Cluster::WaitForLeader(absl::Duration timeout, int excluding) {
  int leader = 0;
  std::string last;
  bool ok = WaitFor(
      [&] {
        std::vector<std::string> seen;
        std::map<int, adminpb::StatusResponse> st;
        for (int id : running_ids()) {
          auto s = Status(id);
          if (!s.ok()) {
            seen.push_back(std::string(s.status().message()));
            continue;
          }
          seen.push_back(Brief(*s));
          st[id] = *s;
        }
        last = absl::StrJoin(seen, "; ");
        if (st.size() != running_ids().size()) return false;
        for (const auto& [id, s] : st) {
          if (s.role() != "leader" || id == excluding) continue;
          bool agreed = true;
          for (const auto& [other, o] : st) {
            if (o.leader_id() != static_cast<uint64_t>(id) || o.term() != s.term()) agreed = false;
          }
          if (agreed) {
            leader = id;
            return true;
          }
        }
        return false;
      },
      timeout, absl::Milliseconds(20));
  if (!ok) {
    return absl::DeadlineExceededError(absl::StrCat(
        "no leader agreed on by every running node within ", absl::FormatDuration(timeout),
        "; last seen: ", last));
  }
  return leader;
}

absl::StatusOr<adminpb::StatusResponse> Cluster::WaitForConvergence(absl::Duration timeout) {
  std::string last;
  adminpb::StatusResponse result;
  bool ok = WaitFor(
      [&] {
        std::vector<int> ids = running_ids();
        std::map<int, adminpb::StatusResponse> st;
        std::vector<std::string> seen;
        for (int id : ids) {
          auto s = Status(id, /*digest=*/true);
          if (!s.ok()) {
            seen.push_back(std::string(s.status().message()));
            continue;
          }
          seen.push_back(absl::StrCat(Brief(*s), " digest ", s->data_digest(), " keys ",
                                      s->key_count()));
          st[id] = *s;
        }
        last = absl::StrJoin(seen, "; ");
        if (st.size() != ids.size() || ids.empty()) return false;
        int leader = 0;
        for (const auto& [id, s] : st) {
          if (s.role() == "leader") leader = id;
        }
        if (leader == 0) return false;
        const adminpb::StatusResponse& l = st[leader];
        for (const auto& [id, s] : st) {
          // Quiescent: the leader's whole log committed, and every node has
          // the same log and has applied all of it.
          if (s.leader_id() != static_cast<uint64_t>(leader) || s.term() != l.term() ||
              l.commit_index() != l.last_index() || s.last_index() != l.last_index() ||
              s.commit_index() != l.commit_index() ||
              s.applied_index() != l.commit_index() || s.data_digest() != l.data_digest() ||
              s.key_count() != l.key_count()) {
            return false;
          }
        }
        result = l;
        return true;
      },
      timeout, absl::Milliseconds(50));
  if (!ok) {
    return absl::DeadlineExceededError(
        absl::StrCat("nodes did not converge (same applied index = leader's commit, same "
                     "digest) within ",
                     absl::FormatDuration(timeout), "; last seen: ", last));
  }
  return result;
}

absl::StatusOr<std::map<std::string, kvpb::KeyValue>> Cluster::ScanAll(int id,
                                                                      bool serializable) {
  std::map<std::string, kvpb::KeyValue> out;
  std::string after;
  while (true) {
    kvpb::ScanRequest req;
    req.set_start_after(after);
    req.set_limit(5000);
    req.set_serializable(serializable);
    kvpb::ScanResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status s = kv(id)->Scan(&ctx, req, &resp);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                          absl::StrCat("Scan of node ", id, ": ", s.error_message()));
    }
    for (const auto& kv : resp.kvs()) out[kv.key()] = kv;
    if (!resp.more() || resp.kvs_size() == 0) return out;
    after = resp.kvs(resp.kvs_size() - 1).key();
  }
}

std::string Cluster::LogTail(int id, size_t max_bytes) const {
  std::string all = ReadFile(log_path(id));
  if (all.size() <= max_bytes) return all;
  return absl::StrCat("[... ", all.size() - max_bytes, " bytes cut ...]\n",
                      all.substr(all.size() - max_bytes));
}

void Cluster::PrintLogs() const {
  // Keep whole logs too: Bazel saves this directory as test.outputs/outputs.zip.
  const char* out = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  for (const auto& [id, n] : nodes_) {
    if (out != nullptr) {
      std::error_code ec;
      const std::string base = std::filesystem::path(dir_).filename().string();
      std::filesystem::copy_file(n.log_path, absl::StrCat(out, "/", base, ".n", id, ".log"),
                                 std::filesystem::copy_options::overwrite_existing, ec);
    }
    std::cerr << "\n======== node " << id << " (" << n.address << ") log " << n.log_path
              << " ========\n"
              << LogTail(id) << "======== end of node " << id << " log ========\n";
  }
}

// ---------------------------------------------------------------------------
// TestClient

TestClient::TestClient(Cluster* cluster, uint64_t client_id)
    : cluster_(cluster), client_id_(client_id != 0 ? client_id : RandomId()) {
  preferred_ = 1 + static_cast<int>(client_id_ % cluster_->size());
}

grpc::Status TestClient::Invoke(
    const std::function<grpc::Status(int node, grpc::ClientContext* ctx)>& attempt,
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration backoff = absl::Milliseconds(10);
  last_attempts_ = 0;
  grpc::Status last;
  while (true) {
    const absl::Time now = absl::Now();
    if (now >= deadline) return last;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(std::min(deadline, now + absl::Seconds(2))));
    ++last_attempts_;
    const int node = preferred_;
    last = attempt(node, &ctx);
    if (last.ok()) return last;
    const int next = node % cluster_->size() + 1;
    if (last.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
        absl::StartsWith(last.error_message(), "not leader")) {
      const int hinted = cluster_->IdOf(TrailingMetadata(ctx, kLeaderAddrKey));
      if (hinted != 0 && hinted != node) {
        preferred_ = hinted;
        continue;  // go straight to the leader
      }
      preferred_ = next;
    } else if (last.error_code() == grpc::StatusCode::UNAVAILABLE ||
               last.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      preferred_ = next;
    } else {
      return last;
    }
    absl::SleepFor(std::min(backoff, deadline - absl::Now()));
    backoff = std::min(backoff * 2, absl::Milliseconds(200));
  }
}

namespace {
absl::Status ToAbsl(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}
}  // namespace

absl::StatusOr<kvpb::PutResponse> TestClient::Put(const std::string& key,
                                                  const std::string& value,
                                                  absl::Duration timeout) {
  kvpb::PutRequest req;
  const uint64_t seq = next_seq_++;
  req.mutable_header()->set_client_id(client_id_);
  req.mutable_header()->set_seq(seq);
  req.mutable_header()->set_first_incomplete(seq);
  req.set_key(key);
  req.set_value(value);
  kvpb::PutResponse resp;
  grpc::Status s = Invoke(
      [&](int node, grpc::ClientContext* ctx) {
        resp.Clear();
        return cluster_->kv(node)->Put(ctx, req, &resp);
      },
      timeout);
  if (!s.ok()) return ToAbsl(s);
  return resp;
}

absl::StatusOr<kvpb::DeleteResponse> TestClient::Delete(const std::string& key,
                                                        absl::Duration timeout) {
  kvpb::DeleteRequest req;
  const uint64_t seq = next_seq_++;
  req.mutable_header()->set_client_id(client_id_);
  req.mutable_header()->set_seq(seq);
  req.mutable_header()->set_first_incomplete(seq);
  req.set_key(key);
  kvpb::DeleteResponse resp;
  grpc::Status s = Invoke(
      [&](int node, grpc::ClientContext* ctx) {
        resp.Clear();
        return cluster_->kv(node)->Delete(ctx, req, &resp);
      },
      timeout);
  if (!s.ok()) return ToAbsl(s);
  return resp;
}

absl::StatusOr<kvpb::GetResponse> TestClient::Get(const std::string& key, bool serializable,
                                                  absl::Duration timeout) {
  kvpb::GetRequest req;
  req.set_key(key);
  req.set_serializable(serializable);
  kvpb::GetResponse resp;
  grpc::Status s = Invoke(
      [&](int node, grpc::ClientContext* ctx) {
        resp.Clear();
        return cluster_->kv(node)->Get(ctx, req, &resp);
      },
      timeout);
  if (!s.ok()) return ToAbsl(s);
  return resp;
}

// ---------------------------------------------------------------------------
// WriteLoad

WriteLoad::WriteLoad(Cluster* cluster, int threads, std::string prefix)
    : cluster_(cluster), threads_(threads), prefix_(std::move(prefix)) {
  absl::MutexLock l(&mu_);
  acks_.resize(threads);
}

void WriteLoad::Start() {
  for (int t = 0; t < threads_; ++t) workers_.emplace_back([this, t] { Run(t); });
}

void WriteLoad::Stop() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  for (auto& w : workers_) w.join();
  workers_.clear();
}

void WriteLoad::Run(int thread) {
  TestClient client(cluster_);
  client.set_preferred(1 + thread % cluster_->size());
  for (int n = 0;; ++n) {
    {
      absl::MutexLock l(&mu_);
      if (stop_) return;
    }
    Ack a;
    a.key = absl::StrCat(prefix_, thread, "-", n);
    a.value = absl::StrCat(thread, "-", n, "-", RandomId());
    auto put = client.Put(a.key, a.value);
    absl::MutexLock l(&mu_);
    if (put.ok()) {
      a.version = put->version();
      a.at = absl::Now();
      acks_[thread].push_back(std::move(a));
    } else {
      errors_.push_back(absl::StrCat("put ", a.key, ": ", put.status().ToString()));
    }
  }
}

size_t WriteLoad::acked() const {
  absl::MutexLock l(&mu_);
  size_t n = 0;
  for (const auto& v : acks_) n += v.size();
  return n;
}

size_t WriteLoad::MinAckedSince(absl::Time t) const {
  absl::MutexLock l(&mu_);
  size_t fewest = SIZE_MAX;
  for (const auto& v : acks_) {
    size_t n = 0;
    for (auto it = v.rbegin(); it != v.rend() && it->at > t; ++it) ++n;
    fewest = std::min(fewest, n);
  }
  return fewest == SIZE_MAX ? 0 : fewest;
}

std::vector<WriteLoad::Ack> WriteLoad::acks() const {
  absl::MutexLock l(&mu_);
  std::vector<Ack> out;
  for (const auto& v : acks_) out.insert(out.end(), v.begin(), v.end());
  return out;
}

std::vector<std::string> WriteLoad::errors() const {
  absl::MutexLock l(&mu_);
  return errors_;
}

absl::Status CheckAcked(const std::vector<WriteLoad::Ack>& acks,
                        const std::map<std::string, kvpb::KeyValue>& data) {
  std::vector<std::string> bad;
  size_t n_bad = 0;
  for (const auto& a : acks) {
    auto it = data.find(a.key);
    std::string why;
    if (it == data.end()) {
      why = absl::StrCat(a.key, " (version ", a.version, ") is missing");
    } else if (it->second.value() != a.value || it->second.version() != a.version) {
      why = absl::StrCat(a.key, " is ", it->second.value(), "@", it->second.version(),
                         ", acknowledged as ", a.value, "@", a.version);
    }
    if (why.empty()) continue;
    if (++n_bad <= 5) bad.push_back(why);
  }
  if (n_bad == 0) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(n_bad, " of ", acks.size(),
                                          " acknowledged writes lost or changed: ",
                                          absl::StrJoin(bad, "; ")));
}

}  // namespace raftkv::testing
