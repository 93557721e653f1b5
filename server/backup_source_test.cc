// StreamBackup and RestoreBackup on real stores: a member's state streamed
// to a file, then restored into new data dirs.
#include "server/backup_source.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/backup_file.h"
#include "server/backup_restore.h"
#include "storage/log_store.h"

namespace raftkv::server {
namespace {

using ::testing::HasSubstr;

class BackupSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = absl::StrCat(getenv("TEST_TMPDIR"), "/",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(base_);
    std::filesystem::create_directories(base_);
    storage::Options o;
    o.dir = base_ + "/source";
    auto s = storage::LogStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    storagepb::NodeIdentity id;
    id.set_cluster_id(kOldCluster);
    id.set_node_id(1);
    id.set_incarnation(11);
    raftpb::ConfState conf;
    for (uint64_t v : {1, 2, 3}) conf.add_voters(v);
    ASSERT_TRUE(store_->Bootstrap(id, conf).ok());
    auto sm = KvStateMachine::Open(store_.get());
    ASSERT_TRUE(sm.ok()) << sm.status();
    sm_ = std::move(*sm);
  }

  // Appends `e` to the log (at the next index, term 3) and applies it.
  void Commit(raftpb::Entry e) {
    e.set_index(++index_);
    e.set_term(3);
    raftpb::HardState hs;
    hs.set_term(3);
    hs.set_commit(index_);
    ASSERT_TRUE(store_->Append({e}, &hs).ok());
    auto r = sm_->Apply({e});
    ASSERT_TRUE(r.ok()) << r.status();
  }
  void Put(const std::string& k, const std::string& v, uint64_t client = 0, uint64_t seq = 0) {
    kvpb::Command c;
    c.mutable_header()->set_client_id(client);
    c.mutable_header()->set_seq(seq);
    c.mutable_put()->set_key(k);
    c.mutable_put()->set_value(v);
    raftpb::Entry e;
    e.set_data(c.SerializeAsString());
    Commit(e);
  }
  // The old cluster's membership records: node 4 added with an address,
  // and incarnations recorded.
  void AddMember4() {
    raftpb::ConfChange cc;
    cc.set_type(raftpb::CONF_ADD_LEARNER);
    cc.set_node_id(4);
    cc.set_context("127.0.0.1:7004");
    for (uint64_t v : {1, 2, 3}) cc.mutable_result()->add_voters(v);
    cc.mutable_result()->add_learners(4);
    raftpb::Entry e;
    e.set_type(raftpb::ENTRY_CONF_CHANGE);
    e.set_data(cc.SerializeAsString());
    Commit(e);
    raftpb::Entry rec;
    rec.set_data(KvStateMachine::IncarnationCommand(4, 44, index_));
    Commit(rec);
  }

  // Streams a backup of the source into `path`.
  absl::StatusOr<BackupSummary> Save(const std::string& path, size_t chunk_bytes = 1 << 20,
                                     bool etcd_size = false) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    BackupSourceOptions o;
    o.cluster_id = kOldCluster;
    o.member_id = 1;
    o.bytes_per_sec = 0;
    o.chunk_bytes = chunk_bytes;
    o.etcd_size = etcd_size;
    int chunks = 0;
    auto r = StreamBackup(*sm_, o, [&](std::string chunk) {
      ++chunks;
      f.write(chunk.data(), chunk.size());
      return true;
    });
    chunks_ = chunks;
    return r;
  }

  static constexpr uint64_t kOldCluster = 0xabcdef;
  std::string base_;
  uint64_t index_ = 0;
  int chunks_ = 0;
  std::unique_ptr<storage::LogStore> store_;
  std::unique_ptr<KvStateMachine> sm_;
};

