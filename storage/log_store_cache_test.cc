// The entry cache must not change what the store answers: a store with a
// small cache (so it trims, restarts and drops often) and one without are
// driven through the same random appends (including replaced suffixes),
// compactions and snapshots, and every read is compared.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/data_batch.h"
#include "storage/log_store.h"
#include "storage/test_util.h"

namespace raftkv::storage {
namespace {

std::unique_ptr<LogStore> OpenStore(const std::string& dir, size_t cache_bytes) {
  Options o;
  o.dir = dir;
  o.sync = false;
  o.entry_cache_bytes = cache_bytes;
  std::filesystem::remove_all(dir);
  auto store = LogStore::Open(o);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

std::string Describe(const absl::StatusOr<std::vector<raftpb::Entry>>& r) {
  if (!r.ok()) return r.status().ToString();
  std::string out;
  for (const auto& e : *r) absl::StrAppend(&out, e.index(), "/", e.term(), "/", e.data(), " ");
  return out;
}

std::string Describe(const absl::StatusOr<uint64_t>& r) {
  return r.ok() ? absl::StrCat(*r) : r.status().ToString();
}

TEST(LogStoreCacheTest, ReadsAreTheSameWithAndWithoutTheCache) {
  const std::string base = testing::TestDir();
  std::unique_ptr<LogStore> plain = OpenStore(base + ".plain", 0);
  std::unique_ptr<LogStore> cached = OpenStore(base + ".cached", 2000);
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(cached, nullptr);
  LogStore* both[] = {plain.get(), cached.get()};

  std::mt19937_64 rng(7);
  auto uniform = [&](uint64_t lo, uint64_t hi) {  // [lo, hi]
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  uint64_t term = 1;
  for (int step = 0; step < 3000; ++step) {
    const uint64_t first = plain->FirstIndex();
    const uint64_t last = plain->LastIndex();
    const uint64_t roll = uniform(0, 99);
    if (roll < 70) {
      // Append, sometimes replacing a suffix under a newer term.
      uint64_t from = last + 1;
      if (roll < 15 && last >= first) {
        from = uniform(std::max(first, plain->hard_state().commit() + 1), last + 1);
        ++term;
      }
      auto entries = testing::MakeEntries(from, from + uniform(1, 8), term, uniform(1, 120));
      for (LogStore* s : both) ASSERT_TRUE(s->Append(entries, nullptr).ok());
    } else if (roll < 80 && last > first + 4) {
      // Compact a prefix (after "applying" it).
      const uint64_t index = uniform(first, last - 2);
      const uint64_t t = *plain->Term(index);
      for (LogStore* s : both) {
        if (s->applied_index() < index) ASSERT_TRUE(s->ApplyBatch(DataBatch(), index, nullptr).ok());
        ASSERT_TRUE(s->Compact(index, t, testing::Voters({1})).ok());
      }
    } else if (roll < 83) {
      // A snapshot past the log (drops it) or inside it (keeps the suffix).
      const uint64_t index = uniform(plain->FirstIndex(), last + 3);
      raftpb::SnapshotMetadata meta;
      meta.set_index(index);
      absl::StatusOr<uint64_t> t = plain->Term(index);
      meta.set_term(t.ok() && uniform(0, 1) == 0 ? *t : ++term);
      *meta.mutable_conf_state() = testing::Voters({1});
      DataBatch data;
      for (LogStore* s : both) {
        const bool fresh = s->applied_index() <= index;
        ASSERT_TRUE(s->ApplySnapshot(meta, fresh ? &data : nullptr).ok());
      }
    }
    ASSERT_EQ(plain->FirstIndex(), cached->FirstIndex());
    ASSERT_EQ(plain->LastIndex(), cached->LastIndex());
    // Reads, including ranges straddling the cached run and byte budgets.
    for (int r = 0; r < 4; ++r) {
      const uint64_t lo = uniform(plain->FirstIndex() > 2 ? plain->FirstIndex() - 2 : 0,
                                  plain->LastIndex() + 1);
      const uint64_t hi = uniform(lo, plain->LastIndex() + 2);
      const uint64_t budget = uniform(0, 3) == 0 ? ~uint64_t{0} : uniform(0, 600);
      ASSERT_EQ(Describe(plain->Entries(lo, hi, budget)), Describe(cached->Entries(lo, hi, budget)))
          << "step " << step << " Entries(" << lo << ", " << hi << ", " << budget << ")";
      ASSERT_EQ(Describe(plain->Term(lo)), Describe(cached->Term(lo)))
          << "step " << step << " Term(" << lo << ")";
    }
  }
}

}  // namespace
}  // namespace raftkv::storage
