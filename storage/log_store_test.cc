#include "storage/log_store.h"

#include <cstdint>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/data_batch.h"
#include "storage/test_util.h"

namespace raftkv::storage {
namespace {

using ::testing::HasSubstr;
using testing::LogStoreTest;
using testing::MakeEntries;
using testing::MakeEntry;
using testing::MakeHardState;
using testing::MakeIdentity;
using testing::Voters;

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

TEST_F(LogStoreTest, DataSizesCountWritesAndCompactDataDropsDeletedOnes) {
  const LogStore::DataSize empty = store_->DataSizes();
  DataBatch puts, deletes;
  uint64_t x = 88172645463325252ull;  // xorshift: values that do not compress
  for (int i = 0; i < 2048; ++i) {
    const std::string key = "key" + std::to_string(i);
    std::string value(1024, '\0');
    for (char& c : value) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      c = static_cast<char>(x);
    }
    puts.Put(key, value);
    deletes.Delete(key);
  }
  ASSERT_TRUE(store_->ApplyBatch(puts, 1).ok());
  const LogStore::DataSize full = store_->DataSizes();
  EXPECT_GE(full.total(), empty.total() + (2u << 20)) << "2 MiB written";
  ASSERT_TRUE(store_->CompactData().ok());  // flushes the memtable too
  const LogStore::DataSize flushed = store_->DataSizes();
  EXPECT_GE(flushed.sst_bytes, 2u << 20);
  EXPECT_GT(flushed.live_bytes_estimate, 0u);

