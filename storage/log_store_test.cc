#include "storage/log_store.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/encoding.h"

namespace raftkv::storage {
namespace {

using ::testing::HasSubstr;

std::string TestDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(base != nullptr ? base : "/tmp", "/",
                                 info->test_suite_name(), ".", info->name());
  std::filesystem::remove_all(dir);
  return dir;
}

raftpb::Entry MakeEntry(uint64_t index, uint64_t term, size_t size = 10) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::string(size, static_cast<char>('a' + index % 26)));
  return e;
}

std::vector<raftpb::Entry> MakeEntries(uint64_t lo, uint64_t hi, uint64_t term,
                                       size_t size = 10) {
  std::vector<raftpb::Entry> out;
  for (uint64_t i = lo; i < hi; ++i) out.push_back(MakeEntry(i, term, size));
  return out;
}

raftpb::HardState MakeHardState(uint64_t term, uint64_t vote, uint64_t commit) {
  raftpb::HardState hs;
  hs.set_term(term);
  hs.set_vote(vote);
  hs.set_commit(commit);
  return hs;
}

storagepb::NodeIdentity MakeIdentity(uint64_t cluster, uint64_t node) {
  storagepb::NodeIdentity id;
  id.set_cluster_id(cluster);
  id.set_node_id(node);
  return id;
}

raftpb::ConfState Voters(std::vector<uint64_t> ids) {
  raftpb::ConfState cs;
  for (uint64_t id : ids) cs.add_voters(id);
  return cs;
}

class LogStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.dir = TestDir();
    Reopen();
  }

  void Reopen() {
    store_.reset();
    auto store = LogStore::Open(options_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  // The terms of [lo, hi) as read through Term().
  std::vector<uint64_t> Terms(uint64_t lo, uint64_t hi) {
    std::vector<uint64_t> out;
    for (uint64_t i = lo; i < hi; ++i) {
      auto t = store_->Term(i);
      EXPECT_TRUE(t.ok()) << t.status();
      out.push_back(t.ok() ? *t : ~uint64_t{0});
    }
    return out;
  }

  Options options_;
  std::unique_ptr<LogStore> store_;
};

TEST_F(LogStoreTest, NewStoreIsEmpty) {
  EXPECT_EQ(store_->FirstIndex(), 1u);
  EXPECT_EQ(store_->LastIndex(), 0u);
  EXPECT_EQ(*store_->Term(0), 0u);
  EXPECT_EQ(store_->Term(1).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(store_->applied_index(), 0u);
  EXPECT_FALSE(store_->identity().has_value());
  auto init = store_->GetInitialState();
  ASSERT_TRUE(init.ok());
  EXPECT_EQ(init->hard_state.commit(), 0u);
  EXPECT_EQ(init->snapshot.index(), 0u);
  auto entries = store_->Entries(1, 1, 100);
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE(entries->empty());
}

TEST_F(LogStoreTest, AppendAndRead) {
  raftpb::HardState hs = MakeHardState(1, 1, 3);
  ASSERT_TRUE(store_->Append(MakeEntries(1, 6, 1), &hs).ok());
  EXPECT_EQ(store_->FirstIndex(), 1u);
  EXPECT_EQ(store_->LastIndex(), 5u);
  EXPECT_EQ(Terms(0, 6), (std::vector<uint64_t>{0, 1, 1, 1, 1, 1}));
  auto entries = store_->Entries(2, 5, ~uint64_t{0});
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ((*entries)[i].index(), 2u + i);
    EXPECT_EQ((*entries)[i].data(), MakeEntry(2 + i, 1).data());
  }
  EXPECT_EQ(store_->hard_state().commit(), 3u);
  EXPECT_EQ(store_->GetInitialState()->hard_state.vote(), 1u);
}

TEST_F(LogStoreTest, AppendReplacesConflictingSuffix) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 11, 1), nullptr).ok());
  raftpb::HardState hs = MakeHardState(2, 3, 2);
  ASSERT_TRUE(store_->Append(MakeEntries(4, 6, 2), &hs).ok());
  EXPECT_EQ(store_->LastIndex(), 5u);
  EXPECT_EQ(Terms(1, 6), (std::vector<uint64_t>{1, 1, 1, 2, 2}));
  EXPECT_EQ(store_->Term(6).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(store_->Entries(1, 7, 1000).status().code(),
            absl::StatusCode::kOutOfRange);
  // Overwriting in the middle with a longer run extends the log.
  ASSERT_TRUE(store_->Append(MakeEntries(5, 9, 3), nullptr).ok());
  EXPECT_EQ(Terms(1, 9), (std::vector<uint64_t>{1, 1, 1, 2, 3, 3, 3, 3}));
  // The deleted suffix stays deleted after a reopen.
  Reopen();
  EXPECT_EQ(store_->LastIndex(), 8u);
  EXPECT_EQ(Terms(1, 9), (std::vector<uint64_t>{1, 1, 1, 2, 3, 3, 3, 3}));
  auto all = store_->Entries(1, 9, ~uint64_t{0});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->size(), 8u);
}

