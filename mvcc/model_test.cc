// The model against etcd's MVCC facts (etcd's mvcc/kvstore_test.go,
// kv_test.go and what etcdctl shows a fresh etcd doing), written by hand.
#include "mvcc/model.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace raftkv::mvcc {
namespace {

const std::string kAll("\0", 1);  // etcd's range_end "\0": to the end

KeyValue Kv(std::string key, std::string value, int64_t create, int64_t mod, int64_t version,
            int64_t lease = 0, uint64_t index = 0) {
  KeyValue kv;
  kv.key = std::move(key);
  kv.value = std::move(value);
  kv.create_revision = create;
  kv.mod_revision = mod;
  kv.version = version;
  kv.lease = lease;
  kv.index = index;
  return kv;
}

// Commits one put; returns the previous value.
std::optional<KeyValue> Put(Model* m, const std::string& key, const std::string& value,
                            int64_t lease = 0, uint64_t index = 0) {
  auto txn = m->Write(index);
  auto prev = txn->Put(key, value, lease, PrevKv::kReturn);
  EXPECT_TRUE(prev.ok()) << prev.status();
  txn->Commit();
  return prev.ok() ? *prev : std::nullopt;
}

std::vector<KeyValue> Delete(Model* m, const std::string& key, const std::string& end = "") {
  auto txn = m->Write(0);
  auto deleted = txn->DeleteRange(key, end);
  EXPECT_TRUE(deleted.ok()) << deleted.status();
  txn->Commit();
  return deleted.ok() ? *deleted : std::vector<KeyValue>{};
}

RangeResult Get(const Reader& r, const std::string& key, const std::string& end = "",
                RangeOptions options = {}) {
  auto result = r.Range(key, end, options);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : RangeResult{};
}

RangeResult GetAt(const Reader& r, int64_t revision, const std::string& key,
                  const std::string& end = "") {
  RangeOptions options;
  options.revision = revision;
  return Get(r, key, end, options);
}

std::vector<std::string> Keys(const RangeResult& r) {
  std::vector<std::string> keys;
  for (const KeyValue& kv : r.kvs) keys.push_back(kv.key);
  return keys;
}

TEST(ModelTest, EmptyStoreIsAtRevisionOne) {
  Model m;
  EXPECT_EQ(m.revision(), 1);  // etcd: a fresh member answers revision 1
  EXPECT_EQ(m.compact_revision(), 0);
  auto r = m.Read();
  EXPECT_EQ(r->revision(), 1);
  RangeResult all = Get(*r, kAll, kAll);
  EXPECT_TRUE(all.kvs.empty());
  EXPECT_EQ(all.count, 0);
  EXPECT_FALSE(all.more);
}

// etcd: put a, put a, del a, put a gives revisions 2..5; versions 1, 2, then
// the key is gone, then version 1 again with create_revision of the new put.
TEST(ModelTest, RevisionsVersionsAndRecreation) {
  Model m;
  EXPECT_EQ(Put(&m, "a", "1", 0, 10), std::nullopt);
  EXPECT_EQ(m.revision(), 2);
  EXPECT_EQ(Get(*m.Read(), "a").kvs, std::vector<KeyValue>{Kv("a", "1", 2, 2, 1, 0, 10)});

  EXPECT_EQ(Put(&m, "a", "2", 0, 11), Kv("a", "1", 2, 2, 1, 0, 10));
  EXPECT_EQ(m.revision(), 3);
  EXPECT_EQ(Get(*m.Read(), "a").kvs, std::vector<KeyValue>{Kv("a", "2", 2, 3, 2, 0, 11)});

  EXPECT_EQ(Delete(&m, "a"), std::vector<KeyValue>{Kv("a", "2", 2, 3, 2, 0, 11)});
  EXPECT_EQ(m.revision(), 4);
  EXPECT_TRUE(Get(*m.Read(), "a").kvs.empty());

  EXPECT_EQ(Put(&m, "a", "3", 0, 13), std::nullopt);  // no previous value: it was deleted
  EXPECT_EQ(m.revision(), 5);
  EXPECT_EQ(Get(*m.Read(), "a").kvs, std::vector<KeyValue>{Kv("a", "3", 5, 5, 1, 0, 13)});

  // History: a Range at R is the state right after revision R.
  auto r = m.Read();
  EXPECT_TRUE(GetAt(*r, 1, "a").kvs.empty());
  EXPECT_EQ(GetAt(*r, 2, "a").kvs, std::vector<KeyValue>{Kv("a", "1", 2, 2, 1, 0, 10)});
  EXPECT_EQ(GetAt(*r, 3, "a").kvs, std::vector<KeyValue>{Kv("a", "2", 2, 3, 2, 0, 11)});
  EXPECT_TRUE(GetAt(*r, 4, "a").kvs.empty());
  EXPECT_EQ(GetAt(*r, 4, "a").count, 0);
  EXPECT_EQ(GetAt(*r, 5, "a").kvs, std::vector<KeyValue>{Kv("a", "3", 5, 5, 1, 0, 13)});
}

TEST(ModelTest, LeaseIsStoredPerWrite) {
  Model m;
  Put(&m, "a", "1", 7);
  Put(&m, "a", "2", 0);
  auto r = m.Read();
  EXPECT_EQ(GetAt(*r, 2, "a").kvs.at(0).lease, 7);
  EXPECT_EQ(GetAt(*r, 3, "a").kvs.at(0).lease, 0);
}

TEST(ModelTest, FutureRevisionFails) {
  Model m;
  Put(&m, "a", "1");
  RangeOptions options;
  options.revision = 3;
  auto result = m.Read()->Range("a", "", options);
  EXPECT_TRUE(IsFutureRevision(result.status())) << result.status();
  options.revision = 2;
  EXPECT_TRUE(m.Read()->Range("a", "", options).ok());
  options.revision = -5;  // <= 0: the latest
  EXPECT_EQ(m.Read()->Range("a", "", options)->kvs.size(), 1u);
}

// One write transaction is one revision, whatever it writes; each key it
// writes carries that revision (etcd's storeTxnWrite).
TEST(ModelTest, ATransactionIsOneRevision) {
  Model m;
  Put(&m, "x", "0");
  auto txn = m.Write(5);
  EXPECT_EQ(txn->revision(), 2);  // nothing changed yet
  ASSERT_TRUE(txn->Put("a", "1", 0, PrevKv::kSkip).ok());
  EXPECT_EQ(txn->revision(), 3);
  ASSERT_TRUE(txn->Put("b", "1", 0, PrevKv::kSkip).ok());
  auto deleted = txn->DeleteRange("x", "");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, std::vector<KeyValue>{Kv("x", "0", 2, 2, 1)});
  EXPECT_EQ(txn->revision(), 3);
  txn->Commit();
  EXPECT_EQ(m.revision(), 3);
  RangeResult all = Get(*m.Read(), kAll, kAll);
  EXPECT_EQ(all.kvs,
            (std::vector<KeyValue>{Kv("a", "1", 3, 3, 1, 0, 5), Kv("b", "1", 3, 3, 1, 0, 5)}));
}

