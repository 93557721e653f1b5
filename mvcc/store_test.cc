#include "mvcc/store.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mvcc/encoding.h"
#include "storage/test_util.h"

namespace raftkv::mvcc {
namespace {

using ::testing::ElementsAre;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = storage::testing::TestDir();
    Reopen();
  }
  void Reopen() {
    store_.reset();
    log_.reset();
    storage::Options o;
    o.dir = dir_;
    o.create_if_missing = true;
    auto l = storage::LogStore::Open(o);
    ASSERT_TRUE(l.ok()) << l.status();
    log_ = *std::move(l);
    auto s = Store::Open(log_.get());
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }
  // Applies `fn` as the one transaction of entry `index`, committed.
  void Apply(uint64_t index, const std::function<void(Store::Txn*)>& fn) {
    std::unique_ptr<Store::Batch> b = store_->BeginBatch();
    {
      std::unique_ptr<Store::Txn> t = b->Begin(index);
      fn(t.get());
      t->Commit();
    }
    storage::DataBatch out;
    b->Finish(&out);
    ASSERT_TRUE(log_->ApplyBatch(out, index).ok());
  }
  void Put(uint64_t index, const std::string& k, const std::string& v) {
    Apply(index, [&](Store::Txn* t) { ASSERT_TRUE(t->Put(k, v, 0, PrevKv::kSkip).ok()); });
  }
  std::vector<std::string> Keys(const Reader& r, const std::string& key, const std::string& end,
                                int64_t rev = 0) {
    RangeOptions o;
    o.revision = rev;
    absl::StatusOr<RangeResult> res = r.Range(key, end, o);
    EXPECT_TRUE(res.ok()) << res.status();
    std::vector<std::string> out;
    if (!res.ok()) return out;
    for (const KeyValue& kv : res->kvs) out.push_back(kv.key + "=" + kv.value);
    return out;
  }

  std::string dir_;
  std::unique_ptr<storage::LogStore> log_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, RevisionsVersionsAndHistoryAsEtcds) {
  EXPECT_EQ(store_->Read()->revision(), 1);  // etcd's empty store
  Put(1, "a", "1");                          // rev 2
  Put(2, "a", "2");                          // rev 3
  Apply(3, [](Store::Txn* t) {               // rev 4
    auto d = t->DeleteRange("a", "");
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->size(), 1u);
  });
  Put(5, "a", "3");  // rev 5

  std::unique_ptr<View> v = store_->Read();
  EXPECT_EQ(v->revision(), 5);
  EXPECT_EQ(v->applied_index(), 5u);
  auto r = v->Range("a", "", RangeOptions());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].create_revision, 5);
  EXPECT_EQ(r->kvs[0].mod_revision, 5);
  EXPECT_EQ(r->kvs[0].version, 1);
  EXPECT_EQ(r->kvs[0].index, 5u);

  RangeOptions at3;
  at3.revision = 3;
  r = v->Range("a", "", at3);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].value, "2");
  EXPECT_EQ(r->kvs[0].create_revision, 2);
  EXPECT_EQ(r->kvs[0].version, 2);
  EXPECT_TRUE(Keys(*v, "a", "", 4).empty());
  EXPECT_TRUE(Keys(*v, "a", "", 1).empty());
  RangeOptions future;
  future.revision = 6;
  EXPECT_TRUE(IsFutureRevision(v->Range("a", "", future).status()));

  v.reset();  // a view must not outlive its store
  Reopen();
  EXPECT_EQ(store_->revision(), 5);
  EXPECT_EQ(store_->Read()->revision(), 5);
  EXPECT_THAT(Keys(*store_->Read(), "a", "", 3), ElementsAre("a=2"));
}

