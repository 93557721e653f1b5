// A node started on the wrong data: another node's data dir, or its own dir
// with a --cluster other than the one it was founded with. The process must
// exit non-zero at once with a message that says what is wrong, and leave
// the data untouched. Also: missing or inconsistent flags.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

using ::testing::HasSubstr;

// `flags` with every --name=... replaced by --name=value.
std::vector<std::string> With(std::vector<std::string> flags, const std::string& name,
                              const std::string& value) {
  for (auto& f : flags) {
    if (f.rfind(absl::StrCat("--", name, "="), 0) == 0) f = absl::StrCat("--", name, "=", value);
  }
  return flags;
}

class DataDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(c_.StartAll().ok());
    ASSERT_TRUE(c_.WaitForLeader().ok());
    TestClient client(&c_);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(client.Put(absl::StrCat("k", i), "v").ok());
    auto st = c_.WaitForConvergence();
    ASSERT_TRUE(st.ok()) << st.status();
    digest_ = st->data_digest();
  }

  // After the failed starts, the real nodes come back with their data.
  void ExpectClusterIntact() {
    ASSERT_TRUE(c_.StartAll().ok());
    auto st = c_.WaitForConvergence();
    ASSERT_TRUE(st.ok()) << st.status();
    EXPECT_EQ(st->data_digest(), digest_);
    EXPECT_EQ(st->key_count(), 10u);
  }

  Cluster c_;
  uint64_t digest_ = 0;
};

TEST_F(DataDirTest, AnotherNodesDataDirIsRefused) {
  c_.Kill(1);
  c_.Kill(2);
  ExitResult r = c_.RunServer(With(c_.NodeFlags(1), "data_dir", c_.data_dir(2)), "n1-on-n2.log");
  ExpectQuickFailure(r, {absl::StrCat("data dir ", c_.data_dir(2), " belongs to node 2 of cluster"),
                         "but this is node 1 of cluster",
                         "Use the node's own data dir"});
  ExpectClusterIntact();
}

TEST_F(DataDirTest, ADifferentClusterIsRefused) {
  c_.Kill(1);
  // Node 3 at another port: a different cluster for the same node id.
  const std::string other = absl::StrReplaceAll(
      c_.cluster_flag(), {{c_.address(3), absl::StrCat("127.0.0.1:", PickFreePort())}});
  ExitResult r = c_.RunServer(With(c_.NodeFlags(1), "cluster", other), "n1-other-cluster.log");
  ExpectQuickFailure(r, {absl::StrCat("data dir ", c_.data_dir(1), " belongs to node 1 of cluster"),
                         "but this is node 1 of cluster", "(from --id and --cluster)",
                         "or the --cluster it was founded with"});

  // A fourth member is a different cluster too.
  const std::string grown =
      absl::StrCat(c_.cluster_flag(), ",4=127.0.0.1:", PickFreePort());
  r = c_.RunServer(With(c_.NodeFlags(1), "cluster", grown), "n1-grown-cluster.log");
  ExpectQuickFailure(r, {"belongs to node 1 of cluster", "--cluster it was founded with"});
  ExpectClusterIntact();
}

TEST_F(DataDirTest, ADataDirInUseIsRefused) {
  // Node 2 is running and holds its store; node 1 pointed at it must not
  // open it (or serve anything) but fail fast.
  c_.Kill(1);
  ExitResult r = c_.RunServer(With(c_.NodeFlags(1), "data_dir", c_.data_dir(2)), "n1-on-live-n2.log");
  ExpectQuickFailure(r, {c_.data_dir(2), "the directory is locked"});
  ExpectClusterIntact();
}

TEST_F(DataDirTest, BadFlagsExitWithAMessage) {
  const std::string dir = absl::StrCat(c_.data_dir(1), "-unused");
  const std::string cluster = c_.cluster_flag();
  ExpectQuickFailure(c_.RunServer({"--cluster=" + cluster, "--data_dir=" + dir}, "no-id.log"),
                     {"--id is required"});
  ExpectQuickFailure(c_.RunServer({"--id=1", "--cluster=" + cluster}, "no-dir.log"),
                     {"--data_dir is required"});
  ExpectQuickFailure(
      c_.RunServer({"--id=7", "--cluster=" + cluster, "--data_dir=" + dir}, "bad-id.log"),
      {"--id=7 is not in --cluster="});
  ExpectQuickFailure(
      c_.RunServer({"--id=1", "--cluster=1=127.0.0.1", "--data_dir=" + dir}, "bad-cluster.log"),
      {"--cluster: "});
}

}  // namespace
}  // namespace raftkv::testing
