// etcd's Go client (clientv3 3.4, tests/clientv3/main.go) against each
// target: KV and Txn from several goroutines, with a compare-and-swap
// counter, first on a quiet cluster, then with the leader SIGKILLed mid-run.
// The Go program checks what it was told (no acknowledged write lost, no CAS
// counted twice) and prints one line of JSON; this test checks that summary
// and that the killed member comes back with the data.
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/etcd_target.h"
#include "tests/json_lite.h"

namespace raftkv::testing {
namespace {

std::string CheckBinary() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/", ws != nullptr ? ws : "raftkv",
                      "/tests/clientv3/clientv3_check_bin");
}

// The summary: the last line of the program's stdout.
Json Summary(const ProgramResult& r) {
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  if (lines.empty()) return Json();
  auto j = Json::Parse(lines.back());
  return j.ok() ? *j : Json();
}

class Clientv3Test : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    target_ = MakeEtcdTarget(GetParam(), "clientv3_" + name);
    ASSERT_NE(target_, nullptr) << GetParam();
    absl::Status s = target_->Start();
    ASSERT_TRUE(s.ok()) << s;
  }
  void TearDown() override {
    if (HasFailure() && target_ != nullptr) target_->PrintLogs();
    if (target_ != nullptr) target_->Stop();
  }

  ProgramResult RunCheck(const std::vector<std::string>& flags) {
    std::vector<std::string> argv = {CheckBinary(), "--endpoints=" + target_->endpoints()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto r = RunProgram(argv, "", {}, absl::Seconds(150));
    if (!r.ok()) {
      ADD_FAILURE() << r.status();
      return ProgramResult();
    }
    return *r;
  }

  // Keys under `prefix` (a linearizable count through the survivors).
  int64_t CountKeys(const std::string& prefix) {
    auto r = RunEtcdctl(target_->running_endpoints(),
                        {"get", "--prefix", prefix, "--keys-only", "--limit=1", "-w", "json"});
    if (!r.ok() || !r->ok()) return -1;
    auto j = Json::Parse(r->out);
    return j.ok() ? (*j)["count"].i64() : -1;
  }

  // Polls until at least `n` keys are under `prefix`; false after `timeout`.
  bool WaitForKeys(const std::string& prefix, int64_t n, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (CountKeys(prefix) >= n) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  std::unique_ptr<EtcdTarget> target_;
};

TEST_P(Clientv3Test, KvAndTxnOnAQuietCluster) {
  ProgramResult r = RunCheck({"--prefix=quiet/", "--workers=4", "--rounds=40"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  Json s = Summary(r);
  std::cout << "clientv3_check: " << s.Dump() << "\n";
  EXPECT_EQ(s["violations"].size(), 0u) << s.Dump();
  EXPECT_EQ(s["rounds"].i64(), 160) << s.Dump();
  // Nothing fails without a fault: 2 puts a round, 2 gets, one txn (won or
  // lost to another worker), a prefix get every 10 rounds and 4 at the end.
  EXPECT_EQ(s["puts_ok"].i64(), 320) << s.Dump();
  EXPECT_EQ(s["puts_failed"].i64(), 0) << s.Dump();
  EXPECT_EQ(s["gets_failed"].i64(), 0) << s.Dump();
  EXPECT_EQ(s["txn_failed"].i64(), 0) << s.Dump();
  EXPECT_EQ(s["txn_ok"].i64() + s["txn_conflict"].i64(), 160) << s.Dump();
  EXPECT_EQ(s["counter"].i64(), s["txn_ok"].i64()) << s.Dump();
  EXPECT_EQ(s["prefix_gets_ok"].i64(), 20) << s.Dump();
  EXPECT_EQ(s["acked_keys"].i64(), 160) << s.Dump();
}

TEST_P(Clientv3Test, LeaderKilledMidRun) {
  const std::string stop_file =
      absl::StrCat(std::getenv("TEST_TMPDIR"), "/", GetParam(), ".stop");
  std::remove(stop_file.c_str());
  ProgramResult r;
  std::thread run([&] {
    r = RunCheck({"--prefix=kill/", "--workers=4", "--rounds=20", "--stop_file=" + stop_file,
                  "--max_duration=90s"});
  });
  // Written this way, a failed wait still stops the program and joins.
  auto finish = [&] {
    std::ofstream(stop_file).put('\n');
    run.join();
  };

  // Mid-run: the writers have acknowledged some keys when the leader dies...
  if (!WaitForKeys("kill/", 100, absl::Seconds(60))) {
    finish();
    FAIL() << "the check made no progress before the kill:\n" << r.Describe();
  }
  auto killed = target_->KillLeader();
  if (!killed.ok()) {
    finish();
    FAIL() << killed.status();
  }
  const absl::Time kill_time = absl::Now();
  // ... and go on through clientv3's retries to the survivors' new leader.
  const int64_t at_kill = CountKeys("kill/");
  const bool went_on = WaitForKeys("kill/", at_kill + 200, absl::Seconds(60));
  const absl::Duration resumed = absl::Now() - kill_time;
  finish();
  ASSERT_TRUE(went_on) << "no progress after killing member " << *killed << "\n"
                       << r.Describe();
  ASSERT_TRUE(r.ok()) << r.Describe();
  Json s = Summary(r);
  std::cout << "clientv3_check with member " << *killed << " (the leader) killed; 200 more keys "
            << absl::FormatDuration(resumed) << " after the kill: " << s.Dump() << "\n";
  EXPECT_EQ(s["violations"].size(), 0u) << s.Dump();
  EXPECT_GE(s["acked_keys"].i64(), 300) << s.Dump();

  // The killed member restarts and catches up: a serializable read on it
  // alone reaches the final counter.
  ASSERT_TRUE(target_->Restart(*killed).ok());
  ASSERT_TRUE(target_->WaitHealthy().ok());
  const std::string want = absl::StrCat(s["counter"].i64(), "\n");
  std::string last;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline && last != want) {
    auto g = RunEtcdctl(target_->endpoint(*killed),
                        {"get", "kill/counter", "--print-value-only", "--consistency=s"});
    if (g.ok()) last = g->out;
    if (last != want) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(last, want);
}

// Each value is one target; its cases run as one suite on one cluster.
INSTANTIATE_TEST_SUITE_P(Raftkv, Clientv3Test, ::testing::Values("raftkv"));
INSTANTIATE_TEST_SUITE_P(Etcd, Clientv3Test, ::testing::Values("etcd"));

}  // namespace
}  // namespace raftkv::testing