  ASSERT_TRUE(store_->ApplyBatch(deletes, 2).ok());
  ASSERT_TRUE(store_->CompactData().ok());
  EXPECT_LT(store_->DataSizes().sst_bytes, flushed.sst_bytes / 16);
  EXPECT_EQ(store_->Get("key7").status().code(), absl::StatusCode::kNotFound);
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

TEST_F(LogStoreTest, ScanDataVisitsKeysInOrderFromStart) {
  DataBatch b;
  for (const char* k : {"b2", "a1", "c3", "b1"}) b.Put(k, std::string("v") + k);
  ASSERT_TRUE(store_->ApplyBatch(b, 1).ok());
  std::vector<std::string> seen;
  ASSERT_TRUE(store_
                  ->ScanData("b",
                             [&](absl::string_view k, absl::string_view v) {
                               seen.push_back(std::string(k) + "=" + std::string(v));
                               return seen.size() < 2;
                             })
                  .ok());
  EXPECT_THAT(seen, ::testing::ElementsAre("b1=vb1", "b2=vb2"));
}

TEST_F(LogStoreTest, DataCursorSeeksWithinOneView) {
  DataBatch b;
  for (const char* k : {"b2", "a1", "c3", "b1"}) b.Put(k, std::string("v") + k);
  ASSERT_TRUE(store_->ApplyBatch(b, 1).ok());
  std::unique_ptr<DataCursor> c = store_->OpenDataCursor();
  EXPECT_EQ(c->applied_index(), 1u);
  DataBatch later;
  later.Put("b15", "new");
  later.Delete("c3");
  ASSERT_TRUE(store_->ApplyBatch(later, 2).ok());

  // The cursor keeps its view: neither the new key nor the delete shows.
  std::vector<std::string> seen;
  for (c->Seek("b"); c->Valid(); c->Next()) {
    seen.push_back(std::string(c->key()) + "=" + std::string(c->value()));
  }
  ASSERT_TRUE(c->status().ok());
  EXPECT_THAT(seen, ::testing::ElementsAre("b1=vb1", "b2=vb2", "c3=vc3"));
  c->Seek("a");
  ASSERT_TRUE(c->Valid());
  EXPECT_EQ(c->key(), "a1");
  c->Seek("d");
  EXPECT_FALSE(c->Valid());
  EXPECT_TRUE(c->status().ok());

  std::unique_ptr<DataCursor> now = store_->OpenDataCursor();
  EXPECT_EQ(now->applied_index(), 2u);
  now->Seek("b15");
  ASSERT_TRUE(now->Valid());
  EXPECT_EQ(now->value(), "new");
}

TEST_F(LogStoreTest, DataCursorPointReadsSeeItsView) {
  DataBatch b;
  b.Put("k", "old");
  b.Put("gone", "x");
  ASSERT_TRUE(store_->ApplyBatch(b, 1).ok());
  std::unique_ptr<DataCursor> c = store_->OpenDataCursor(/*point_reads=*/true);
  DataBatch later;
  later.Put("k", "new");
  later.Put("born", "y");
  later.Delete("gone");
  ASSERT_TRUE(store_->ApplyBatch(later, 2).ok());

  EXPECT_EQ(c->Get("k").value(), "old");
  EXPECT_EQ(c->Get("gone").value(), "x");
  EXPECT_EQ(c->Get("born").status().code(), absl::StatusCode::kNotFound);
  std::unique_ptr<DataCursor> now = store_->OpenDataCursor(/*point_reads=*/true);
  EXPECT_EQ(now->Get("k").value(), "new");
  EXPECT_EQ(now->Get("gone").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(LogStoreTest, RemoveUnreachableDeletesOnlyInTheCursorsGeneration) {
  DataBatch b;
  b.Put("old1", "x");
  b.Put("old2", "y");
  ASSERT_TRUE(store_->ApplyBatch(b, 1).ok());
  std::unique_ptr<DataCursor> c = store_->OpenDataCursor();
  ASSERT_TRUE(store_->RemoveUnreachable({"old1"}, *c).ok());
  EXPECT_EQ(store_->Get("old1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->applied_index(), 1u);

  // After a snapshot replaced the data, the old cursor's removals are moot.
  DataBatch image;
  image.Put("old2", "from the snapshot");
  raftpb::SnapshotMetadata meta;
  meta.set_index(5);
  meta.set_term(1);
  ASSERT_TRUE(store_->BeginStaging().ok());
  ASSERT_TRUE(store_->StageData(image).ok());
  ASSERT_TRUE(store_->InstallStaged(meta).ok());
  ASSERT_TRUE(store_->RemoveUnreachable({"old2"}, *c).ok());
  EXPECT_EQ(*store_->Get("old2"), "from the snapshot");
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
// The documented concurrency: a driver thread appending (and reading), an
// apply thread writing `data`, and a reader on a third thread.
TEST_F(LogStoreTest, ConcurrentAppendApplyAndRead) {
  constexpr uint64_t kBatches = 200;
  std::atomic<bool> done{false};
  std::thread driver([&] {
    for (uint64_t b = 0; b < kBatches; ++b) {
      raftpb::HardState hs = MakeHardState(1, 1, b * 4 + 4);
      ASSERT_TRUE(store_->Append(MakeEntries(b * 4 + 1, b * 4 + 5, 1), &hs).ok());
    }
  });
  std::thread applier([&] {
    for (uint64_t i = 1; i <= kBatches; ++i) {
      DataBatch batch;
      batch.Put("counter", std::to_string(i));
      ASSERT_TRUE(store_->ApplyBatch(batch, i).ok());
    }
  });
  std::thread reader([&] {
    while (!done.load()) {
      const uint64_t last = store_->LastIndex();
      if (last == 0) continue;
      auto t = store_->Term(last);
      ASSERT_TRUE(t.ok()) << t.status();
      auto e = store_->Entries(store_->FirstIndex(), last + 1, 1 << 20);
      ASSERT_TRUE(e.ok()) << e.status();
      ASSERT_FALSE(e->empty());
      EXPECT_GE(store_->applied_index(), 0u);
    }
  });
  driver.join();
  applier.join();
  done.store(true);
  reader.join();
  EXPECT_EQ(store_->LastIndex(), kBatches * 4);
  EXPECT_EQ(store_->applied_index(), kBatches);
  EXPECT_EQ(*store_->Get("counter"), std::to_string(kBatches));
  EXPECT_EQ(store_->hard_state().commit(), kBatches * 4);
}

// A read's applied index is that of the state it read: each batch writes
// "at" = its own index, so a get or scan racing the applier must see the
// value equal to the index it is told (a value above it is a read claiming
// an older state than it saw; reading applied_index() after the value can).
TEST_F(LogStoreTest, ReadsReportTheAppliedIndexOfTheStateTheyRead) {
  constexpr uint64_t kBatches = 3000;
  std::atomic<bool> done{false};
  std::thread applier([&] {
    for (uint64_t i = 1; i <= kBatches; ++i) {
      DataBatch batch;
      batch.Put("at", std::to_string(i));
      ASSERT_TRUE(store_->ApplyBatch(batch, i).ok());
    }
    done.store(true);
  });
  uint64_t reads = 0;
  while (!done.load()) {
    uint64_t applied = 0;
    auto v = store_->Get("at", &applied);
    if (v.ok()) {
      ASSERT_EQ(*v, std::to_string(applied));
    } else {
      ASSERT_TRUE(absl::IsNotFound(v.status())) << v.status();
      ASSERT_EQ(applied, 0u);
    }
    std::string seen;
    ASSERT_TRUE(store_->ScanData("at", [&](absl::string_view k, absl::string_view val) {
      if (k == "at") seen = std::string(val);
      return false;
    }, &applied).ok());
    if (!seen.empty()) ASSERT_EQ(seen, std::to_string(applied));
    ++reads;
  }
  applier.join();
  EXPECT_GT(reads, 0u);
  uint64_t applied = 0;
  EXPECT_EQ(*store_->Get("at", &applied), std::to_string(kBatches));
  EXPECT_EQ(applied, kBatches);
}

}  // namespace
}  // namespace raftkv::storage