TEST_F(LogStoreTest, AppendRejectsBadInput) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 4, 1), nullptr).ok());
  // Gap after the last index.
  EXPECT_EQ(store_->Append(MakeEntries(5, 6, 1), nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  // Not contiguous.
  std::vector<raftpb::Entry> holes = {MakeEntry(4, 1), MakeEntry(6, 1)};
  EXPECT_EQ(store_->Append(holes, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  // Index 0 is never an entry.
  EXPECT_EQ(store_->Append({MakeEntry(0, 1)}, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  // Commit past the resulting last index.
  raftpb::HardState hs = MakeHardState(1, 0, 5);
  EXPECT_EQ(store_->Append(MakeEntries(4, 5, 1), &hs).code(),
            absl::StatusCode::kInvalidArgument);
  // Truncating below the stored commit.
  hs = MakeHardState(1, 0, 3);
  ASSERT_TRUE(store_->Append({}, &hs).ok());
  EXPECT_EQ(store_->Append(MakeEntries(2, 3, 2), nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  // Nothing changed.
  EXPECT_EQ(store_->LastIndex(), 3u);
  EXPECT_EQ(Terms(1, 4), (std::vector<uint64_t>{1, 1, 1}));
  EXPECT_EQ(store_->hard_state().commit(), 3u);
}

TEST_F(LogStoreTest, HardStateOnlyAppend) {
  raftpb::HardState hs = MakeHardState(7, 2, 0);
  ASSERT_TRUE(store_->Append({}, &hs).ok());
  ASSERT_TRUE(store_->Append({}, nullptr).ok());
  Reopen();
  EXPECT_EQ(store_->hard_state().term(), 7u);
  EXPECT_EQ(store_->hard_state().vote(), 2u);
  EXPECT_EQ(store_->LastIndex(), 0u);
}

TEST_F(LogStoreTest, EntriesByteBudget) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 11, 1, 100), nullptr).ok());
  const uint64_t size = MakeEntry(1, 1, 100).ByteSizeLong();
  auto count = [&](uint64_t lo, uint64_t hi, uint64_t max_bytes) -> size_t {
    auto e = store_->Entries(lo, hi, max_bytes);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? e->size() : 0;
  };
  EXPECT_EQ(count(1, 11, 0), 1u);  // always at least one
  EXPECT_EQ(count(1, 11, 1), 1u);
  EXPECT_EQ(count(1, 11, size), 1u);
  EXPECT_EQ(count(1, 11, 2 * size - 1), 1u);
  EXPECT_EQ(count(1, 11, 2 * size), 2u);
  EXPECT_EQ(count(1, 11, 3 * size + 1), 3u);
  EXPECT_EQ(count(3, 11, 100 * size), 8u);
  EXPECT_EQ(count(3, 5, 100 * size), 2u);
  EXPECT_EQ(count(10, 11, 0), 1u);
  auto e = store_->Entries(4, 11, 2 * size);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)[0].index(), 4u);
  EXPECT_EQ((*e)[1].index(), 5u);
  EXPECT_EQ(store_->Entries(5, 4, 100).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Entries(0, 4, 100).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(LogStoreTest, CompactionBoundaries) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 6, 1), nullptr).ok());
  ASSERT_TRUE(store_->Append(MakeEntries(6, 11, 2), nullptr).ok());
  ASSERT_TRUE(store_->ApplyBatch(DataBatch(), 7).ok());

  // Not applied yet / past the last index / wrong term.
  EXPECT_EQ(store_->Compact(8, 2, Voters({1})).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Compact(5, 2, Voters({1})).code(),
            absl::StatusCode::kInvalidArgument);

  ASSERT_TRUE(store_->Compact(5, 1, Voters({1, 2, 3})).ok());
  EXPECT_EQ(store_->FirstIndex(), 6u);
  EXPECT_EQ(store_->LastIndex(), 10u);
  EXPECT_EQ(*store_->Term(5), 1u);  // the compacted index still answers
  EXPECT_EQ(*store_->Term(6), 2u);
  absl::Status below = store_->Term(4).status();
  EXPECT_EQ(below.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(below.message(), HasSubstr("compacted"));
  EXPECT_EQ(store_->Entries(5, 8, 1000).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto entries = store_->Entries(6, 11, ~uint64_t{0});
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_EQ(entries->size(), 5u);
  auto snap = store_->GetSnapshot();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->metadata().index(), 5u);
  EXPECT_EQ(snap->metadata().term(), 1u);
  EXPECT_EQ(snap->metadata().conf_state().voters_size(), 3);
  EXPECT_TRUE(snap->data().empty());

  // Already compacted; appending at or below the snapshot is refused.
  EXPECT_EQ(store_->Compact(5, 1, Voters({1})).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Append({MakeEntry(5, 3)}, nullptr).code(),
            absl::StatusCode::kInvalidArgument);

  // Compact everything: the log is empty but the last index and term stay.
  ASSERT_TRUE(store_->ApplyBatch(DataBatch(), 10).ok());
  EXPECT_EQ(store_->Compact(11, 2, Voters({1})).code(),
            absl::StatusCode::kFailedPrecondition);  // not applied
  ASSERT_TRUE(store_->Compact(10, 2, Voters({1})).ok());
  EXPECT_EQ(store_->FirstIndex(), 11u);
  EXPECT_EQ(store_->LastIndex(), 10u);
  EXPECT_EQ(*store_->Term(10), 2u);
  EXPECT_TRUE(store_->Entries(11, 11, 10)->empty());

  Reopen();
  EXPECT_EQ(store_->FirstIndex(), 11u);
  EXPECT_EQ(store_->LastIndex(), 10u);
  EXPECT_EQ(*store_->Term(10), 2u);
  ASSERT_TRUE(store_->Append(MakeEntries(11, 13, 3), nullptr).ok());
  EXPECT_EQ(Terms(10, 13), (std::vector<uint64_t>{2, 3, 3}));
}

