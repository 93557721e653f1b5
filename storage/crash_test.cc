// Crash test: a child process (crash_test_child) runs a deterministic stream
// of synced LogStore writes and reports each completed op over a pipe; the
// test SIGKILLs it at a random moment, reopens the store and checks that it
// holds exactly the state after the last reported op or after the one in
// flight: every reported entry present, no holes, hard state, snapshot,
// applied index and data consistent with what the child wrote.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/crash_workload.h"
#include "storage/log_store.h"

namespace raftkv::storage {
namespace {

using ::testing::HasSubstr;

std::string TestDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base != nullptr ? base : "/tmp", "/", name);
  std::filesystem::remove_all(dir);
  return dir;
}

std::string ChildPath() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir != nullptr && workspace != nullptr) {
    return absl::StrCat(srcdir, "/", workspace, "/storage/crash_test_child");
  }
  return "storage/crash_test_child";
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A running crash_test_child, its pipe's read end, and what it reported.
class Child {
 public:
  // Starts `crash_test_child <args...> <write fd>`.
  explicit Child(std::vector<std::string> args) {
    int fds[2];
    if (pipe(fds) != 0) {
      ADD_FAILURE() << "pipe failed";
      return;
    }
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    args.insert(args.begin(), ChildPath());
    args.push_back(std::to_string(fds[1]));
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
    if (pid_ < 0) ADD_FAILURE() << "fork failed";
  }

  ~Child() {
    if (pid_ > 0) Kill();
    if (fd_ >= 0) close(fd_);
  }

  // Reads whatever the child sends until `deadline_ms` (or EOF). Returns the
  // bytes read.
  std::string ReadUntil(int64_t deadline_ms) {
    std::string got;
    char buf[4096];
    for (;;) {
      const int64_t left = deadline_ms - NowMs();
      if (left <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      ssize_t n = read(fd_, buf, sizeof(buf));
      if (n <= 0) {
        eof_ = true;
        break;
      }
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }

  // SIGKILLs the child, reads the rest of the pipe, reaps it. Returns the
  // wait status.
  int Kill() {
    kill(pid_, SIGKILL);
    char buf[4096];
    ssize_t n;
    while ((n = read(fd_, buf, sizeof(buf))) > 0) rest_.append(buf, n);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  // True once the child closed the pipe (it died).
  bool eof() const { return eof_; }

  // Bytes read by Kill().
  const std::string& rest() const { return rest_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  bool eof_ = false;
  std::string rest_;
};

// The last op count in a stream of native uint64 reports (0 if none).
uint64_t LastReport(const std::string& bytes) {
  const size_t n = bytes.size() / sizeof(uint64_t);
  if (n == 0) return 0;
  uint64_t v = 0;
  memcpy(&v, bytes.data() + (n - 1) * sizeof(uint64_t), sizeof(v));
  return v;
}

TEST(CrashTest, SurvivesSigkillAtRandomMoments) {
  constexpr int kRounds = 8;
  Options options;
  options.dir = TestDir("crash");
  {
    auto store = LogStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    storagepb::NodeIdentity id;
    id.set_cluster_id(1);
    id.set_node_id(1);
    raftpb::ConfState cs;
    cs.add_voters(1);
    ASSERT_TRUE((*store)->Bootstrap(id, cs).ok());
  }
  std::mt19937_64 rng(std::random_device{}());
  uint64_t total_ops = 0;
  for (int round = 0; round < kRounds; ++round) {
    const uint64_t seed = rng();
    SCOPED_TRACE(absl::StrCat("round ", round, " seed ", seed));
    crash::ModelState before;
    {
      auto store = LogStore::Open(options);
      ASSERT_TRUE(store.ok()) << store.status();
      auto state = crash::ReadState(**store);
      ASSERT_TRUE(state.ok()) << state.status();
      before = *state;
    }

    Child child({"run", options.dir, std::to_string(seed)});
    // Wait for the first durable op, then let it run a random while.
    std::string reports;
    const int64_t start = NowMs();
    while (reports.size() < sizeof(uint64_t) && !child.eof() &&
           NowMs() - start < 20000) {
      reports += child.ReadUntil(NowMs() + 50);
    }
    ASSERT_GE(reports.size(), sizeof(uint64_t)) << "the child reported nothing";
    reports += child.ReadUntil(NowMs() + static_cast<int64_t>(rng() % 300));
    const int status = child.Kill();
    reports += child.rest();
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the child exited on its own (status " << status << ")";
    const uint64_t reported = LastReport(reports);
    total_ops += reported;

    // The model after `reported` ops, and after one more.
    crash::Workload replay(before, seed);
    for (uint64_t i = 0; i < reported; ++i) replay.Next();
    const crash::ModelState done = replay.state();
    replay.Next();
    const crash::ModelState in_flight = replay.state();

    auto store = LogStore::Open(options);
    ASSERT_TRUE(store.ok()) << "reopen after SIGKILL: " << store.status();
    auto after = crash::ReadState(**store);
    ASSERT_TRUE(after.ok()) << after.status();
    // The checks the model comparison implies, spelled out.
    EXPECT_LE(after->hard_state.commit(), after->LastIndex());
    EXPECT_GE(after->applied_index, after->snapshot_index);
    EXPECT_GE(after->LastIndex(), done.hard_state.commit());
    EXPECT_GE(after->hard_state.term(), done.hard_state.term());
    const bool ok = *after == done || *after == in_flight;
    EXPECT_TRUE(ok) << "recovered state after " << reported
                    << " reported ops matches neither model:\n"
                    << "vs after " << reported << ":\n"
                    << crash::Diff(*after, done) << "\nvs after "
                    << reported + 1 << ":\n"
                    << crash::Diff(*after, in_flight);
    if (!ok) break;
  }
  RecordProperty("ops", std::to_string(total_ops));
  EXPECT_GT(total_ops, static_cast<uint64_t>(kRounds));
}

TEST(CrashTest, DirectoryLockedByAnotherProcessIsRefused) {
  Options options;
  options.dir = TestDir("locked");
  { ASSERT_TRUE(LogStore::Open(options).ok()); }
  Child holder({"hold", options.dir});
  std::string ready;
  const int64_t start = NowMs();
  while (ready.empty() && !holder.eof() && NowMs() - start < 20000) {
    ready = holder.ReadUntil(NowMs() + 50);
  }
  ASSERT_EQ(ready, "r") << "the child did not open the store";

  auto second = LogStore::Open(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr(options.dir));
  EXPECT_THAT(second.status().message(), HasSubstr("locked"));

  holder.Kill();
  EXPECT_TRUE(LogStore::Open(options).ok());
}

}  // namespace
}  // namespace raftkv::storage