TEST_F(BackupSourceTest, StreamsTheStateAsOfOneIndex) {
  for (int i = 0; i < 300; ++i) Put(absl::StrCat("key", i), std::string(100, 'a' + i % 26), 7, i + 1);
  const std::string path = base_ + "/b";
  auto sum = Save(path, /*chunk_bytes=*/4096);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_GT(chunks_, 5);  // chunked, not one message
  EXPECT_EQ(sum->applied_index, index_);
  EXPECT_EQ(sum->term, 3u);
  EXPECT_EQ(sum->keys, 300u);
  // Each key's record and its revision index entry, the revision counter
  // and client 7's session.
  EXPECT_EQ(sum->records, 2 * 300u + 1 + 1);
  auto info = VerifyBackup(path);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->header.applied_index(), index_);
  EXPECT_EQ(info->header.term(), 3u);
  EXPECT_EQ(info->header.cluster_id(), kOldCluster);
  EXPECT_EQ(info->header.member_id(), 1u);
  EXPECT_EQ(info->header.voters_size(), 3);
  EXPECT_EQ(info->keys, 300u);
  EXPECT_EQ(info->bytes, sum->bytes);
}

TEST_F(BackupSourceTest, ARefusingReceiverCancels) {
  for (int i = 0; i < 100; ++i) Put(absl::StrCat("key", i), std::string(100, 'x'));
  BackupSourceOptions o;
  o.chunk_bytes = 1024;
  int calls = 0;
  auto r = StreamBackup(*sm_, o, [&](std::string) { return ++calls < 2; });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 2);
  o.bytes_per_sec = 1000;
  EXPECT_THAT(o.Validate().message(), HasSubstr("at least 65536"));
}

TEST_F(BackupSourceTest, RestoreFoundsANewClusterWithTheData) {
  for (int i = 0; i < 50; ++i) Put(absl::StrCat("key", i), absl::StrCat("v", i), 9, i + 1);
  AddMember4();
  Put("last", "x");
  const uint64_t backup_index = index_;
  const std::string path = base_ + "/b";
  ASSERT_TRUE(Save(path).ok());

  auto spec = ParseClusterSpec("1=127.0.0.1:9001,2=127.0.0.1:9002,3=127.0.0.1:9003");
  ASSERT_TRUE(spec.ok());
  uint64_t first_cluster = 0;
  for (uint64_t id : {1, 2}) {
    RestoreOptions ro;
    ro.backup_path = path;
    ro.data_dir = absl::StrCat(base_, "/restored", id);
    ro.node_id = id;
    ro.cluster = *spec;
    auto r = RestoreBackup(ro);
    ASSERT_TRUE(r.ok()) << r.status();
    // The keys' records with their revision index entries, the revision
    // counter and the session; not the records of node 4.
    EXPECT_EQ(r->records, 2 * (50u + 1) + 1 + 1);
    EXPECT_NE(r->cluster_id, kOldCluster);
    EXPECT_NE(r->cluster_id, ClusterIdOf(*spec));
    if (first_cluster == 0) first_cluster = r->cluster_id;
    EXPECT_EQ(r->cluster_id, first_cluster);  // the members agree without talking

    storage::Options o;
    o.dir = ro.data_dir;
    o.create_if_missing = false;
    auto store = storage::LogStore::Open(o);
    ASSERT_TRUE(store.ok()) << store.status();
    auto identity = (*store)->identity();
    ASSERT_TRUE(identity.has_value());
    EXPECT_EQ(identity->cluster_id(), r->cluster_id);
    EXPECT_EQ(identity->node_id(), id);
    EXPECT_NE(identity->incarnation(), 0u);
    EXPECT_EQ(identity->restored_spec_id(), ClusterIdOf(*spec));
    EXPECT_EQ((*store)->applied_index(), backup_index);
    EXPECT_EQ((*store)->LastIndex(), backup_index);
    EXPECT_EQ((*store)->hard_state().term(), 3u);
    EXPECT_EQ((*store)->hard_state().commit(), backup_index);
    auto snap = (*store)->GetSnapshot();
    ASSERT_TRUE(snap.ok());
    EXPECT_EQ(snap->metadata().index(), backup_index);
    EXPECT_EQ(snap->metadata().term(), 3u);
    EXPECT_EQ(snap->metadata().conf_state().voters_size(), 3);
    EXPECT_EQ(snap->metadata().conf_state().learners_size(), 0);

    auto sm = KvStateMachine::Open(store->get());
    ASSERT_TRUE(sm.ok()) << sm.status();
    for (int i = 0; i < 50; ++i) {
      auto kv = (*sm)->Get(absl::StrCat("key", i));
      ASSERT_TRUE(kv.ok()) << kv.status();
      EXPECT_EQ(kv->value(), absl::StrCat("v", i));
      EXPECT_EQ(kv->version(), static_cast<uint64_t>(i + 1));
    }
    EXPECT_EQ((*sm)->session_count(), 1u);
    EXPECT_TRUE((*sm)->MemberAddresses()->empty());
    EXPECT_TRUE((*sm)->Incarnations().empty());
    EXPECT_EQ((*sm)->Membership().first, 0u);
    EXPECT_EQ((*sm)->Membership().second.voters_size(), 3);
    EXPECT_EQ((*sm)->Digest()->first, sm_->Digest()->first);
  }

  // Another membership, or another backup: another cluster.
  auto other = ParseClusterSpec("1=127.0.0.1:9001,2=127.0.0.1:9002");
  EXPECT_NE(RestoredClusterId(VerifyBackup(path)->sha256_hex, *other, kOldCluster), first_cluster);
  Put("more", "y");
  ASSERT_TRUE(Save(base_ + "/b2").ok());
  EXPECT_NE(RestoredClusterId(VerifyBackup(base_ + "/b2")->sha256_hex, *spec, kOldCluster),
            first_cluster);
}

