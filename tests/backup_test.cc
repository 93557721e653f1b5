// Backups on real processes: kvctl snapshot save under a write load,
// snapshot status, and snapshot restore into a new cluster (issue 27).
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/kvctl_lib.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/backup_file.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

struct Kvctl {
  int code;
  std::string out, err;
};
Kvctl RunKvctl(const std::vector<std::string>& args) {
  std::istringstream in;
  std::ostringstream out, err;
  const int code = kvctl::RunKvctl(args, in, out, err, /*out_is_tty=*/false);
  return {code, out.str(), err.str()};
}

std::string Endpoints(const Cluster& c) {
  return absl::StrCat("--endpoints=", absl::StrJoin(c.addresses(), ","));
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

Kvctl Restore(const Cluster& c, const std::string& file, int id, const std::string& dir) {
  return RunKvctl({"snapshot", "restore", file, absl::StrCat("--data_dir=", dir),
                   absl::StrCat("--id=", id), absl::StrCat("--cluster=", c.cluster_flag())});
}

// Save under a concurrent write load; destroy the cluster; restore all three
// members from the file: the restored cluster holds exactly what was
// acknowledged up to the backup's index, takes writes, and has a new
// cluster id, so a member of the old cluster is refused by it.
TEST(BackupTest, SaveUnderLoadThenRestoreIntoANewCluster) {
  Cluster c;
  ASSERT_TRUE(c.StartAll().ok());
  ASSERT_TRUE(c.WaitForLeader().ok());
  {
    TestClient client(&c);
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(client.Put(absl::StrCat("pre", i), std::string(200, 'a' + i % 26)).ok());
    }
    ASSERT_TRUE(client.Delete("pre7").ok());
  }
  auto old_status = c.Status(1);
  ASSERT_TRUE(old_status.ok());
  const uint64_t old_cluster = old_status->cluster_id();

  WriteLoad load(&c, 3);
  load.Start();
  ASSERT_TRUE(Cluster::WaitFor([&] { return load.acked() >= 60; }, absl::Seconds(20)));
  const std::string file = absl::StrCat(getenv("TEST_TMPDIR"), "/backup.rkv");
  Kvctl save = RunKvctl({Endpoints(c), "snapshot", "save", file});
  ASSERT_EQ(save.code, 0) << save.err;
  const absl::Time saved = absl::Now();
  // Writes acknowledged after the save are not in it.
  ASSERT_TRUE(Cluster::WaitFor([&] { return load.MinAckedSince(saved) >= 10; },
                               absl::Seconds(20)));
  load.Stop();
  EXPECT_FALSE(fs::exists(file + ".part"));
  auto info = server::VerifyBackup(file);
  ASSERT_TRUE(info.ok()) << info.status();
  const uint64_t index = info->header.applied_index();
  EXPECT_THAT(save.out, HasSubstr(absl::StrCat(": index ", index, ", term ",
                                               info->header.term(), ", ", info->keys,
                                               " keys, ", info->bytes, " bytes, ")));
  EXPECT_EQ(info->header.cluster_id(), old_cluster);
  // Saved from the leader.
  std::vector<WriteLoad::Ack> acks = load.acks();
  std::vector<WriteLoad::Ack> before, after;
  for (const auto& a : acks) (a.version <= index ? before : after).push_back(a);
  ASSERT_FALSE(before.empty());
  ASSERT_FALSE(after.empty());
  EXPECT_EQ(info->keys, 99 + before.size());

  Kvctl status = RunKvctl({"snapshot", "status", file, "-w", "json"});
  ASSERT_EQ(status.code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr(absl::StrCat("\"applied_index\":", index, ",")));
  EXPECT_THAT(status.out, HasSubstr(absl::StrCat("\"keys\":", info->keys, ",")));

  // The disaster: every member gone. Member 1's data dir is kept aside, to
  // try it against the restored cluster.
  c.KillAll();
  const std::string old1 = c.data_dir(1) + ".old";
  fs::rename(c.data_dir(1), old1);
  for (int id = 2; id <= 3; ++id) fs::remove_all(c.data_dir(id));

  for (int id = 1; id <= 3; ++id) {
    Kvctl r = Restore(c, file, id, c.data_dir(id));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("node ", id, " of new cluster ")));
  }
  ASSERT_TRUE(c.StartAll().ok());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  auto st = c.Status(*leader);
  ASSERT_TRUE(st.ok());
  EXPECT_NE(st->cluster_id(), old_cluster);
  EXPECT_GT(st->term(), info->header.term());

  auto data = c.ScanAll(*leader, /*serializable=*/false);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_TRUE(CheckAcked(before, *data).ok()) << CheckAcked(before, *data);
  for (const auto& a : after) EXPECT_EQ(data->count(a.key), 0u) << a.key << " was written after";
  EXPECT_EQ(data->size(), info->keys);
  EXPECT_EQ(data->count("pre7"), 0u);
  ASSERT_EQ(data->count("pre8"), 1u);
  EXPECT_EQ(data->at("pre8").value(), std::string(200, 'a' + 8));

  // It takes writes, versions past every restored one.
  TestClient client(&c);
  auto put = client.Put("after-restore", "v");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_GT(put->version(), index);
  ASSERT_TRUE(c.WaitForConvergence().ok());

  // Old member 1, with its old data dir and the same --cluster (so the
  // cluster id it was founded with), on a port of its own: every restored
  // peer refuses it, and the restored cluster keeps its leader and term.
  const uint64_t term = c.Status(*leader)->term();
  std::vector<std::string> args = c.NodeFlags(1);
  for (auto& a : args) {
    if (absl::StartsWith(a, "--data_dir=")) a = absl::StrCat("--data_dir=", old1);
  }
  args.push_back(absl::StrCat("--listen=127.0.0.1:", PickFreePort()));
  ExitResult old_run;
  std::thread old([&] { old_run = c.RunServer(args, "old1.log", absl::Seconds(5)); });
  const bool refused = Cluster::WaitFor(
      [&] {
        for (int id = 2; id <= 3; ++id) {
          auto st = c.Status(id);
          if (st.ok() && st->peer_refusals().count("other_cluster") > 0 &&
              st->peer_refusals().at("other_cluster") > 0) {
            return true;
          }
        }
        return false;
      },
      absl::Seconds(10));
  auto put2 = client.Put("while-old-member-runs", "v");
  old.join();
  EXPECT_TRUE(refused) << "old member's log:\n" << old_run.output;
  EXPECT_THAT(old_run.output, HasSubstr("this node belongs to cluster"));
  ASSERT_TRUE(put2.ok()) << put2.status();
  auto after_old = c.WaitForLeader();
  ASSERT_TRUE(after_old.ok());
  EXPECT_EQ(*after_old, *leader);
  EXPECT_EQ(c.Status(*leader)->term(), term);
  auto members = c.Status(*leader);
  EXPECT_EQ(members->voters_size(), 3);
  EXPECT_EQ(members->learners_size(), 0);
}

