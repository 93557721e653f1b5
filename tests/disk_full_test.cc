// A node's data disk filling up, on real processes.
//
// The nodes under test keep their data on a tmpfs of their own, mounted in a
// private mount namespace the test enters first thing in main() (root
// needed; without it the tests skip, saying why). A filler file takes the
// space away and gives it back.
//
//   * Below --min_free_bytes a node raises NOSPACE and stores no new
//     entries: a leader hands leadership to a node with space, or, if none
//     can take it, refuses writes at once with an error naming the dir, the
//     free bytes and the flag; reads go on; with a majority of voters below
//     it the leader refuses writes too. Freed space clears the alarm and
//     writes resume.
//   * A write that fails anyway (ENOSPC: --min_free_bytes=0 and a full disk)
//     stops the node with exit status 74 and one line naming the dir and its
//     free space, not an abort; restarted on a full disk it refuses the same
//     way; once space is back it restarts and the cluster has every
//     acknowledged write.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kMiB = 1 << 20;

// Set by main() before any test runs: OK once the process is in a private
// mount namespace where it may mount tmpfs.
absl::Status* mount_namespace = nullptr;

absl::Status EnterPrivateMountNamespace() {
  if (geteuid() != 0) {
    return absl::FailedPreconditionError("mounting a small tmpfs needs root (euid is not 0)");
  }
  if (unshare(CLONE_NEWNS) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create a mount namespace: unshare: ", strerror(errno)));
  }
  // Mounts made here must not propagate to the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot make / private in the new mount namespace: ", strerror(errno)));
  }
  return absl::OkStatus();
}