// For `etcdctl snapshot save`: every size is 32 mod 512, the file still a
// backup that verifies; a restore drops the padding and etcd's alarms.
TEST_F(BackupSourceTest, EtcdSizedBackupsVerifyAndRestoreWithoutThePadding) {
  kvpb::Command alarm;
  alarm.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
  alarm.mutable_alarm()->set_memberid(1);
  alarm.mutable_alarm()->set_alarm(etcdserverpb::CORRUPT);  // NOSPACE would refuse the puts
  raftpb::Entry e;
  e.set_data(alarm.SerializeAsString());
  Commit(e);
  ASSERT_EQ(sm_->etcd_alarms().List().size(), 1u);
  auto spec = ParseClusterSpec("1=127.0.0.1:9001");
  ASSERT_TRUE(spec.ok());
  for (int i = 0; i < 40; ++i) {
    Put(absl::StrCat("key", i), std::string(i * 7, 'v'));
    const std::string path = absl::StrCat(base_, "/b", i);
    auto sum = Save(path, 1 << 20, /*etcd_size=*/true);
    ASSERT_TRUE(sum.ok()) << sum.status();
    EXPECT_EQ(sum->bytes % 512, 32u) << i;
    EXPECT_EQ(std::filesystem::file_size(path), sum->bytes);
    auto info = VerifyBackup(path);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->keys, i + 1u);
    if (i % 13 != 0) continue;
    RestoreOptions ro;
    ro.backup_path = path;
    ro.data_dir = absl::StrCat(base_, "/restored", i);
    ro.node_id = 1;
    ro.cluster = *spec;
    auto r = RestoreBackup(ro);
    ASSERT_TRUE(r.ok()) << r.status();
    // The keys' records and revision index entries and the revision counter.
    EXPECT_EQ(r->records, 2 * (i + 1u) + 1);
  }
}

TEST_F(BackupSourceTest, RestoreRefusesAndWritesNothing) {
  Put("a", "1");
  const std::string path = base_ + "/b";
  ASSERT_TRUE(Save(path).ok());
  auto spec = ParseClusterSpec("1=127.0.0.1:9001,2=127.0.0.1:9002,3=127.0.0.1:9003");
  RestoreOptions ro;
  ro.backup_path = path;
  ro.data_dir = base_ + "/r";
  ro.node_id = 4;
  ro.cluster = *spec;
  EXPECT_THAT(RestoreBackup(ro).status().message(), HasSubstr("--id=4 is not in --cluster"));
  ro.node_id = 1;

  // A non-empty data dir.
  std::filesystem::create_directories(ro.data_dir);
  std::ofstream(ro.data_dir + "/x") << "x";
  auto r = RestoreBackup(ro);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("is not empty"));
  std::filesystem::remove_all(ro.data_dir);

  // A corrupt file: the data dir is not even created.
  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  bytes[bytes.size() / 2] ^= 1;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  r = RestoreBackup(ro);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_FALSE(std::filesystem::exists(ro.data_dir));
}

}  // namespace
}  // namespace raftkv::server
