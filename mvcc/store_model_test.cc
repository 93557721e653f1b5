// The RocksDB store against the in-memory model (mvcc/model.h): random
// transactions, deletes, compactions, physical compaction steps, restarts and
// reads at random revisions must answer exactly as the model does.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "mvcc/model.h"
#include "mvcc/store.h"
#include "storage/test_util.h"

namespace raftkv::mvcc {
namespace {

std::string Describe(const absl::StatusOr<RangeResult>& r) {
  if (!r.ok()) return r.status().ToString();
  std::string out = absl::StrCat("count=", r->count, " more=", r->more, " [");
  for (const KeyValue& kv : r->kvs) {
    absl::StrAppend(&out, absl::CEscape(kv.key), "=", absl::CEscape(kv.value), "@c",
                    kv.create_revision, "m", kv.mod_revision, "v", kv.version, "l", kv.lease,
                    "i", kv.index, " ");
  }
  return out + "]";
}

class StoreModelTest : public ::testing::TestWithParam<uint32_t> {
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
    // Seeds take turns: no cache, a cache of a few keys (constant misses
    // and evictions), and the default.
    Store::Options so;
    switch (GetParam() % 3) {
      case 0:
        so.latest_cache_bytes = 0;
        break;
      case 1:
        so.latest_cache_bytes = 6 * (4 + LatestCache::kEntryOverhead);
        break;
    }
    auto s = Store::Open(log_.get(), so);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }

  std::string RandomKey() {
    // Few keys, prefixes of each other and with zero bytes, so ranges,
    // overwrites and deletes meet often.
    static const std::vector<std::string> keys = {
        "a", "ab", "abc", std::string("a\0", 2), std::string("a\0b", 3), "b", "b\xff", "c", "cd"};
    return keys[rng_() % keys.size()];
  }
  std::pair<std::string, std::string> RandomRange() {
    switch (rng_() % 4) {
      case 0:
        return {RandomKey(), ""};
      case 1:
        return {RandomKey(), std::string("\0", 1)};
      case 2:
        return {std::string("\0", 1), std::string("\0", 1)};
      default: {
        std::string a = RandomKey(), b = RandomKey();
        return {a, b};
      }
    }
  }
  RangeOptions RandomOptions(int64_t latest, int64_t compact) {
    RangeOptions o;
    switch (rng_() % 4) {
      case 0:
        break;
      case 1:
        o.revision = latest + static_cast<int64_t>(rng_() % 2);  // the latest or the future
        break;
      default:
        // Mostly valid history, sometimes compacted.
        o.revision = std::max<int64_t>(1, compact - 1) +
                     static_cast<int64_t>(rng_() % (latest - std::max<int64_t>(1, compact - 1) + 1));
    }
    if (rng_() % 3 == 0) o.limit = rng_() % 3;
    o.keys_only = rng_() % 5 == 0;
    o.count_only = rng_() % 7 == 0;
    if (rng_() % 6 == 0) o.max_bytes = 1 + rng_() % 64;
    return o;
  }
  void CompareRead(const Reader& got, const Reader& want, const std::string& where) {
    ASSERT_EQ(got.revision(), want.revision()) << where;
    ASSERT_EQ(got.compact_revision(), want.compact_revision()) << where;
    for (int i = 0; i < 3; ++i) {
      auto [key, end] = RandomRange();
      RangeOptions o = RandomOptions(want.revision(), want.compact_revision());
      auto g = got.Range(key, end, o);
      auto w = want.Range(key, end, o);
      ASSERT_EQ(Describe(g), Describe(w))
          << where << " range [" << absl::CEscape(key) << ", " << absl::CEscape(end)
          << ") rev " << o.revision << " limit " << o.limit;
    }
  }

  std::mt19937 rng_;
  std::string dir_;
  std::unique_ptr<storage::LogStore> log_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreModelTest, AnswersAsTheModel) {
  rng_.seed(GetParam());
  Model model;
  uint64_t index = 0;
  for (int round = 0; round < 150; ++round) {
    std::unique_ptr<Store::Batch> batch = store_->BeginBatch();
    const int commands = 1 + rng_() % 4;
    for (int c = 0; c < commands; ++c) {
      ++index;
      if (rng_() % 12 == 0) {
        // A compaction, at a revision valid or not.
        const int64_t rev = model.compact_revision() +
                            static_cast<int64_t>(rng_() % (model.revision() - model.compact_revision() + 2));
        absl::Status w = model.Compact(rev);
        absl::Status g = batch->Compact(rev);
        ASSERT_EQ(g.ToString(), w.ToString()) << "compact " << rev;
        continue;
      }
      std::unique_ptr<Store::Txn> st = batch->Begin(index);
      std::unique_ptr<ModelTxn> mt = model.Write(index);
      const int ops = 1 + rng_() % 3;
      std::vector<std::string> written;
      for (int o = 0; o < ops; ++o) {
        const std::string where = absl::StrCat("round ", round, " index ", index, " op ", o);
        if (rng_() % 3 == 0) {
          auto [key, end] = RandomRange();
          auto g = st->DeleteRange(key, end);
          auto w = mt->DeleteRange(key, end);
          ASSERT_EQ(g.ok(), w.ok()) << where;
          ASSERT_EQ(g->size(), w->size()) << where;
          for (size_t i = 0; i < g->size(); ++i) ASSERT_EQ((*g)[i], (*w)[i]) << where;
        } else {
          const std::string key = RandomKey();
          const std::string value = absl::StrCat("v", index, ".", o);
          const int64_t lease = rng_() % 4 == 0 ? 7 : 0;
          const PrevKv want = rng_() % 2 == 0 ? PrevKv::kReturn : PrevKv::kSkip;
          auto g = st->Put(key, value, lease, want);
          auto w = mt->Put(key, value, lease, want);
          ASSERT_TRUE(g.ok() && w.ok()) << where;
          ASSERT_EQ(g->has_value(), w->has_value()) << where;
          if (g->has_value()) ASSERT_EQ(**g, **w) << where;
        }
        ASSERT_EQ(st->revision(), mt->revision()) << where;
        CompareRead(*st, *mt, where + " (inside the txn)");
      }
      if (rng_() % 8 == 0) continue;  // dropped: neither commits
      st->Commit();
      mt->Commit();
    }
    storage::DataBatch out;
    batch->Finish(&out);
    ASSERT_TRUE(log_->ApplyBatch(out, index).ok());
    batch.reset();  // its cursor must not outlive a reopened store
    CompareRead(*store_->Read(), *model.Read(), absl::StrCat("round ", round));
    if (rng_() % 3 == 0) {
      auto more = store_->CompactStep(1 + rng_() % 5);
      ASSERT_TRUE(more.ok()) << more.status();
      CompareRead(*store_->Read(), *model.Read(), absl::StrCat("round ", round, " after a step"));
    }
    if (rng_() % 25 == 0) {
      Reopen();
      ASSERT_EQ(store_->revision(), model.revision());
      ASSERT_EQ(store_->compact_revision(), model.compact_revision());
    }
  }
  // Physical compaction to the end leaves every answer as it was.
  for (int i = 0; i < 1000; ++i) {
    auto more = store_->CompactStep(3);
    ASSERT_TRUE(more.ok());
    if (!*more) break;
  }
  for (int i = 0; i < 20; ++i) CompareRead(*store_->Read(), *model.Read(), "at the end");
}

INSTANTIATE_TEST_SUITE_P(Seeds, StoreModelTest, ::testing::Range(1u, 21u));

}  // namespace
}  // namespace raftkv::mvcc