uint64_t FreeBytes(const std::string& path) {
  struct statvfs st;
  if (statvfs(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

// A tmpfs of a given size, with a filler file to take its space away.
// Unmounted (lazily) when destroyed: destroy the cluster first.
class SmallDisk {
 public:
  static absl::StatusOr<std::unique_ptr<SmallDisk>> Mount(const std::string& path,
                                                          uint64_t bytes) {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return absl::InternalError(absl::StrCat("mkdir ", path, ": ", ec.message()));
    const std::string opts = absl::StrCat("size=", bytes);
    if (mount("tmpfs", path.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("mount tmpfs at ", path, ": ", strerror(errno)));
    }
    return std::unique_ptr<SmallDisk>(new SmallDisk(path));
  }
  ~SmallDisk() { umount2(path_.c_str(), MNT_DETACH); }

  // The directory a node keeps its data in.
  std::string data_dir() const { return path_ + "/data"; }
  uint64_t Free() const { return FreeBytes(path_); }

  // Grows the filler so that about `leave` bytes stay free.
  absl::Status FillLeaving(uint64_t leave) {
    const uint64_t free = Free();
    if (free <= leave) return absl::OkStatus();
    return Grow(free - leave);
  }
  // Takes every last byte.
  absl::Status FillCompletely() {
    for (uint64_t free = Free(); free > 0; free = Free()) {
      if (!Grow(free).ok()) break;  // raced with another writer: write what fits
    }
    int fd = open(filler().c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) return absl::InternalError(absl::StrCat("open filler: ", strerror(errno)));
    const std::string page(4096, 'f');
    while (write(fd, page.data(), page.size()) > 0) {
    }
    const int err = errno;
    close(fd);
    if (err != ENOSPC) return absl::InternalError(absl::StrCat("filling: ", strerror(err)));
    return Free() == 0 ? absl::OkStatus()
                       : absl::InternalError(absl::StrCat(Free(), " bytes still free"));
  }
  void Empty() { unlink(filler().c_str()); }

 private:
  explicit SmallDisk(std::string path) : path_(std::move(path)) {}
  std::string filler() const { return path_ + "/filler"; }

  absl::Status Grow(uint64_t bytes) {
    int fd = open(filler().c_str(), O_WRONLY | O_CREAT, 0644);
    if (fd < 0) return absl::InternalError(absl::StrCat("open filler: ", strerror(errno)));
    struct stat st;
    fstat(fd, &st);
    const int r = fallocate(fd, 0, st.st_size, static_cast<off_t>(bytes));
    const int err = errno;
    close(fd);
    if (r != 0) return absl::InternalError(absl::StrCat("fallocate: ", strerror(err)));
    return absl::OkStatus();
  }

  const std::string path_;
};

// What node `id` wrote since it was last started by the harness.
std::string LastRunLog(const Cluster& c, int id) {
  std::ifstream in(c.log_path(id));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string all = ss.str();
  const size_t start = all.rfind("=== harness: starting node");
  return start == std::string::npos ? all : all.substr(start);
}

int CountLines(const std::string& text, const std::string& needle) {
  int n = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) n += absl::StrContains(line, needle);
  return n;
}

std::vector<std::string> Alarms(Cluster* c, int id) {
  auto st = c->Status(id);
  if (!st.ok()) return {};
  return {st->alarms().begin(), st->alarms().end()};
}

bool HasNoSpace(Cluster* c, int id) {
  for (const std::string& a : Alarms(c, id)) {
    if (absl::StartsWith(a, "NOSPACE")) return true;
  }
  return false;
}

// A linearizable Get sent to node `id` only (no retry elsewhere).
grpc::Status GetFrom(Cluster* c, int id, const std::string& key, bool serializable,
                     kvpb::GetResponse* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  kvpb::GetRequest req;
  req.set_key(key);
  req.set_serializable(serializable);
  return c->kv(id)->Get(&ctx, req, resp);
}

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!mount_namespace->ok()) GTEST_SKIP() << mount_namespace->message();
    base_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/disks/",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }

  // A tmpfs of `bytes` for node `id`.
  SmallDisk* MountDisk(int id, uint64_t bytes) {
    auto d = SmallDisk::Mount(absl::StrCat(base_, "/n", id), bytes);
    EXPECT_TRUE(d.ok()) << d.status();
    if (!d.ok()) return nullptr;
    disks_[id] = std::move(*d);
    return disks_[id].get();
  }

  // Starts node `id` on its disk.
  absl::Status StartOnDisk(int id, std::vector<std::string> extra = {}) {
    extra.push_back("--data_dir=" + disks_.at(id)->data_dir());
    return c_->Start(id, extra);
  }

  std::string base_;
  // Destroyed after the cluster (declared before it): nodes stop first.
  std::map<int, std::unique_ptr<SmallDisk>> disks_;
  std::unique_ptr<Cluster> c_;
};

