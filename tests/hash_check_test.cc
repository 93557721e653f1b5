// Members compare a hash of their state at the same index: a member whose
// data silently differ (damage no checksum sees: here a value rewritten
// with a valid checksum while it was stopped) is named CORRUPT, on itself
// only; the others go on. When no majority agrees, every member is named
// and no write is taken.
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

using ::testing::HasSubstr;

// Rewrites the value of the first user key in the stopped node's data with
// RocksDB's own API, so every checksum stays valid: flips the bits `flip`
// of its last byte. Returns the record's key (as mvcc/encoding.h lays it out).
std::string TamperWithAValue(const std::string& dir, char flip = 0x01) {
  std::vector<std::string> names;
  rocksdb::Options options;
  EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(options, dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, cfs, &handles, &db);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return "";
  rocksdb::ColumnFamilyHandle* data = nullptr;
  for (auto* h : handles) {
    if (h->GetName() == "data") data = h;
  }
  std::string key;
  {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), data));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      // Generation byte, then 'h' + the escaped user key + the revision.
      if (it->key().size() > 2 && it->key()[1] == 'h') {
        key = it->key().ToString();
        std::string v = it->value().ToString();
        v.back() ^= flip;
        EXPECT_TRUE(db->Put(rocksdb::WriteOptions(), data, key, v).ok());
        break;
      }
    }
    EXPECT_TRUE(it->status().ok());
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  EXPECT_TRUE(db->Close().ok());
  delete db;
  return key.empty() ? key : key.substr(1);
}

// True if any key or value of any column family of the stopped node's
// store contains `marker`: a write whose value it is was appended to the
// log (log column family) or applied (data).
bool StoreHolds(const std::string& dir, const std::string& marker) {
  std::vector<std::string> names;
  rocksdb::Options options;
  EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(options, dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(options, dir, cfs, &handles, &db);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return false;
  bool found = false;
  for (auto* h : handles) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), h));
    for (it->SeekToFirst(); it->Valid() && !found; it->Next()) {
      found = it->key().ToString().find(marker) != std::string::npos ||
              it->value().ToString().find(marker) != std::string::npos;
    }
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
  return found;
}

bool HasCorruptAlarm(const adminpb::StatusResponse& s) {
  for (const auto& a : s.alarms()) {
    if (a.rfind("CORRUPT", 0) == 0) return true;
  }
  return false;
}

TEST(HashCheckTest, AMemberWhoseStateDiffersIsNamedCorruptAndTheOthersGoOn) {
  ClusterOptions o;
  o.extra_flags = {"--corrupt_check_interval=1s"};
  Cluster c(o);
  ASSERT_TRUE(c.StartAll().ok());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  TestClient client(&c);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(client.Put(absl::StrCat("k", i), "value").ok());
  ASSERT_TRUE(c.WaitForConvergence().ok());
  // A check passes with nobody named.
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        for (int id = 1; id <= c.size(); ++id) {
          auto s = c.Status(id);
          if (!s.ok() || s->state_hashes_size() == 0) return false;
        }
        return true;
      },
      absl::Seconds(20)));
  for (int id = 1; id <= c.size(); ++id) {
    auto s = c.Status(id);
    ASSERT_TRUE(s.ok());
    EXPECT_FALSE(HasCorruptAlarm(*s)) << "node " << id << " flagged on equal data";
  }

  const int f = *leader % c.size() + 1;
  ASSERT_TRUE(c.Stop(f).exited);
  const std::string key = TamperWithAValue(c.data_dir(f));
  ASSERT_FALSE(key.empty());
  ASSERT_TRUE(c.Start(f).ok());

  std::string why;
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        auto s = c.Status(f);
        if (!s.ok()) return false;
        why = absl::StrJoin(s->alarms(), "; ");
        return HasCorruptAlarm(*s);
      },
      absl::Seconds(30)))
      << "the member whose data differ was not flagged";
  EXPECT_THAT(why, HasSubstr("on a majority of the voters: this node's data differ"));
  for (int id = 1; id <= c.size(); ++id) {
    if (id == f) continue;
    auto s = c.Status(id);
    ASSERT_TRUE(s.ok());
    EXPECT_FALSE(HasCorruptAlarm(*s)) << "healthy node " << id << " was flagged";
  }
  EXPECT_TRUE(Cluster::WaitFor(
      [&] {
        for (int id = 1; id <= c.size(); ++id) {
          if (id != f && c.LogTail(id).find(absl::StrCat("node ", f, "'s data differ")) !=
                             std::string::npos) {
            return true;
          }
        }
        return false;
      },
      absl::Seconds(20)))
      << "no healthy member named node " << f;
  EXPECT_TRUE(client.Put("after", "x").ok()) << "the healthy majority stopped taking writes";

  // The alarm is stored: restarted (with no check or scrub to find the
  // damage again), the member is corrupt from its first answer on...
  ASSERT_TRUE(c.Stop(f).exited);
  const std::vector<std::string> quiet = {"--corrupt_check_interval=0", "--scrub_interval=0"};
  ASSERT_TRUE(c.Start(f, quiet).ok());
  absl::StatusOr<adminpb::StatusResponse> first;
  ASSERT_TRUE(Cluster::WaitFor([&] { return (first = c.Status(f)).ok(); }, absl::Seconds(10)));
  EXPECT_TRUE(HasCorruptAlarm(*first)) << "a restart made the corrupt member look healthy";
  EXPECT_THAT(absl::StrJoin(first->alarms(), "; "),
              HasSubstr("raised before a restart: the state at index"));
  // ...until an operator clears it.
  ASSERT_TRUE(c.Stop(f).exited);
  std::vector<std::string> clear = quiet;
  clear.push_back("--clear_corrupt_alarm");
  ASSERT_TRUE(c.Start(f, clear).ok());
  ASSERT_TRUE(Cluster::WaitFor([&] { return (first = c.Status(f)).ok(); }, absl::Seconds(10)));
  EXPECT_FALSE(HasCorruptAlarm(*first)) << absl::StrJoin(first->alarms(), "; ");
  EXPECT_THAT(c.LogTail(f), HasSubstr("--clear_corrupt_alarm: forgot alarm CORRUPT"));
}

