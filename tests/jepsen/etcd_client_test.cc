// EtcdClient against a real 3-node cluster: the calls the fault runs make
// (Put, Range of a key and of a prefix, DeleteRange, the CAS Txn both ways)
// answer with etcd's revisions, and a client whose member is down moves to
// the next one.
#include "tests/jepsen/etcd_client.h"

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/cluster_harness.h"

namespace raftkv::jepsen {
namespace {

const absl::Duration kTimeout = absl::Seconds(5);

TEST(EtcdClientTest, PrefixRangeEnds) {
  EXPECT_EQ(PrefixRange("k", false).range_end(), "l");
  EXPECT_EQ(PrefixRange("a\xff", false).range_end(), "b");
  EXPECT_EQ(PrefixRange("\xff\xff", true).range_end(), std::string(1, '\0'));
  EXPECT_TRUE(PrefixRange("k", true).serializable());
}

class EtcdClientClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.StartAll().ok());
    ASSERT_TRUE(cluster_.WaitForLeader().ok());
  }
  testing::Cluster cluster_;
};

TEST_F(EtcdClientClusterTest, KvCallsCarryRevisions) {
  // Starts on the second member: leader or not, it must serve every call.
  EtcdClient c(cluster_.addresses(), grpc::InsecureChannelCredentials(), 1);
  auto put = c.Put("k1", "a", kTimeout);
  ASSERT_TRUE(put.ok()) << put.status();
  const int64_t r1 = put->header().revision();
  EXPECT_GT(r1, 0);
  EXPECT_EQ(put->header().member_id(), 2u);

  auto get = c.Range(KeyRange("k1", false), kTimeout);
  ASSERT_TRUE(get.ok()) << get.status();
  ASSERT_EQ(get->kvs_size(), 1);
  EXPECT_EQ(get->kvs(0).value(), "a");
  EXPECT_EQ(get->kvs(0).mod_revision(), r1);
  EXPECT_GE(get->header().revision(), r1);

  // CAS by mod_revision: matches, then no longer does.
  auto cas = c.Txn(CasTxn("k1", true, "", r1, "b"), kTimeout);
  ASSERT_TRUE(cas.ok()) << cas.status();
  EXPECT_TRUE(cas->succeeded());
  const int64_t r2 = cas->header().revision();
  EXPECT_GT(r2, r1);
  cas = c.Txn(CasTxn("k1", true, "", r1, "c"), kTimeout);
  ASSERT_TRUE(cas.ok()) << cas.status();
  EXPECT_FALSE(cas->succeeded());
  ASSERT_EQ(cas->responses_size(), 1);
  ASSERT_EQ(cas->responses(0).response_range().kvs_size(), 1);
  EXPECT_EQ(cas->responses(0).response_range().kvs(0).value(), "b");
  EXPECT_EQ(cas->responses(0).response_range().kvs(0).mod_revision(), r2);

  // CAS by value; an absent key never matches by value, matches mod 0.
  cas = c.Txn(CasTxn("k1", false, "b", 0, "d"), kTimeout);
  ASSERT_TRUE(cas.ok()) << cas.status();
  EXPECT_TRUE(cas->succeeded());
  cas = c.Txn(CasTxn("k2", false, "", 0, "x"), kTimeout);
  ASSERT_TRUE(cas.ok()) << cas.status();
  EXPECT_FALSE(cas->succeeded());
  EXPECT_EQ(cas->responses(0).response_range().kvs_size(), 0);
  cas = c.Txn(CasTxn("k2", true, "", 0, "x"), kTimeout);
  ASSERT_TRUE(cas.ok()) << cas.status();
  EXPECT_TRUE(cas->succeeded());

  // A prefix Range reads both keys at one revision; a serializable one too.
  for (bool serializable : {false, true}) {
    auto scan = c.Range(PrefixRange("k", serializable), kTimeout);
    ASSERT_TRUE(scan.ok()) << scan.status();
    ASSERT_EQ(scan->kvs_size(), 2);
    EXPECT_EQ(scan->kvs(0).value(), "d");
    EXPECT_EQ(scan->kvs(1).value(), "x");
    if (!serializable) EXPECT_EQ(scan->header().revision(), scan->kvs(1).mod_revision());
  }

  auto del = c.Delete("k1", kTimeout);
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->deleted(), 1);
  del = c.Delete("k1", kTimeout);
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->deleted(), 0);
  get = c.Range(KeyRange("k1", false), kTimeout);
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->kvs_size(), 0);
}

TEST_F(EtcdClientClusterTest, MovesToTheNextMemberWhenItsMemberIsDown) {
  cluster_.Kill(1);
  EtcdClient c(cluster_.addresses(), grpc::InsecureChannelCredentials(), 0);
  // A write is one call: it fails on the dead member, and the client moves.
  auto put = c.Put("k", "v", absl::Seconds(2));
  EXPECT_TRUE(EtcdClient::NoAnswer(put.status())) << put.status();
  EXPECT_EQ(c.current(), 1u);
  // A read is retried on the next members until one answers.
  EtcdClient r(cluster_.addresses(), grpc::InsecureChannelCredentials(), 0);
  auto get = r.RangeRetrying(KeyRange("k", false), absl::Seconds(1), absl::Seconds(20));
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_NE(get->header().member_id(), 1u);
}

}  // namespace
}  // namespace raftkv::jepsen