// A leader that cannot hand off (a one-node cluster here) refuses writes.
TEST_F(DiskFullTest, BelowReserveWritesAreRefusedReadsServedUntilSpaceIsBack) {
  constexpr uint64_t kReserve = 64 * kMiB;
  ClusterOptions o;
  o.size = 1;
  o.extra_flags = {absl::StrCat("--min_free_bytes=", kReserve)};
  c_ = std::make_unique<Cluster>(o);
  SmallDisk* disk = MountDisk(1, 192 * kMiB);
  ASSERT_NE(disk, nullptr);
  ASSERT_TRUE(StartOnDisk(1).ok());
  ASSERT_TRUE(c_->WaitForLeader().ok());
  TestClient client(c_.get());
  ASSERT_TRUE(client.Put("before", "1").ok());
  EXPECT_FALSE(HasNoSpace(c_.get(), 1));

  ASSERT_TRUE(disk->FillLeaving(kReserve / 2).ok());
  ASSERT_TRUE(Cluster::WaitFor([&] { return HasNoSpace(c_.get(), 1); }, absl::Seconds(10)))
      << "no NOSPACE alarm with " << disk->Free() << " bytes free";
  const std::string dir = disk->data_dir();
  EXPECT_THAT(Alarms(c_.get(), 1)[0], HasSubstr(absl::StrCat("NOSPACE: data dir ", dir, " has ")));

  // Writes: refused at once, not retried, saying why.
  const absl::Time start = absl::Now();
  auto put = client.Put("during", "2");
  EXPECT_EQ(put.status().code(), absl::StatusCode::kResourceExhausted) << put.status();
  EXPECT_THAT(put.status().message(), HasSubstr(absl::StrCat("data dir ", dir, " has ")));
  EXPECT_THAT(put.status().message(), HasSubstr(" bytes ("));
  EXPECT_THAT(put.status().message(), HasSubstr(absl::StrCat("--min_free_bytes=", kReserve)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(client.last_attempts(), 1);
  // Reads: served, linearizable and serializable.
  for (bool serializable : {false, true}) {
    kvpb::GetResponse got;
    grpc::Status s = GetFrom(c_.get(), 1, "before", serializable, &got);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(got.kv().value(), "1");
  }
  EXPECT_EQ(CountLines(LastRunLog(*c_, 1), "alarm NOSPACE raised: data dir " + dir), 1)
      << c_->LogTail(1);

  disk->Empty();
  ASSERT_TRUE(Cluster::WaitFor([&] { return !HasNoSpace(c_.get(), 1); }, absl::Seconds(10)));
  ASSERT_TRUE(client.Put("after", "3").ok());
  auto during = client.Get("during");
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_FALSE(during->found()) << "a refused write was applied";
  EXPECT_EQ(CountLines(LastRunLog(*c_, 1), "alarm NOSPACE cleared"), 1);
}

// A leader below its reserve hands leadership to a node with space: writes
// go on; it keeps what it has and catches up once space is back.
TEST_F(DiskFullTest, ALeaderBelowReserveHandsOffLeadership) {
  constexpr uint64_t kReserve = 64 * kMiB;
  ClusterOptions o;
  o.extra_flags = {absl::StrCat("--min_free_bytes=", kReserve)};
  c_ = std::make_unique<Cluster>(o);
  for (int id = 1; id <= 3; ++id) {
    ASSERT_NE(MountDisk(id, 192 * kMiB), nullptr);
    ASSERT_TRUE(StartOnDisk(id).ok());
  }
  auto leader = c_->WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int l = *leader;
  TestClient client(c_.get());
  client.set_preferred(l);
  ASSERT_TRUE(client.Put("before", "1").ok());

  ASSERT_TRUE(disks_[l]->FillLeaving(kReserve / 2).ok());
  ASSERT_TRUE(Cluster::WaitFor([&] { return HasNoSpace(c_.get(), l); }, absl::Seconds(10)));
  // At once, while leadership moves: retried, not refused.
  auto put = client.Put("during", "2");
  ASSERT_TRUE(put.ok()) << put.status();
  auto next = c_->WaitForLeader(absl::Seconds(15), /*excluding=*/l);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_THAT(LastRunLog(*c_, l), HasSubstr(absl::StrCat("handing leadership to node ", *next)));
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        auto s = c_->Status(*next);
        return s.ok() && s->commit_index() >= put->header().applied_index();
      },
      absl::Seconds(10)));
  EXPECT_LT(c_->Status(l)->last_index(), put->header().applied_index())
      << "a node below its reserve stored new entries";
  kvpb::GetResponse got;
  grpc::Status s = GetFrom(c_.get(), l, "before", /*serializable=*/true, &got);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got.kv().value(), "1");

  disks_[l]->Empty();
  ASSERT_TRUE(Cluster::WaitFor([&] { return !HasNoSpace(c_.get(), l); }, absl::Seconds(10)));
  auto st = c_->WaitForConvergence();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->key_count(), 2u);
}