// Two followers damaged differently: no two members agree, so no one can
// tell which data are right. Every member raises CORRUPT, and the cluster
// takes no write, through any member, until an operator acts.
TEST(HashCheckTest, WhenNoMajorityAgreesEveryMemberIsCorruptAndNoWriteIsTaken) {
  ClusterOptions o;
  o.extra_flags = {"--corrupt_check_interval=1s"};
  Cluster c(o);
  ASSERT_TRUE(c.StartAll().ok());
  auto leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  TestClient client(&c);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(client.Put(absl::StrCat("k", i), "value").ok());
  ASSERT_TRUE(c.WaitForConvergence().ok());

  const int f1 = *leader % c.size() + 1;
  const int f2 = f1 % c.size() + 1;
  for (int f : {f1, f2}) ASSERT_TRUE(c.Stop(f).exited);
  ASSERT_FALSE(TamperWithAValue(c.data_dir(f1), 0x01).empty());
  ASSERT_FALSE(TamperWithAValue(c.data_dir(f2), 0x02).empty());
  for (int f : {f1, f2}) ASSERT_TRUE(c.Start(f).ok());

  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        for (int id = 1; id <= c.size(); ++id) {
          auto s = c.Status(id);
          if (!s.ok() || !HasCorruptAlarm(*s)) return false;
        }
        return true;
      },
      absl::Seconds(40)))
      << "not every member raised CORRUPT";
  for (int id = 1; id <= c.size(); ++id) {
    auto s = c.Status(id);
    ASSERT_TRUE(s.ok());
    const std::string why = absl::StrJoin(s->alarms(), "; ");
    EXPECT_THAT(why, HasSubstr("no majority of the voters agrees on the state at index"))
        << "node " << id;
    EXPECT_THAT(why, HasSubstr("the cluster takes no writes until an operator acts"));
  }

  // Through each member: refused for good (DATA_LOSS, not retried), once
  // the leader has heard that every voter is corrupt.
  const std::string marker = "written-while-every-member-is-corrupt";
  for (int id = 1; id <= c.size(); ++id) {
    client.set_preferred(id);
    auto put = client.Put(absl::StrCat("after", id), marker);
    ASSERT_FALSE(put.ok()) << "a write through node " << id << " was taken";
    EXPECT_TRUE(absl::IsDataLoss(put.status())) << put.status();
    EXPECT_THAT(std::string(put.status().message()),
                HasSubstr("has alarm CORRUPT, and so has every other voter"));
    EXPECT_THAT(std::string(put.status().message()), HasSubstr("until an operator acts"));
  }
  // Nothing of those writes reached any member's log or data.
  for (int id = 1; id <= c.size(); ++id) ASSERT_TRUE(c.Stop(id).exited);
  for (int id = 1; id <= c.size(); ++id) {
    EXPECT_FALSE(StoreHolds(c.data_dir(id), marker)) << "node " << id << " stored a write";
  }
}

// A node that joins gets the log from the start (no snapshot yet), where the
// founders' incarnation records were proposed at a membership it never saw:
// it must still reach the same state, byte for byte.
TEST(HashCheckTest, ANodeThatJoinedFromTheLogHasTheSameState) {
  ClusterOptions o;
  o.spares = 1;
  o.extra_flags = {"--corrupt_check_interval=1s"};
  Cluster c(o);
  ASSERT_TRUE(c.StartAll().ok());
  ASSERT_TRUE(c.WaitForLeader().ok());
  TestClient client(&c);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(client.Put(absl::StrCat("k", i), "v").ok());
  ASSERT_TRUE(c.Start(4).ok());
  // Node 4 is promoted to voter, then a check covers all four.
  uint64_t index = 0;
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        auto s4 = c.Status(4);
        if (!s4.ok() || s4->voters_size() != 4 || s4->state_hashes_size() == 0) return false;
        index = s4->state_hashes(s4->state_hashes_size() - 1).index();
        for (int id = 1; id <= 3; ++id) {
          auto s = c.Status(id);
          if (!s.ok()) return false;
          bool has = false;
          for (const auto& h : s->state_hashes()) has |= h.index() == index;
          if (!has) return false;
        }
        return true;
      },
      absl::Seconds(30)))
      << "no check covered the joined node";
  std::set<uint64_t> hashes;
  for (int id = 1; id <= 4; ++id) {
    auto s = c.Status(id);
    ASSERT_TRUE(s.ok());
    EXPECT_FALSE(HasCorruptAlarm(*s)) << "node " << id << ": " << absl::StrJoin(s->alarms(), ";");
    for (const auto& h : s->state_hashes()) {
      if (h.index() == index) hashes.insert(h.hash());
    }
  }
  EXPECT_EQ(hashes.size(), 1u) << "the members' states differ at index " << index;
}

}  // namespace
}  // namespace raftkv::testing