TEST_F(LogStoreTest, CompactPastLastIndexIsOutOfRange) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 4, 1), nullptr).ok());
  ASSERT_TRUE(store_->ApplyBatch(DataBatch(), 9).ok());
  EXPECT_EQ(store_->Compact(5, 1, Voters({1})).code(),
            absl::StatusCode::kOutOfRange);
}

TEST_F(LogStoreTest, ReopenRecoversEverything) {
  ASSERT_TRUE(store_->Bootstrap(MakeIdentity(7, 3), Voters({1, 2, 3})).ok());
  raftpb::HardState hs = MakeHardState(4, 2, 8);
  ASSERT_TRUE(store_->Append(MakeEntries(1, 13, 4, 50), &hs).ok());
  DataBatch batch;
  batch.Put("a", "1");
  batch.Put("b", "2");
  ASSERT_TRUE(store_->ApplyBatch(batch, 6).ok());
  ASSERT_TRUE(store_->Compact(4, 4, Voters({1, 2, 3})).ok());

  Reopen();
  ASSERT_TRUE(store_->identity().has_value());
  EXPECT_EQ(store_->identity()->cluster_id(), 7u);
  EXPECT_EQ(store_->identity()->node_id(), 3u);
  EXPECT_EQ(store_->FirstIndex(), 5u);
  EXPECT_EQ(store_->LastIndex(), 12u);
  EXPECT_EQ(store_->applied_index(), 6u);
  EXPECT_EQ(*store_->Get("a"), "1");
  EXPECT_EQ(*store_->Get("b"), "2");
  auto init = store_->GetInitialState();
  ASSERT_TRUE(init.ok());
  EXPECT_EQ(init->hard_state.term(), 4u);
  EXPECT_EQ(init->hard_state.vote(), 2u);
  EXPECT_EQ(init->hard_state.commit(), 8u);
  EXPECT_EQ(init->snapshot.index(), 4u);
  EXPECT_EQ(init->snapshot.term(), 4u);
  EXPECT_EQ(init->snapshot.conf_state().voters_size(), 3);
  auto entries = store_->Entries(5, 13, ~uint64_t{0});
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 8u);
  EXPECT_EQ(entries->back().data(), MakeEntry(12, 4, 50).data());

  // And again without the full scan.
  options_.verify_log_on_open = false;
  Reopen();
  EXPECT_EQ(store_->FirstIndex(), 5u);
  EXPECT_EQ(store_->LastIndex(), 12u);
}