// etcd: a txn that changes nothing (reads only, or a delete of no key) does
// not advance the revision.
TEST(ModelTest, NoChangeTakesNoRevision) {
  Model m;
  Put(&m, "a", "1");
  EXPECT_TRUE(Delete(&m, "b").empty());
  EXPECT_TRUE(Delete(&m, "b", "z").size() == 0);
  EXPECT_EQ(m.revision(), 2);
  {
    auto txn = m.Write(0);
    EXPECT_EQ(Get(*txn, "a").kvs.size(), 1u);
    auto none = txn->DeleteRange("c", kAll);
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none->empty());
    EXPECT_EQ(txn->revision(), 2);
    txn->Commit();
  }
  EXPECT_EQ(m.revision(), 2);
  // The next change takes revision 3.
  Put(&m, "a", "2");
  EXPECT_EQ(Get(*m.Read(), "a").kvs.at(0).mod_revision, 3);
}

TEST(ModelTest, UncommittedWritesAreOnlyVisibleToTheirTxn) {
  Model m;
  Put(&m, "a", "1");
  {
    auto txn = m.Write(0);
    ASSERT_TRUE(txn->Put("a", "2", 0, PrevKv::kSkip).ok());
    ASSERT_TRUE(txn->Put("b", "2", 0, PrevKv::kSkip).ok());
    // The txn sees its own writes, at its revision too.
    EXPECT_EQ(Get(*txn, "a").kvs.at(0).value, "2");
    EXPECT_EQ(GetAt(*txn, 3, "b").kvs.at(0).value, "2");
    EXPECT_EQ(GetAt(*txn, 2, "a").kvs.at(0).value, "1");
    RangeOptions future;
    future.revision = 4;
    EXPECT_TRUE(IsFutureRevision(txn->Range("a", "", future).status()));
    // Nobody else does.
    EXPECT_EQ(Get(*m.Read(), "a").kvs.at(0).value, "1");
    EXPECT_EQ(m.revision(), 2);
    // Destroyed without Commit: discarded.
  }
  EXPECT_EQ(m.revision(), 2);
  EXPECT_EQ(Get(*m.Read(), "a").kvs.at(0).value, "1");
  EXPECT_TRUE(Get(*m.Read(), "b").kvs.empty());
  // The next txn writes revision 3 again.
  Put(&m, "c", "3");
  EXPECT_EQ(m.revision(), 3);
  EXPECT_EQ(Get(*m.Read(), "c").kvs.at(0).mod_revision, 3);
}

