// A crash mid-write leaves the live WAL's last record torn, with the WAL's
// preallocated zeros after it: the store opens without that record (it was
// never synced). Damage before the tail still refuses to open.
#include "storage/wal_repair.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/data_batch.h"
#include "storage/log_store.h"
#include "storage/test_util.h"

namespace raftkv::storage {
namespace {

using testing::MakeEntries;
using testing::MakeHardState;
using testing::MakeIdentity;
using testing::TestDir;

class WalRepairTest : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
    dir_ = TestDir();
    crashed_ = dir_ + ".crashed";
    std::filesystem::remove_all(crashed_);
  }

  Options StoreOptions(const std::string& dir) {
    Options o;
    o.dir = dir;
    o.durable_mark_interval = absl::Hours(1);  // the mark: as of Open
    return o;
  }

  // Entries [1, 20] synced one write each, then an unsynced ApplyBatch of a
  // `value_bytes` value: the WAL's last record. The copy taken while the
  // store is open is what a crash leaves (the WAL still preallocated).
  void BuildAndCrash(size_t value_bytes) {
    auto store = LogStore::Open(StoreOptions(dir_));
    ASSERT_TRUE(store.ok()) << store.status();
    raftpb::ConfState conf;
    conf.add_voters(1);
    ASSERT_TRUE((*store)->Bootstrap(MakeIdentity(7, 1), conf).ok());
    for (uint64_t i = 1; i <= 20; ++i) {
      const raftpb::HardState hs = MakeHardState(2, 1, i);
      ASSERT_TRUE((*store)->Append(MakeEntries(i, i + 1, 2, 100), &hs).ok());
    }
    DataBatch batch;
    batch.Put("k", std::string(value_bytes, 'v'));
    ASSERT_TRUE((*store)->ApplyBatch(batch, 20).ok());
    std::filesystem::copy(dir_, crashed_, std::filesystem::copy_options::recursive);
  }

  std::string NewestWal() {
    std::string newest;
    for (const auto& f : std::filesystem::directory_iterator(crashed_)) {
      if (f.path().extension() == ".log" && f.path().string() > newest) newest = f.path().string();
    }
    return newest;
  }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  static void Write(const std::string& path, const std::string& bytes) {
    std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

  std::string dir_, crashed_;
};

TEST_P(WalRepairTest, ATornLastRecordIsDroppedAndTheStoreOpens) {
  BuildAndCrash(GetParam());
  const std::string wal = NewestWal();
  ASSERT_FALSE(wal.empty());
  std::string bytes = Read(wal);
  size_t end = bytes.size();
  while (end > 0 && bytes[end - 1] == 0) --end;
  ASSERT_LT(end, bytes.size()) << "the WAL is not preallocated: no zeros after its records";
  // The write stopped 5 bytes short: they stay zero.
  for (size_t i = end - 5; i < end; ++i) bytes[i] = 0;
  Write(wal, bytes);
  ASSERT_TRUE(FindTornTail(bytes).has_value());

  auto store = LogStore::Open(StoreOptions(crashed_));
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->LastIndex(), 20u);
  EXPECT_EQ((*store)->hard_state().commit(), 20u);
  EXPECT_EQ((*store)->applied_index(), 0u) << "the torn, unsynced apply is gone";
  EXPECT_TRUE(absl::IsNotFound((*store)->Get("k").status()));
  auto entries = (*store)->Entries(1, 21, 1 << 20);
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_EQ(entries->size(), 20u);
  // It takes writes again, and opens again.
  DataBatch batch;
  batch.Put("k", "after");
  ASSERT_TRUE((*store)->ApplyBatch(batch, 20).ok());
  store->reset();
  auto again = LogStore::Open(StoreOptions(crashed_));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*(*again)->Get("k"), "after");
}

// A big record is written in fragments, one per 32 KiB block; a crash can
// leave its first fragments whole and the rest unwritten (zeros). RocksDB
// says "error in middle of record" (seen after a SIGKILL mid-snapshot
// install in //tests/jepsen:fault_test); the record is cut like any torn one.
class WalFragmentsTest : public WalRepairTest {};

TEST_F(WalFragmentsTest, ARecordMissingItsLastFragmentsIsDropped) {
  BuildAndCrash(100 << 10);
  const std::string wal = NewestWal();
  std::string bytes = Read(wal);
  size_t end = bytes.size();
  while (end > 0 && bytes[end - 1] == 0) --end;
  // Everything of the last block the record reached: its last fragment.
  const size_t block_start = (end - 1) / 32768 * 32768;
  ASSERT_GT(block_start, 32768u) << "the record did not span blocks";
  for (size_t i = block_start; i < end; ++i) bytes[i] = 0;
  Write(wal, bytes);
  ASSERT_TRUE(FindTornTail(bytes).has_value());
  auto store = LogStore::Open(StoreOptions(crashed_));
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->LastIndex(), 20u);
  EXPECT_EQ((*store)->applied_index(), 0u) << "the torn, unsynced apply is gone";
  EXPECT_TRUE(absl::IsNotFound((*store)->Get("k").status()));
}

TEST_P(WalRepairTest, DamageBeforeTheTailStillRefusesToOpen) {
  BuildAndCrash(GetParam());
  const std::string wal = NewestWal();
  std::string bytes = Read(wal);
  bytes[200] ^= 0x40;  // inside an early, synced record
  Write(wal, bytes);
  EXPECT_FALSE(FindTornTail(bytes).has_value());
  auto store = LogStore::Open(StoreOptions(crashed_));
  ASSERT_FALSE(store.ok()) << "opened a store whose WAL lost a synced record";
  EXPECT_EQ(Read(wal).size(), bytes.size()) << "the damaged WAL was cut";
}

// A small last record, and one in fragments across blocks.
INSTANTIATE_TEST_SUITE_P(LastRecord, WalRepairTest, ::testing::Values(100, 100 << 10));

TEST(FindTornTailTest, AnEmptyOrZeroFilledWalHasNoTornTail) {
  EXPECT_FALSE(FindTornTail("").has_value());
  EXPECT_FALSE(FindTornTail(std::string(70000, '\0')).has_value());
}

}  // namespace
}  // namespace raftkv::storage
