#include "tests/etcd_target.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/cluster_harness.h"
#include "tests/json_lite.h"

namespace raftkv::testing {
namespace {

std::string FromEnv(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

std::string TmpBase() { return FromEnv("TEST_TMPDIR", "/tmp"); }

std::string Tail(const std::string& path, size_t max_bytes = 16 << 10) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max_bytes ? s.substr(s.size() - max_bytes) : s;
}

void AppendLine(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << "\n";
}

// Polls `pred` every `poll` until it holds (true) or `timeout` passes.
bool PollUntil(const std::function<bool()>& pred, absl::Duration timeout,
               absl::Duration poll = absl::Milliseconds(50)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (pred()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(poll);
  }
}

// Three /usr/bin/etcd processes on 127.0.0.1 with a static initial cluster.
class RealEtcd : public EtcdTarget {
 public:
  RealEtcd(const std::string& name, EtcdTargetOptions options)
      : options_(std::move(options)), dir_(absl::StrCat(TmpBase(), "/", name)) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    std::filesystem::create_directories(dir_, ec);
    for (int i = 1; i <= kSize; ++i) {
      Member& m = members_[i];
      m.name = absl::StrCat("m", i);
      m.client_port = PickFreePort();
      m.peer_port = PickFreePort();
      m.data_dir = absl::StrCat(dir_, "/", m.name);
      m.log_path = absl::StrCat(dir_, "/", m.name, ".log");
    }
    // Distinct per run, so members of another test's cluster never join.
    token_ = absl::StrCat(name, "-", RandomId());
  }
  ~RealEtcd() override {
    for (auto& [i, m] : members_) {
      if (m.pid > 0) kill(m.pid, SIGKILL);
    }
    for (int i = 1; i <= kSize; ++i) Kill(i);
  }

  std::string kind() const override { return "etcd"; }
  int size() const override { return kSize; }
  std::string endpoint(int member) const override {
    return absl::StrCat("127.0.0.1:", members_.at(member).client_port);
  }
  bool running(int member) const override { return members_.at(member).pid > 0; }

  absl::Status Start() override {
    if (access(EtcdBinary().c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(EtcdBinary(), " is missing: tools/setup installs Debian's etcd-server"));
    }
    for (int i = 1; i <= kSize; ++i) {
      if (absl::Status s = Launch(i); !s.ok()) return s;
    }
    if (options_.maintenance_only) return WaitForLeader(absl::Seconds(60)).status();
    return WaitHealthy(absl::Seconds(60));
  }

  void Kill(int member) override {
    Member& m = members_.at(member);
    if (m.pid <= 0) return;
    kill(m.pid, SIGKILL);
    ProgramResult r;
    WaitForPid(m.pid, absl::InfiniteDuration(), &r);
    AppendLine(m.log_path, "=== harness: SIGKILLed");
    m.pid = -1;
  }

  absl::Status Restart(int member) override {
    Kill(member);
    return Launch(member);
  }

  void Stop() override {
    for (auto& [i, m] : members_) {
      if (m.pid > 0) kill(m.pid, SIGTERM);
    }
    for (auto& [i, m] : members_) {
      if (m.pid <= 0) continue;
      ProgramResult r;
      if (!WaitForPid(m.pid, absl::Seconds(20), &r)) {
        kill(m.pid, SIGKILL);
        WaitForPid(m.pid, absl::InfiniteDuration(), &r);
      }
      AppendLine(m.log_path, "=== harness: stopped");
      m.pid = -1;
    }
  }

  void PrintLogs() const override {
    for (const auto& [i, m] : members_) {
      std::cerr << "\n======== etcd member " << m.name << " (" << endpoint(i) << ") log "
                << m.log_path << " ========\n"
                << Tail(m.log_path) << "======== end of " << m.name << " log ========\n";
    }
  }

 private:
  static constexpr int kSize = 3;
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    std::string data_dir;
    std::string log_path;
    pid_t pid = -1;
  };

  std::string PeerUrl(int i) const {
    return absl::StrCat("http://127.0.0.1:", members_.at(i).peer_port);
  }