TEST_F(LogStoreTest, BootstrapRecordsIdentityAndConf) {
  ASSERT_TRUE(store_->Bootstrap(MakeIdentity(1, 2), Voters({2, 5})).ok());
  EXPECT_TRUE(store_->Bootstrap(MakeIdentity(1, 2), Voters({2, 5})).ok());
  absl::Status other = store_->Bootstrap(MakeIdentity(1, 3), Voters({3}));
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(other.message(), HasSubstr(options_.dir));
  EXPECT_THAT(other.message(), HasSubstr("cluster 1 node 2"));
  EXPECT_EQ(store_->Bootstrap(MakeIdentity(0, 3), Voters({3})).code(),
            absl::StatusCode::kInvalidArgument);

  auto init = store_->GetInitialState();
  ASSERT_TRUE(init.ok());
  EXPECT_EQ(init->snapshot.index(), 0u);
  EXPECT_EQ(init->snapshot.term(), 0u);
  EXPECT_THAT(init->snapshot.conf_state().voters(),
              ::testing::ElementsAre(2, 5));
}

TEST_F(LogStoreTest, BootstrapRefusesStoreWithState) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 2, 1), nullptr).ok());
  EXPECT_EQ(store_->Bootstrap(MakeIdentity(1, 2), Voters({2})).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(LogStoreTest, IdentityMismatchRefusedOnOpen) {
  ASSERT_TRUE(store_->Bootstrap(MakeIdentity(10, 1), Voters({1})).ok());
  store_.reset();

  Options other = options_;
  other.expected_identity = MakeIdentity(10, 2);
  auto s = LogStore::Open(other);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr(options_.dir));
  EXPECT_THAT(s.status().message(), HasSubstr("cluster 10 node 1"));
  EXPECT_THAT(s.status().message(), HasSubstr("cluster 10 node 2"));

  other.expected_identity = MakeIdentity(11, 1);
  EXPECT_EQ(LogStore::Open(other).status().code(),
            absl::StatusCode::kFailedPrecondition);

  other.expected_identity = MakeIdentity(10, 1);
  EXPECT_TRUE(LogStore::Open(other).ok());
}

TEST_F(LogStoreTest, ExpectedIdentityLimitsBootstrap) {
  store_.reset();
  options_.expected_identity = MakeIdentity(5, 5);
  Reopen();
  EXPECT_EQ(store_->Bootstrap(MakeIdentity(5, 6), Voters({6})).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Bootstrap(MakeIdentity(5, 5), Voters({5})).ok());
}

TEST_F(LogStoreTest, SecondOpenOfLockedDirRefused) {
  auto second = LogStore::Open(options_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr(options_.dir));
  EXPECT_THAT(second.status().message(), HasSubstr("locked"));
  // Released on close.
  store_.reset();
  EXPECT_TRUE(LogStore::Open(options_).ok());
}