TEST_F(StoreTest, RangesFollowEtcdsRules) {
  Apply(1, [](Store::Txn* t) {
    for (std::string k : {std::string("a"), std::string("b"), std::string("b\0x", 3),
                          std::string("ba"), std::string("c"), std::string("d")}) {
      ASSERT_TRUE(t->Put(k, k, 0, PrevKv::kSkip).ok());
    }
  });
  ASSERT_TRUE(store_->revision() == 2);
  std::unique_ptr<View> v = store_->Read();
  EXPECT_THAT(Keys(*v, "b", "c"),
              ElementsAre("b=b", std::string("b\0x=b\0x", 7), "ba=ba"));
  EXPECT_THAT(Keys(*v, "c", std::string("\0", 1)), ElementsAre("c=c", "d=d"));
  EXPECT_EQ(Keys(*v, std::string("\0", 1), std::string("\0", 1)).size(), 6u);
  EXPECT_TRUE(Keys(*v, "c", "b").empty());
  EXPECT_THAT(Keys(*v, "b", ""), ElementsAre("b=b"));

  RangeOptions o;
  o.limit = 2;
  auto r = v->Range("a", std::string("\0", 1), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kvs.size(), 2u);
  EXPECT_EQ(r->count, 6);
  EXPECT_TRUE(r->more);
  o.limit = 0;
  o.count_only = true;
  r = v->Range("b", "c", o);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->kvs.empty());
  EXPECT_EQ(r->count, 3);
  o.count_only = false;
  o.keys_only = true;
  r = v->Range("d", "", o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].value, "");

  // max_bytes bounds what a read holds: 18 bytes of keys and values in all.
  o = RangeOptions();
  o.max_bytes = 17;
  EXPECT_TRUE(IsTooLarge(v->Range("a", std::string("\0", 1), o).status()));
  o.max_bytes = 18;
  EXPECT_TRUE(v->Range("a", std::string("\0", 1), o).ok());
  o.max_bytes = 4;
  o.limit = 2;  // a=a, b=b
  EXPECT_TRUE(v->Range("a", std::string("\0", 1), o).ok());
  o.limit = 0;
  o.count_only = true;  // holds nothing
  EXPECT_TRUE(v->Range("a", std::string("\0", 1), o).ok());

  // A BoundedReader applies its bound to every Range; a smaller one wins.
  BoundedReader bounded(*v, 17);
  EXPECT_TRUE(IsTooLarge(bounded.Range("a", std::string("\0", 1), RangeOptions()).status()));
  o = RangeOptions();
  o.limit = 2;
  EXPECT_TRUE(bounded.Range("a", std::string("\0", 1), o).ok());
  o.max_bytes = 3;
  EXPECT_TRUE(IsTooLarge(bounded.Range("a", std::string("\0", 1), o).status()));
}

TEST_F(StoreTest, TxnSeesItsWritesAtOneRevisionAndDroppedTxnLeavesNothing) {
  Put(1, "k", "v0");
  std::unique_ptr<Store::Batch> b = store_->BeginBatch();
  {
    std::unique_ptr<Store::Txn> t = b->Begin(2);
    EXPECT_EQ(t->revision(), 2);
    ASSERT_TRUE(t->Put("x", "1", 0, PrevKv::kSkip).ok());
    ASSERT_TRUE(t->Put("y", "2", 7, PrevKv::kSkip).ok());
    EXPECT_EQ(t->revision(), 3);
    EXPECT_THAT(Keys(*t, "k", "z"), ElementsAre("k=v0", "x=1", "y=2"));
    auto d = t->DeleteRange("k", "l");
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(t->revision(), 3);  // one revision for the whole transaction
    t->Commit();
  }
  {
    std::unique_ptr<Store::Txn> t = b->Begin(3);
    EXPECT_THAT(Keys(*t, "a", "z"), ElementsAre("x=1", "y=2"));  // the batch's earlier txn
    ASSERT_TRUE(t->Put("x", "dropped", 0, PrevKv::kSkip).ok());
    // Not committed: dropped.
  }
  {
    std::unique_ptr<Store::Txn> t = b->Begin(4);
    auto none = t->DeleteRange("nothing", "");
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none->empty());
    EXPECT_FALSE(t->changed());
    t->Commit();
  }
  // Nothing is visible outside the batch until it is written.
  EXPECT_THAT(Keys(*store_->Read(), "a", "z"), ElementsAre("k=v0"));
  storage::DataBatch out;
  b->Finish(&out);
  ASSERT_TRUE(log_->ApplyBatch(out, 4).ok());
  std::unique_ptr<View> v = store_->Read();
  EXPECT_EQ(v->revision(), 3);
  auto r = v->Range("x", "z", RangeOptions());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 2u);
  EXPECT_EQ(r->kvs[0].mod_revision, 3);
  EXPECT_EQ(r->kvs[1].lease, 7);
  EXPECT_TRUE(Keys(*v, "k", "").empty());
  EXPECT_THAT(Keys(*v, "k", "", 2), ElementsAre("k=v0"));
}