  absl::Status Launch(int i) {
    Member& m = members_.at(i);
    if (m.pid > 0) return absl::FailedPreconditionError(absl::StrCat(m.name, " is running"));
    std::vector<std::string> initial;
    for (const auto& [j, o] : members_) initial.push_back(absl::StrCat(o.name, "=", PeerUrl(j)));
    const std::string client_url = absl::StrCat("http://", endpoint(i));
    // On a restart etcd finds its data dir and ignores the --initial-* flags.
    std::vector<std::string> argv = {
        EtcdBinary(),
        absl::StrCat("--name=", m.name),
        absl::StrCat("--data-dir=", m.data_dir),
        absl::StrCat("--listen-client-urls=", client_url),
        absl::StrCat("--advertise-client-urls=", client_url),
        absl::StrCat("--listen-peer-urls=", PeerUrl(i)),
        absl::StrCat("--initial-advertise-peer-urls=", PeerUrl(i)),
        absl::StrCat("--initial-cluster=", absl::StrJoin(initial, ",")),
        "--initial-cluster-state=new",
        absl::StrCat("--initial-cluster-token=", token_),
        // Elections in a fraction of a second (defaults: 100 ms / 1 s), still
        // well above the scheduling noise of a loaded 2-core machine.
        "--heartbeat-interval=25",
        "--election-timeout=250",
        "--logger=zap",
        "--log-outputs=stderr",
    };
    argv.insert(argv.end(), options_.extra_flags.begin(), options_.extra_flags.end());
    AppendLine(m.log_path, absl::StrCat("=== harness: starting ", absl::StrJoin(argv, " ")));
    auto pid = SpawnLogged(argv, m.log_path);
    if (!pid.ok()) return pid.status();
    m.pid = *pid;
    return absl::OkStatus();
  }

  const EtcdTargetOptions options_;
  std::string dir_;
  std::string token_;
  std::map<int, Member> members_;
};

// raftkv's cluster harness; etcd's services share the raftkv client port.
class Raftkv : public EtcdTarget {
 public:
  Raftkv(const std::string& name, const EtcdTargetOptions& options)
      : maintenance_only_(options.maintenance_only), cluster_(MakeOptions(name, options)) {}

  std::string kind() const override { return "raftkv"; }
  int size() const override { return cluster_.size(); }
  std::string endpoint(int member) const override { return cluster_.address(member); }
  bool running(int member) const override { return cluster_.running(member); }

  absl::Status Start() override {
    if (absl::Status s = cluster_.StartAll(); !s.ok()) return s;
    if (auto l = cluster_.WaitForLeader(absl::Seconds(30)); !l.ok()) return l.status();
    if (maintenance_only_) return WaitForLeader(absl::Seconds(30)).status();
    return WaitHealthy(absl::Seconds(30));
  }
  void Kill(int member) override { cluster_.Kill(member); }
  absl::Status Restart(int member) override {
    cluster_.Kill(member);
    return cluster_.Start(member);
  }
  void Stop() override { cluster_.StopAll(); }
  void PrintLogs() const override { cluster_.PrintLogs(); }

 private:
  static ClusterOptions MakeOptions(const std::string& name, const EtcdTargetOptions& options) {
    ClusterOptions o;
    o.size = 3;
    o.name = name;
    o.extra_flags = options.extra_flags;
    return o;
  }
  const bool maintenance_only_;
  Cluster cluster_;
};

// One `etcdctl endpoint status -w json` entry.
struct EndpointStatus {
  std::string endpoint;
  uint64_t member_id = 0;
  uint64_t leader = 0;
  uint64_t term = 0;
};

}  // namespace

std::string EtcdBinary() { return FromEnv("ETCD_BIN", "/usr/bin/etcd"); }
std::string EtcdctlBinary() { return FromEnv("ETCDCTL_BIN", "/usr/bin/etcdctl"); }

absl::StatusOr<ProgramResult> RunEtcdctl(const std::string& endpoints,
                                         const std::vector<std::string>& args,
                                         const std::string& input, absl::Duration timeout) {
  std::vector<std::string> argv = {EtcdctlBinary(), absl::StrCat("--endpoints=", endpoints)};
  argv.insert(argv.end(), args.begin(), args.end());
  // ETCDCTL_API=3 is etcdctl 3.4's default; set it anyway, and remove the
  // variables that would point it elsewhere (etcdctl exits when one is set,
  // even empty, beside its flag: "conflicting environment variable").
  return RunProgram(argv, input,
                    {"ETCDCTL_API=3", "ETCDCTL_ENDPOINTS", "ETCDCTL_CACERT", "ETCDCTL_CERT",
                     "ETCDCTL_KEY", "ETCDCTL_USER", "ETCDCTL_PASSWORD"},
                    timeout);
}