TEST_F(LogStoreTest, MissingDirWithoutCreateIsNotFound) {
  Options o;
  o.dir = options_.dir + "/nope";
  o.create_if_missing = false;
  auto s = LogStore::Open(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.status().message(), HasSubstr(o.dir));
  EXPECT_EQ(LogStore::Open(Options()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(LogStoreTest, CorruptDirRefused) {
  store_.reset();
  {
    std::ofstream current(options_.dir + "/CURRENT", std::ios::trunc);
    current << "garbage";  // no newline, names no manifest
  }
  auto s = LogStore::Open(options_);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr(options_.dir));
}

TEST_F(LogStoreTest, ForeignRocksDBRefused) {
  store_.reset();
  const std::string dir = options_.dir + "-foreign";
  std::filesystem::remove_all(dir);
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir, &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "k", "v").ok());
    delete db;
  }
  Options o;
  o.dir = dir;
  auto s = LogStore::Open(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr(dir));
}

TEST_F(LogStoreTest, ApplyBatchIsAtomicAndPersisted) {
  DataBatch b1;
  b1.Put("x", "1");
  b1.Put("y", "2");
  b1.Put("z", "3");
  ASSERT_TRUE(store_->ApplyBatch(b1, 3).ok());
  DataBatch b2;
  b2.Delete("y");
  b2.Put("x", "10");
  b2.Delete("z");
  b2.Put("z", "30");  // later ops win
  ASSERT_TRUE(store_->ApplyBatch(b2, 5).ok());
  // The applied index must advance.
  DataBatch b3;
  b3.Put("w", "bad");
  EXPECT_EQ(store_->ApplyBatch(b3, 5).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Get("w").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->ApplyBatch(DataBatch(), 6).ok());  // no-op entry

  Reopen();
  EXPECT_EQ(store_->applied_index(), 6u);
  EXPECT_EQ(*store_->Get("x"), "10");
  EXPECT_EQ(store_->Get("y").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*store_->Get("z"), "30");
}

TEST_F(LogStoreTest, ApplySnapshotPastLastIndexDiscardsLog) {
  raftpb::HardState hs = MakeHardState(1, 1, 2);
  ASSERT_TRUE(store_->Append(MakeEntries(1, 6, 1), &hs).ok());
  DataBatch old;
  old.Put("old1", "x");
  old.Put("old2", "y");
  ASSERT_TRUE(store_->ApplyBatch(old, 2).ok());

  raftpb::SnapshotMetadata meta;
  meta.set_index(20);
  meta.set_term(3);
  *meta.mutable_conf_state() = Voters({1, 2});
  DataBatch image;
  image.Put("new", "z");
  // Without the image the store refuses (data would lag the snapshot).
  EXPECT_EQ(store_->ApplySnapshot(meta, nullptr).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->ApplySnapshot(meta, &image).ok());

  auto check = [&] {
    EXPECT_EQ(store_->FirstIndex(), 21u);
    EXPECT_EQ(store_->LastIndex(), 20u);
    EXPECT_EQ(*store_->Term(20), 3u);
    EXPECT_EQ(store_->Term(19).status().code(),
              absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(store_->applied_index(), 20u);
    EXPECT_EQ(store_->hard_state().commit(), 20u);
    EXPECT_EQ(store_->hard_state().term(), 1u);
    EXPECT_EQ(store_->Get("old1").status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(store_->Get("old2").status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(*store_->Get("new"), "z");
  };
  check();
  Reopen();
  check();
  ASSERT_TRUE(store_->Append(MakeEntries(21, 23, 3), nullptr).ok());
  EXPECT_EQ(store_->LastIndex(), 22u);

  // Out of date.
  meta.set_index(15);
  EXPECT_EQ(store_->ApplySnapshot(meta, &image).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(LogStoreTest, ApplySnapshotKeepsMatchingSuffix) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 11, 2), nullptr).ok());
  ASSERT_TRUE(store_->ApplyBatch(DataBatch(), 6).ok());
  raftpb::SnapshotMetadata meta;
  meta.set_index(6);
  meta.set_term(2);
  ASSERT_TRUE(store_->ApplySnapshot(meta, nullptr).ok());
  EXPECT_EQ(store_->FirstIndex(), 7u);
  EXPECT_EQ(store_->LastIndex(), 10u);
  EXPECT_EQ(Terms(6, 11), (std::vector<uint64_t>{2, 2, 2, 2, 2}));
  EXPECT_EQ(store_->hard_state().commit(), 6u);
  Reopen();
  EXPECT_EQ(store_->FirstIndex(), 7u);
  EXPECT_EQ(store_->LastIndex(), 10u);
}

TEST_F(LogStoreTest, ApplySnapshotWithTermMismatchDiscardsLog) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 11, 2), nullptr).ok());
  raftpb::SnapshotMetadata meta;
  meta.set_index(6);
  meta.set_term(3);  // the log has term 2 at 6
  DataBatch image;
  ASSERT_TRUE(store_->ApplySnapshot(meta, &image).ok());
  EXPECT_EQ(store_->FirstIndex(), 7u);
  EXPECT_EQ(store_->LastIndex(), 6u);
  EXPECT_EQ(*store_->Term(6), 3u);
  Reopen();
  EXPECT_EQ(store_->LastIndex(), 6u);
  EXPECT_EQ(store_->applied_index(), 6u);
}