TEST(ModelTest, ReaderIsASnapshot) {
  Model m;
  Put(&m, "a", "1");
  auto r = m.Read();
  Put(&m, "a", "2");
  Delete(&m, "a");
  ASSERT_TRUE(m.Compact(3).ok());
  EXPECT_EQ(r->revision(), 2);
  EXPECT_EQ(r->compact_revision(), 0);
  EXPECT_EQ(Get(*r, "a").kvs.at(0).value, "1");
  EXPECT_EQ(GetAt(*r, 1, "a").count, 0);  // its own history, uncompacted
}

// etcd's key ranges: single key, [key, end), "\0" to the end, all keys.
TEST(ModelTest, KeyRanges) {
  Model m;
  for (const char* k : {"a", "ab", "abc", "b", "c"}) Put(&m, k, "v");
  auto r = m.Read();
  EXPECT_EQ(Keys(Get(*r, "ab")), std::vector<std::string>{"ab"});
  EXPECT_EQ(Keys(Get(*r, "zz")), std::vector<std::string>{});
  EXPECT_EQ(Keys(Get(*r, "ab", "b")), (std::vector<std::string>{"ab", "abc"}));   // end excluded
  EXPECT_EQ(Keys(Get(*r, "ab", "ac")), (std::vector<std::string>{"ab", "abc"}));  // prefix "ab"
  EXPECT_EQ(Keys(Get(*r, "abc", kAll)), (std::vector<std::string>{"abc", "b", "c"}));
  EXPECT_EQ(Keys(Get(*r, kAll, kAll)), (std::vector<std::string>{"a", "ab", "abc", "b", "c"}));
  EXPECT_EQ(Keys(Get(*r, "c", "a")), std::vector<std::string>{});  // end before key: empty
  EXPECT_EQ(Keys(Get(*r, "b", "b")), std::vector<std::string>{});
}

// etcd's mvcc rangeKeys: count is every key of the range; limit cuts kvs.
TEST(ModelTest, LimitCountKeysOnlyCountOnly) {
  Model m;
  for (const char* k : {"a", "b", "c", "d"}) Put(&m, k, std::string("v") + k);
  Delete(&m, "c");
  auto r = m.Read();
  struct Case {
    int64_t limit;
    bool keys_only, count_only;
    std::vector<std::string> keys;
    int64_t count;
    bool more;
  } cases[] = {
      {0, false, false, {"a", "b", "d"}, 3, false},
      {-1, false, false, {"a", "b", "d"}, 3, false},
      {2, false, false, {"a", "b"}, 3, true},
      {3, false, false, {"a", "b", "d"}, 3, false},
      {4, false, false, {"a", "b", "d"}, 3, false},
      {1, true, false, {"a"}, 3, true},
      {0, false, true, {}, 3, false},
      {1, false, true, {}, 3, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "limit " << c.limit << " keys_only " << c.keys_only
                                    << " count_only " << c.count_only);
    RangeOptions options;
    options.limit = c.limit;
    options.keys_only = c.keys_only;
    options.count_only = c.count_only;
    RangeResult result = Get(*r, kAll, kAll, options);
    EXPECT_EQ(Keys(result), c.keys);
    EXPECT_EQ(result.count, c.count);
    EXPECT_EQ(result.more, c.more);
    for (const KeyValue& kv : result.kvs) {
      EXPECT_EQ(kv.value, c.keys_only ? "" : "v" + kv.key);
      EXPECT_EQ(kv.version, 1);
    }
  }
}

