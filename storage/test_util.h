// Helpers shared by the LogStore tests. Test-only.
#ifndef RAFTKV_STORAGE_TEST_UTIL_H_
#define RAFTKV_STORAGE_TEST_UTIL_H_

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/raft.pb.h"
#include "proto/storage.pb.h"
#include "storage/log_store.h"

namespace raftkv::storage::testing {

// A fresh directory under TEST_TMPDIR named after the running test.
inline std::string TestDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(base != nullptr ? base : "/tmp", "/",
                                 info->test_suite_name(), ".", info->name());
  std::filesystem::remove_all(dir);
  return dir;
}

inline raftpb::Entry MakeEntry(uint64_t index, uint64_t term,
                               size_t size = 10) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::string(size, static_cast<char>('a' + index % 26)));
  return e;
}

// Entries [lo, hi) of `term`.
inline std::vector<raftpb::Entry> MakeEntries(uint64_t lo, uint64_t hi,
                                              uint64_t term, size_t size = 10) {
  std::vector<raftpb::Entry> out;
  for (uint64_t i = lo; i < hi; ++i) out.push_back(MakeEntry(i, term, size));
  return out;
}

inline raftpb::HardState MakeHardState(uint64_t term, uint64_t vote,
                                       uint64_t commit) {
  raftpb::HardState hs;
  hs.set_term(term);
  hs.set_vote(vote);
  hs.set_commit(commit);
  return hs;
}

inline storagepb::NodeIdentity MakeIdentity(uint64_t cluster, uint64_t node) {
  storagepb::NodeIdentity id;
  id.set_cluster_id(cluster);
  id.set_node_id(node);
  return id;
}

inline raftpb::ConfState Voters(const std::vector<uint64_t>& ids) {
  raftpb::ConfState cs;
  for (uint64_t id : ids) cs.add_voters(id);
  return cs;
}

// Opens a store in a fresh TestDir(); Reopen() closes and opens it again.
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

}  // namespace raftkv::storage::testing

#endif  // RAFTKV_STORAGE_TEST_UTIL_H_