TEST_F(DiskFullTest, FollowersBelowReserveStoreNoEntriesAndAMajorityRefusesWrites) {
  constexpr uint64_t kReserve = 64 * kMiB;
  ClusterOptions o;
  o.extra_flags = {absl::StrCat("--min_free_bytes=", kReserve)};
  c_ = std::make_unique<Cluster>(o);
  for (int id = 1; id <= 3; ++id) {
    ASSERT_NE(MountDisk(id, 192 * kMiB), nullptr);
    ASSERT_TRUE(StartOnDisk(id).ok());
  }
  auto leader = c_->WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int l = *leader;
  const int f1 = l % 3 + 1, f2 = f1 % 3 + 1;
  TestClient client(c_.get());
  client.set_preferred(l);
  ASSERT_TRUE(client.Put("a", "1").ok());
  ASSERT_TRUE(c_->WaitForConvergence().ok());

  // One follower low: writes go on (leader + the other follower); it keeps
  // what it has and serves it, but stores nothing new.
  ASSERT_TRUE(disks_[f1]->FillLeaving(kReserve / 2).ok());
  ASSERT_TRUE(Cluster::WaitFor([&] { return HasNoSpace(c_.get(), f1); }, absl::Seconds(10)));
  const uint64_t f1_last = c_->Status(f1)->last_index();
  const absl::Time start = absl::Now();
  auto b = client.Put("b", "2");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        auto s = c_->Status(f2);
        return s.ok() && s->applied_index() >= b->header().applied_index();
      },
      absl::Seconds(10)));
  EXPECT_EQ(c_->Status(f1)->last_index(), f1_last) << "a follower below its reserve stored entries";
  kvpb::GetResponse got;
  grpc::Status s = GetFrom(c_.get(), f1, "b", /*serializable=*/false, &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("free-space reserve"));
  s = GetFrom(c_.get(), f1, "a", /*serializable=*/true, &got);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got.kv().value(), "1");
  auto via_client = client.Get("b");  // retried on another node
  ASSERT_TRUE(via_client.ok()) << via_client.status();
  EXPECT_EQ(via_client->kv().value(), "2");

  // Both followers low: no write can commit; the leader says so at once,
  // once it has heard from them (a heartbeat), rather than let writes hang.
  ASSERT_TRUE(disks_[f2]->FillLeaving(kReserve / 2).ok());
  ASSERT_TRUE(Cluster::WaitFor([&] { return HasNoSpace(c_.get(), f2); }, absl::Seconds(10)));
  absl::Status refused;
  absl::Duration took;
  int polls = 0;
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        const absl::Time t = absl::Now();
        auto put = client.Put(absl::StrCat("poll-", ++polls), "x", absl::Seconds(1));
        took = absl::Now() - t;
        refused = put.status();
        return refused.code() == absl::StatusCode::kResourceExhausted;
      },
      absl::Seconds(20)))
      << "last: " << refused;
  EXPECT_THAT(refused.message(), HasSubstr("below their free-space reserve"));
  EXPECT_THAT(refused.message(), HasSubstr("--min_free_bytes"));
  EXPECT_LT(took, absl::Seconds(1));
  s = GetFrom(c_.get(), l, "a", /*serializable=*/false, &got);
  EXPECT_TRUE(s.ok()) << s.error_message();

  // Space back: alarms clear, writes resume, the followers catch up.
  disks_[f1]->Empty();
  disks_[f2]->Empty();
  ASSERT_TRUE(Cluster::WaitFor(
      [&] { return !HasNoSpace(c_.get(), f1) && !HasNoSpace(c_.get(), f2); },
      absl::Seconds(10)));
  absl::Status last;
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        last = client.Put("c", "3", absl::Seconds(2)).status();
        return last.ok();
      },
      absl::Seconds(10)))
      << last;
  auto st = c_->WaitForConvergence();
  ASSERT_TRUE(st.ok()) << st.status();
  for (int id = 1; id <= 3; ++id) {
    auto data = c_->ScanAll(id, /*serializable=*/true);
    ASSERT_TRUE(data.ok()) << data.status();
    EXPECT_EQ(data->at("a").value(), "1");
    EXPECT_EQ(data->at("b").value(), "2");
    EXPECT_EQ(data->at("c").value(), "3");
  }
}