// Damaged backups: status and restore refuse them with one line, and a
// restore writes nothing; a non-empty data dir is refused too.
TEST(BackupTest, DamagedFilesAreRefused) {
  ClusterOptions o;
  o.size = 1;
  Cluster c(o);
  ASSERT_TRUE(c.StartAll().ok());
  ASSERT_TRUE(c.WaitForLeader().ok());
  TestClient client(&c);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(client.Put(absl::StrCat("k", i), "value").ok());
  const std::string dir = getenv("TEST_TMPDIR");
  const std::string file = dir + "/good.rkv";
  Kvctl save = RunKvctl({Endpoints(c), "snapshot", "save", file});
  ASSERT_EQ(save.code, 0) << save.err;

  Kvctl status = RunKvctl({"snapshot", "status", file});
  ASSERT_EQ(status.code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("keys: 50\n"));
  EXPECT_THAT(RunKvctl({"snapshot", "status", file, "-w", "yaml"}).err,
              HasSubstr("--write_out: must be simple or json"));

  const std::string bytes = ReadAll(file);
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x04;
  const std::vector<std::pair<std::string, std::string>> damaged = {
      {"truncated", bytes.substr(0, bytes.size() / 2)},
      {"truncated", bytes.substr(0, bytes.size() - 1)},
      {"corrupt", flipped},
      {"corrupt", bytes + "extra"},
      {"not a raftkv backup", "garbage that is not a backup at all"},
  };
  int n = 0;
  for (const auto& [want, content] : damaged) {
    SCOPED_TRACE(absl::StrCat("case ", n, ": ", want));
    const std::string path = absl::StrCat(dir, "/damaged", n, ".rkv");
    WriteAll(path, content);
    Kvctl s = RunKvctl({"snapshot", "status", path});
    EXPECT_EQ(s.code, 1);
    EXPECT_EQ(s.out, "");
    EXPECT_THAT(s.err, HasSubstr(want));
    EXPECT_EQ(std::count(s.err.begin(), s.err.end(), '\n'), 1) << s.err;
    const std::string target = absl::StrCat(dir, "/restore", n);
    Kvctl r = Restore(c, path, 1, target);
    EXPECT_EQ(r.code, 1);
    EXPECT_THAT(r.err, HasSubstr(want));
    EXPECT_FALSE(fs::exists(target)) << "a refused restore wrote " << target;
    ++n;
  }

  const std::string busy = dir + "/busy";
  fs::create_directories(busy);
  WriteAll(busy + "/CURRENT", "x");
  Kvctl r = Restore(c, file, 1, busy);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("is not empty"));
  EXPECT_EQ(ReadAll(busy + "/CURRENT"), "x");
  EXPECT_EQ(Restore(c, file, 4, dir + "/r4").code, 2);  // not in --cluster

  // A save that cannot complete leaves no file (nor an older one changed).
  c.KillAll();
  Kvctl failed = RunKvctl({Endpoints(c), "--timeout=1s", "snapshot", "save", file});
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(ReadAll(file), bytes);
  EXPECT_FALSE(fs::exists(file + ".part"));
}