std::string EtcdTarget::endpoints() const {
  std::vector<std::string> out;
  for (int i = 1; i <= size(); ++i) out.push_back(endpoint(i));
  return absl::StrJoin(out, ",");
}

std::string EtcdTarget::running_endpoints() const {
  std::vector<std::string> out;
  for (int i = 1; i <= size(); ++i) {
    if (running(i)) out.push_back(endpoint(i));
  }
  return absl::StrJoin(out, ",");
}

int EtcdTarget::MemberOf(const std::string& ep) const {
  for (int i = 1; i <= size(); ++i) {
    if (endpoint(i) == ep) return i;
  }
  return 0;
}

absl::StatusOr<int> EtcdTarget::WaitForLeader(absl::Duration timeout, int excluding) {
  int leader = 0;
  std::string last;
  const bool ok = PollUntil(
      [&] {
        int running_count = 0;
        for (int i = 1; i <= size(); ++i) running_count += running(i) ? 1 : 0;
        auto r = RunEtcdctl(running_endpoints(),
                            {"endpoint", "status", "-w", "json", "--command-timeout=2s"}, "",
                            absl::Seconds(10));
        if (!r.ok()) {
          last = std::string(r.status().message());
          return false;
        }
        auto j = Json::Parse(r->out);
        if (!j.ok()) {
          last = r->Describe();
          return false;
        }
        last = absl::StrCat(j->Dump(), " ", r->err);
        std::vector<EndpointStatus> st;
        for (const Json& e : j->items()) {
          st.push_back({e["Endpoint"].text(), e["Status"]["header"]["member_id"].u64(),
                        e["Status"]["leader"].u64(), e["Status"]["raftTerm"].u64()});
        }
        if (static_cast<int>(st.size()) != running_count) return false;
        for (const EndpointStatus& s : st) {
          if (s.leader == 0 || s.leader != st[0].leader || s.term != st[0].term) return false;
        }
        for (const EndpointStatus& s : st) {
          if (s.member_id == st[0].leader) {
            leader = MemberOf(s.endpoint);
            return leader != 0 && leader != excluding;
          }
        }
        return false;  // the leader they name is not running (yet elected away)
      },
      timeout, absl::Milliseconds(50));
  if (!ok) {
    return absl::DeadlineExceededError(
        absl::StrCat(kind(), ": no leader agreed on by every running member within ",
                     absl::FormatDuration(timeout), "; last seen: ", last));
  }
  return leader;
}

absl::StatusOr<int> EtcdTarget::KillLeader() {
  auto leader = WaitForLeader();
  if (!leader.ok()) return leader.status();
  Kill(*leader);
  return *leader;
}

absl::Status EtcdTarget::WaitHealthy(absl::Duration timeout) {
  std::string last;
  const bool ok = PollUntil(
      [&] {
        auto r = RunEtcdctl(running_endpoints(), {"endpoint", "health", "--command-timeout=2s"},
                            "", absl::Seconds(10));
        if (!r.ok()) {
          last = std::string(r.status().message());
          return false;
        }
        last = r->Describe();
        return r->ok();
      },
      timeout, absl::Milliseconds(100));
  if (!ok) {
    return absl::DeadlineExceededError(absl::StrCat(kind(), ": not healthy within ",
                                                    absl::FormatDuration(timeout),
                                                    "; last etcdctl endpoint health: ", last));
  }
  return absl::OkStatus();
}

std::unique_ptr<EtcdTarget> MakeEtcdTarget(const std::string& kind, const std::string& name) {
  return MakeEtcdTarget(kind, name, EtcdTargetOptions());
}

std::unique_ptr<EtcdTarget> MakeEtcdTarget(const std::string& kind, const std::string& name,
                                           const EtcdTargetOptions& options) {
  if (kind == "etcd") return std::make_unique<RealEtcd>(name, options);
  if (kind == "raftkv") return std::make_unique<Raftkv>(name, options);
  return nullptr;
}

}  // namespace raftkv::testing