// Opens the store's RocksDB directly, to damage it.
class RawDB {
 public:
  explicit RawDB(const std::string& dir) {
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const char* name : {"default", kLogColumnFamily, kMetaColumnFamily,
                             kDataColumnFamily}) {
      cfs.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    rocksdb::Status s =
        rocksdb::DB::Open(rocksdb::DBOptions(), dir, cfs, &handles_, &db_);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  ~RawDB() {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
    delete db_;
  }
  rocksdb::DB* db() { return db_; }
  rocksdb::ColumnFamilyHandle* log() { return handles_[1]; }
  rocksdb::ColumnFamilyHandle* meta() { return handles_[2]; }

 private:
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

TEST_F(LogStoreTest, RecoveryDetectsHole) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 11, 1), nullptr).ok());
  store_.reset();
  {
    RawDB raw(options_.dir);
    ASSERT_TRUE(raw.db()->Delete(rocksdb::WriteOptions(), raw.log(), LogKey(5)).ok());
  }
  auto s = LogStore::Open(options_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.status().message(), HasSubstr("hole"));
  EXPECT_THAT(s.status().message(), HasSubstr(options_.dir));

  // Without the full scan the hole shows up on read instead.
  options_.verify_log_on_open = false;
  Reopen();
  EXPECT_EQ(store_->Entries(1, 11, ~uint64_t{0}).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(store_->Term(5).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(LogStoreTest, RecoveryDetectsCommitPastLastIndex) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 4, 1), nullptr).ok());
  store_.reset();
  {
    RawDB raw(options_.dir);
    ASSERT_TRUE(raw.db()->Put(rocksdb::WriteOptions(), raw.meta(),
                              kHardStateKey,
                              MakeHardState(1, 1, 9).SerializeAsString())
                    .ok());
  }
  auto s = LogStore::Open(options_);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.status().message(), HasSubstr("commit 9 > last log index 3"));
}

TEST_F(LogStoreTest, RecoveryDetectsEntriesBelowSnapshot) {
  ASSERT_TRUE(store_->Append(MakeEntries(1, 6, 1), nullptr).ok());
  ASSERT_TRUE(store_->ApplyBatch(DataBatch(), 3).ok());
  ASSERT_TRUE(store_->Compact(3, 1, Voters({1})).ok());
  store_.reset();
  {
    RawDB raw(options_.dir);
    ASSERT_TRUE(raw.db()->Put(rocksdb::WriteOptions(), raw.log(), LogKey(2),
                              MakeEntry(2, 1).SerializeAsString())
                    .ok());
  }
  auto s = LogStore::Open(options_);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.status().message(), HasSubstr("starts at index 2"));
}

}  // namespace
}  // namespace raftkv::storage