TEST(ModelTest, CompactErrors) {
  Model m;
  Put(&m, "a", "1");  // 2
  Put(&m, "a", "2");  // 3
  EXPECT_TRUE(IsFutureRevision(m.Compact(4)));
  EXPECT_TRUE(IsCompacted(m.Compact(0)));  // nothing below 1 to compact
  ASSERT_TRUE(m.Compact(2).ok());
  EXPECT_EQ(m.compact_revision(), 2);
  EXPECT_TRUE(IsCompacted(m.Compact(2)));  // etcd: compacting again is ErrCompacted
  EXPECT_TRUE(IsCompacted(m.Compact(1)));
  ASSERT_TRUE(m.Compact(3).ok());  // the latest revision may be compacted
  EXPECT_EQ(m.compact_revision(), 3);
  EXPECT_EQ(m.revision(), 3);
  EXPECT_EQ(Get(*m.Read(), "a").kvs.at(0).value, "2");
}

// After Compact(C): a Range below C fails, every Range at C or above answers
// exactly as before (etcd keeps each key's last revision at or below C
// unless it is a delete).
TEST(ModelTest, CompactKeepsEveryReadFromItsRevision) {
  Model m;
  // A history with every kind of step: puts, overwrites, deletes of one and
  // of many keys, re-creations, a multi-key txn.
  Put(&m, "a", "1");     // 2
  Put(&m, "b", "1");     // 3
  Put(&m, "a", "2");     // 4
  Delete(&m, "b");       // 5
  Put(&m, "c", "1");     // 6
  Put(&m, "b", "2");     // 7
  Delete(&m, "a", "c");  // 8: a and b
  {
    auto txn = m.Write(0);  // 9
    ASSERT_TRUE(txn->Put("a", "3", 0, PrevKv::kSkip).ok());
    ASSERT_TRUE(txn->Put("d", "1", 0, PrevKv::kSkip).ok());
    txn->Commit();
  }
  Put(&m, "c", "2");  // 10
  ASSERT_EQ(m.revision(), 10);

  auto before = m.Read();
  for (int64_t c = 2; c <= 10; ++c) {
    SCOPED_TRACE(testing::Message() << "compact at " << c);
    ASSERT_TRUE(m.Compact(c).ok());
    auto after = m.Read();
    EXPECT_EQ(after->compact_revision(), c);
    RangeOptions options;
    options.revision = c - 1;
    EXPECT_TRUE(IsCompacted(after->Range(kAll, kAll, options).status()));
    EXPECT_TRUE(IsCompacted(after->Range("a", "", options).status()));
    for (int64_t rev = c; rev <= 10; ++rev) {
      SCOPED_TRACE(testing::Message() << "read at " << rev);
      RangeResult want = GetAt(*before, rev, kAll, kAll);
      RangeResult got = GetAt(*after, rev, kAll, kAll);
      EXPECT_EQ(got.kvs, want.kvs);
      EXPECT_EQ(got.count, want.count);
      for (const char* k : {"a", "b", "c", "d"})
        EXPECT_EQ(GetAt(*after, rev, k).kvs, GetAt(*before, rev, k).kvs);
    }
  }
  // Spot facts of that history (etcd's versions and revisions).
  EXPECT_EQ(GetAt(*before, 7, "b").kvs, std::vector<KeyValue>{Kv("b", "2", 7, 7, 1)});
  EXPECT_EQ(
      GetAt(*before, 9, kAll, kAll).kvs,
      (std::vector<KeyValue>{Kv("a", "3", 9, 9, 1), Kv("c", "1", 6, 6, 1), Kv("d", "1", 9, 9, 1)}));
  EXPECT_EQ(GetAt(*before, 10, "c").kvs, std::vector<KeyValue>{Kv("c", "2", 6, 10, 2)});
}

// A compaction through a delete: the key stays gone at and after C, and a
// later put creates it again from version 1.
TEST(ModelTest, CompactThroughADelete) {
  Model m;
  Put(&m, "a", "1");  // 2
  Delete(&m, "a");    // 3
  ASSERT_TRUE(m.Compact(3).ok());
  EXPECT_EQ(GetAt(*m.Read(), 3, "a").count, 0);
  Put(&m, "a", "2");  // 4
  EXPECT_EQ(Get(*m.Read(), "a").kvs, std::vector<KeyValue>{Kv("a", "2", 4, 4, 1)});
}

TEST(ModelTest, WriteTxnRangeSeesCompaction) {
  Model m;
  Put(&m, "a", "1");
  Put(&m, "a", "2");
  ASSERT_TRUE(m.Compact(3).ok());
  auto txn = m.Write(0);
  EXPECT_EQ(txn->compact_revision(), 3);
  RangeOptions options;
  options.revision = 2;
  EXPECT_TRUE(IsCompacted(txn->Range("a", "", options).status()));
}

}  // namespace
}  // namespace raftkv::mvcc