TEST_F(StoreTest, CompactionHidesHistoryAndStepsRemoveOnlyTheUnreachable) {
  for (uint64_t i = 1; i <= 10; ++i) Put(i, "hot", std::to_string(i));  // revs 2..11
  Put(11, "cold", "c");                                                  // rev 12
  Apply(12, [](Store::Txn* t) { ASSERT_TRUE(t->DeleteRange("gone", "").ok()); });
  Put(13, "gone", "g");                                                  // rev 13
  Apply(14, [](Store::Txn* t) { ASSERT_TRUE(t->DeleteRange("gone", "").ok()); });  // rev 14
  Put(15, "hot", "last");                                                // rev 15

  auto hash = [&] {
    auto snap = log_->OpenDataSnapshot();
    EXPECT_TRUE(snap.ok());
    auto compact = Store::CompactRevisionOf(**snap);
    EXPECT_TRUE(compact.ok());
    Store::HashFilter f(*compact);
    std::string h;
    EXPECT_TRUE((*snap)
                    ->Scan("",
                           [&](absl::string_view k, absl::string_view v) {
                             if (f.Include(k, v)) absl::StrAppend(&h, k, "=", v, ";");
                             return true;
                           })
                    .ok());
    return h;
  };
  auto records = [&] {
    int n = 0;
    EXPECT_TRUE(log_->ScanData("", [&](absl::string_view, absl::string_view) {
                      ++n;
                      return true;
                    }).ok());
    return n;
  };

  std::unique_ptr<Store::Batch> b = store_->BeginBatch();
  EXPECT_TRUE(IsFutureRevision(b->Compact(16)));
  ASSERT_TRUE(b->Compact(14).ok());
  EXPECT_TRUE(IsCompacted(b->Compact(14)));
  storage::DataBatch out;
  b->Finish(&out);
  ASSERT_TRUE(log_->ApplyBatch(out, 16).ok());

  std::unique_ptr<View> v = store_->Read();
  EXPECT_EQ(v->compact_revision(), 14);
  RangeOptions old;
  old.revision = 13;
  EXPECT_TRUE(IsCompacted(v->Range("hot", "", old).status()));
  EXPECT_THAT(Keys(*v, "a", "z", 14), ElementsAre("cold=c", "hot=10"));
  const std::string before = hash();
  const int records_before = records();

  // One record at a time: reads and the hash never change on the way.
  int steps = 0;
  for (;;) {
    absl::StatusOr<bool> more = store_->CompactStep(1);
    ASSERT_TRUE(more.ok()) << more.status();
    ++steps;
    std::unique_ptr<View> now = store_->Read();
    EXPECT_THAT(Keys(*now, "a", "z", 14), ElementsAre("cold=c", "hot=10"));
    EXPECT_THAT(Keys(*now, "a", "z"), ElementsAre("cold=c", "hot=last"));
    EXPECT_EQ(hash(), before);
    if (!*more) break;
    ASSERT_LT(steps, 100);
  }
  EXPECT_EQ(store_->physically_compacted(), 14);
  // hot's 9 old revisions and gone's put and delete, with their index entries.
  EXPECT_EQ(records_before - records(), 2 * (9 + 2));
  absl::StatusOr<bool> again = store_->CompactStep(100);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST_F(StoreTest, CorruptRecordFailsTheReadAsAWhole) {
  Put(1, "a", "1");
  Put(2, "b", "2");
  storage::DataBatch bad;
  bad.Put(encoding::HistoryKey("b", 3), "\x07garbage");
  ASSERT_TRUE(log_->ApplyBatch(bad, 3).ok());
  auto r = store_->Read()->Range("a", "z", RangeOptions());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
}

}  // namespace
}  // namespace raftkv::mvcc

namespace raftkv::mvcc {
namespace {

// A snapshot that replaces the data must leave nothing of what the store
// knew of the old data (the cache of keys' newest records included).
TEST_F(StoreTest, ReloadAfterASnapshotForgetsTheOldState) {
  Put(1, "k", "old1");  // rev 2
  Put(2, "k", "old2");  // rev 3: "k" is at version 2, cached

  // The snapshot: another history, where "k" was written once, at rev 2.
  const std::string other_dir = storage::testing::TestDir() + "-other";
  {
    storage::Options o;
    o.dir = other_dir;
    auto other_log = storage::LogStore::Open(o);
    ASSERT_TRUE(other_log.ok()) << other_log.status();
    auto other = Store::Open(other_log->get());
    ASSERT_TRUE(other.ok());
    std::unique_ptr<Store::Batch> b = (*other)->BeginBatch();
    {
      std::unique_ptr<Store::Txn> t = b->Begin(1);
      ASSERT_TRUE(t->Put("k", "snap", 0, PrevKv::kSkip).ok());
      t->Commit();
    }
    storage::DataBatch out;
    b->Finish(&out);
    b.reset();
    ASSERT_TRUE((*other_log)->ApplyBatch(out, 1).ok());
    storage::DataBatch staged;
    ASSERT_TRUE((*other_log)
                    ->ScanData("",
                               [&](absl::string_view k, absl::string_view v) {
                                 staged.Put(std::string(k), std::string(v));
                                 return true;
                               })
                    .ok());
    ASSERT_TRUE(log_->BeginStaging().ok());
    ASSERT_TRUE(log_->StageData(staged).ok());
  }
  raftpb::SnapshotMetadata meta;
  meta.set_index(10);
  meta.set_term(1);
  ASSERT_TRUE(log_->InstallStaged(meta).ok());
  ASSERT_TRUE(store_->Reload().ok());

  std::optional<KeyValue> prev;
  Apply(11, [&](Store::Txn* t) {
    auto p = t->Put("k", "new", 0, PrevKv::kReturn);
    ASSERT_TRUE(p.ok()) << p.status();
    prev = *p;
  });
  ASSERT_TRUE(prev.has_value());
  EXPECT_EQ(prev->value, "snap");
  EXPECT_EQ(prev->version, 1);
  auto r = store_->Read()->Range("k", "", RangeOptions());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].version, 2) << "numbered from the snapshot's history, not the old one";
  EXPECT_EQ(r->kvs[0].create_revision, 2);
  EXPECT_EQ(r->kvs[0].mod_revision, 3);
}

}  // namespace
}  // namespace raftkv::mvcc
