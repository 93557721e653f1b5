#include "tests/jepsen/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace raftkv::jepsen {
namespace {

constexpr char kBridge[] = "rkvbr0";
constexpr char kSubnet[] = "10.213.0.";

std::atomic<bool> entered{false};
absl::Status* enter_status = nullptr;  // why not, when EnterPrivateNetns failed
std::atomic<int> live_sets{0};
std::atomic<int> generations{0};

std::string IpBinary() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

// Runs `ip args...` in the calling thread's network namespace; its output
// goes into the error.
absl::Status RunIpHere(const std::vector<std::string>& args) {
  const std::string ip = IpBinary();
  if (ip.empty()) return absl::FailedPreconditionError("no `ip` binary (iproute2)");
  std::vector<std::string> argv_s = {ip};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError(strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, out[1], 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, ip.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  std::string output;
  char buf[512];
  for (ssize_t n; (n = read(out[0], buf, sizeof(buf))) != 0;) {
    if (n > 0) output.append(buf, static_cast<size_t>(n));
    if (n < 0 && errno != EINTR) break;
  }
  close(out[0]);
  const std::string what = absl::StrJoin(argv_s, " ");
  if (rc != 0) return absl::InternalError(absl::StrCat(what, ": ", strerror(rc)));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(
        absl::StrCat(what, " failed: ", absl::StripAsciiWhitespace(output)));
  }
  return absl::OkStatus();
}

// Runs `fn` on a thread of its own inside namespace `fd` (setns moves only
// the calling thread; children it spawns start there too).
absl::Status InNamespace(int fd, const std::function<absl::Status()>& fn) {
  absl::Status s;
  std::thread([&] {
    if (setns(fd, CLONE_NEWNET) != 0) {
      s = absl::InternalError(absl::StrCat("setns: ", strerror(errno)));
      return;
    }
    s = fn();
  }).join();
  return s;
}

absl::Status RunIpIn(int fd, const std::vector<std::string>& args) {
  return InNamespace(fd, [&] { return RunIpHere(args); });
}

// A new network namespace, held by the returned fd (lo up).
absl::StatusOr<int> NewNamespace() {
  int fd = -1;
  absl::Status s;
  std::thread([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      s = absl::InternalError(absl::StrCat("unshare(CLONE_NEWNET): ", strerror(errno)));
      return;
    }
    fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      s = absl::InternalError(absl::StrCat("open /proc/thread-self/ns/net: ", strerror(errno)));
      return;
    }
    s = RunIpHere({"link", "set", "lo", "up"});
  }).join();
  if (!s.ok()) {
    if (fd >= 0) close(fd);
    return s;
  }
  return fd;
}

}  // namespace

absl::Status EnterPrivateNetns() {
  auto fail = [](absl::Status s) {
    enter_status = new absl::Status(std::move(s));
    return *enter_status;
  };
  if (geteuid() != 0) {
    return fail(absl::FailedPreconditionError("netns partitions need root (euid is not 0)"));
  }
  if (IpBinary().empty()) {
    return fail(absl::FailedPreconditionError("netns partitions need iproute2's `ip`"));
  }
  if (unshare(CLONE_NEWNET) != 0) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat("cannot create a network namespace: unshare: ", strerror(errno))));
  }
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"link", "set", "lo", "up"},
           {"link", "add", kBridge, "type", "bridge"},
           {"addr", "add", absl::StrCat(kSubnet, "254/24"), "dev", kBridge},
           {"link", "set", kBridge, "up"}}) {
    if (absl::Status s = RunIpHere(args); !s.ok()) {
      return fail(absl::FailedPreconditionError(absl::StrCat("setting up the bridge: ", s.message())));
    }
  }
  entered.store(true);
  return absl::OkStatus();
}

absl::Status NetnsReady() {
  if (entered.load()) return absl::OkStatus();
  if (enter_status != nullptr) return *enter_status;
  return absl::FailedPreconditionError(
      "netns runs need EnterPrivateNetns() first thing in main() (before any thread)");
}

absl::StatusOr<std::unique_ptr<NetnsNodes>> NetnsNodes::Create(int count) {
  if (absl::Status s = NetnsReady(); !s.ok()) return s;
  if (count < 1 || count > 250) return absl::InvalidArgumentError("1..250 nodes");
  if (live_sets.fetch_add(1) != 0) {
    live_sets.fetch_sub(1);
    return absl::FailedPreconditionError("another NetnsNodes exists (one set at a time)");
  }
  std::unique_ptr<NetnsNodes> n(new NetnsNodes());
  // Host-side veth names differ per set: a destroyed set's interfaces may
  // linger for a moment (namespaces are torn down asynchronously).
  n->generation_ = generations.fetch_add(1);
  for (int id = 1; id <= count; ++id) {
    auto fd = NewNamespace();
    if (!fd.ok()) return fd.status();
    n->fds_.push_back(*fd);
    const std::string veth = absl::StrCat("rkv", n->generation_ % 10000, "n", id);
    const std::string node_ns = absl::StrCat("/proc/", getpid(), "/fd/", *fd);
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", node_ns},
             {"link", "set", veth, "master", kBridge, "up"}}) {
      if (absl::Status s = RunIpHere(args); !s.ok()) return s;
    }
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"addr", "add", absl::StrCat(n->host(id), "/24"), "dev", "eth0"},
             {"link", "set", "eth0", "up"}}) {
      if (absl::Status s = RunIpIn(*fd, args); !s.ok()) return s;
    }
  }
  return n;
}

NetnsNodes::~NetnsNodes() {
  for (size_t i = 0; i < fds_.size(); ++i) {
    // Deleting one end of a veth pair deletes both; the namespace goes
    // once its last process and this fd are gone.
    (void)RunIpHere({"link", "del", absl::StrCat("rkv", generation_ % 10000, "n", i + 1)});
    close(fds_[i]);
  }
  live_sets.fetch_sub(1);
}

std::string NetnsNodes::host(int id) const { return absl::StrCat(kSubnet, id); }

std::string NetnsNodes::netns_path(int id) const {
  return absl::StrCat("/proc/", getpid(), "/fd/", fds_.at(id - 1));
}

absl::Status NetnsNodes::Route(const char* verb, int node, int peer) {
  return RunIpIn(fds_.at(node - 1), {"route", verb, "blackhole", absl::StrCat(host(peer), "/32")});
}

absl::Status NetnsNodes::Cut(int a, int b) {
  if (a == b) return absl::InvalidArgumentError("a node cannot be cut from itself");
  const std::pair<int, int> key(std::min(a, b), std::max(a, b));
  if (cut_.count(key)) return absl::OkStatus();
  if (absl::Status s = Route("add", a, b); !s.ok()) return s;
  cut_.insert(key);  // half cut is still recorded, so HealAll undoes it
  return Route("add", b, a);
}

absl::Status NetnsNodes::HealAll() {
  absl::Status first;
  for (const auto& [a, b] : cut_) {
    for (absl::Status s : {Route("del", a, b), Route("del", b, a)}) {
      // A half-cut pair has one route only: "No such process" is fine.
      if (!s.ok() && first.ok() && s.message().find("No such process") == absl::string_view::npos) {
        first = s;
      }
    }
  }
  cut_.clear();
  return first;
}

}  // namespace raftkv::jepsen