TEST_F(DiskFullTest, ENOSPCStopsTheNodeCleanlyAndItRestartsOnceSpaceIsBack) {
  c_ = std::make_unique<Cluster>();
  // Node 3 on a 64 MiB disk with 2 MiB left and no reserve: its writes fail.
  SmallDisk* disk = MountDisk(3, 64 * kMiB);
  ASSERT_NE(disk, nullptr);
  ASSERT_TRUE(disk->FillLeaving(2 * kMiB).ok());
  const std::vector<std::string> n3 = {"--min_free_bytes=0"};
  ASSERT_TRUE(c_->Start(1).ok());
  ASSERT_TRUE(c_->Start(2).ok());
  ASSERT_TRUE(StartOnDisk(3, n3).ok());
  ASSERT_TRUE(c_->WaitForLeader().ok());

  TestClient client(c_.get());
  std::vector<WriteLoad::Ack> acks;
  const std::string value(512 << 10, 'v');
  ExitResult ended;
  for (int i = 0; i < 200 && !ended.exited; ++i) {
    const std::string key = absl::StrCat("big-", i);
    auto put = client.Put(key, value);
    ASSERT_TRUE(put.ok()) << key << ": " << put.status();
    acks.push_back({key, value, put->version(), absl::Now()});
    ended = c_->WaitForExit(3, absl::ZeroDuration());
  }
  if (!ended.exited) ended = c_->WaitForExit(3, absl::Seconds(10));
  ASSERT_TRUE(ended.exited) << "node 3 kept running with " << disk->Free() << " bytes free";
  const std::string log = LastRunLog(*c_, 3);
  EXPECT_EQ(ended.term_signal, 0) << "killed by a signal, not an exit:\n" << log;
  EXPECT_EQ(ended.exit_code, 74) << log;
  const std::string line = "stopping: a write to data dir " + disk->data_dir() + " failed (";
  EXPECT_EQ(CountLines(log, line), 1) << log;
  EXPECT_EQ(CountLines(log, " free on its filesystem): RESOURCE_EXHAUSTED: "), 1) << log;
  EXPECT_THAT(log, Not(HasSubstr("Assertion")));
  EXPECT_THAT(log, Not(HasSubstr("Check failed")));

  // The others go on.
  for (int i = 0; i < 3; ++i) {
    const std::string key = absl::StrCat("after-", i);
    auto put = client.Put(key, "small");
    ASSERT_TRUE(put.ok()) << put.status();
    acks.push_back({key, "small", put->version(), absl::Now()});
  }

  // Restarted on a full disk it refuses the same way.
  ASSERT_TRUE(disk->FillCompletely().ok());
  std::vector<std::string> flags = c_->NodeFlags(3);
  flags.push_back("--data_dir=" + disk->data_dir());
  flags.push_back("--min_free_bytes=0");
  ExitResult again = c_->RunServer(flags, "n3-restart-full.log");
  ASSERT_TRUE(again.exited) << again.output;
  EXPECT_EQ(again.term_signal, 0) << again.output;
  EXPECT_EQ(again.exit_code, 74) << again.output;
  EXPECT_EQ(CountLines(again.output, line + "0 bytes (0.0 MiB) free on its filesystem)"), 1)
      << again.output;

  // Space back: it restarts, catches up, and every node has every
  // acknowledged write.
  disk->Empty();
  ASSERT_TRUE(StartOnDisk(3, n3).ok());
  auto st = c_->WaitForConvergence(absl::Seconds(60));
  ASSERT_TRUE(st.ok()) << st.status();
  for (int id = 1; id <= 3; ++id) {
    auto data = c_->ScanAll(id, /*serializable=*/true);
    ASSERT_TRUE(data.ok()) << data.status();
    EXPECT_TRUE(CheckAcked(acks, *data).ok()) << "node " << id << ": " << CheckAcked(acks, *data);
  }
}

}  // namespace
}  // namespace raftkv::testing

int main(int argc, char** argv) {
  // Before any thread exists: the mount namespace is per thread until then.
  raftkv::testing::mount_namespace =
      new absl::Status(raftkv::testing::EnterPrivateMountNamespace());
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