// A member that stops sending mid-save (here SIGSTOPped) fails the save
// after --timeout without a chunk, instead of hanging kvctl.
TEST(BackupTest, AStalledSaveFailsAfterTheTimeout) {
  ClusterOptions o;
  o.size = 1;
  Cluster c(o);
  ASSERT_TRUE(c.StartAll().ok());
  ASSERT_TRUE(c.WaitForLeader().ok());
  TestClient client(&c);
  for (int i = 0; i < 320; ++i) {
    ASSERT_TRUE(client.Put(absl::StrCat("k", i), std::string(16 << 10, 'v')).ok());
  }
  const std::string file = std::string(getenv("TEST_TMPDIR")) + "/stalled.rkv";
  Kvctl save;
  absl::Notification saved;
  // 5 MiB in 1 MiB chunks at 1 MiB/s: a chunk a second, about 5 s in all.
  std::thread saver([&] {
    save = RunKvctl({Endpoints(c), "--timeout=2s", "--snapshot_bytes_per_sec=1048576", "snapshot",
                     "save", file});
    saved.Notify();
  });
  const bool started = Cluster::WaitFor(
      [&] {
        std::error_code ec;
        return fs::file_size(file + ".part", ec) > 0 && !ec;
      },
      absl::Seconds(10));
  if (!started) saver.join();
  ASSERT_TRUE(started) << "the save never started: " << save.err;
  ASSERT_EQ(kill(c.pid(1), SIGSTOP), 0);
  const absl::Time stopped = absl::Now();
  const bool ended = saved.WaitForNotificationWithTimeout(absl::Seconds(15));
  const absl::Duration took = absl::Now() - stopped;
  kill(c.pid(1), SIGCONT);
  saver.join();
  ASSERT_TRUE(ended) << "kvctl hung on a member that sends nothing";
  EXPECT_LT(took, absl::Seconds(8));
  EXPECT_EQ(save.code, 1);
  EXPECT_THAT(save.err, HasSubstr("sent nothing for 2s"));
  EXPECT_FALSE(fs::exists(file));
  EXPECT_FALSE(fs::exists(file + ".part"));
}

}  // namespace
}  // namespace raftkv::testing
