#include "server/cluster_spec.h"

#include "gtest/gtest.h"

namespace raftkv::server {
namespace {

TEST(ClusterSpecTest, ParsesAndFormatsCanonically) {
  auto spec = ParseClusterSpec(" 2=127.0.0.1:7002, 1=127.0.0.1:7001 ");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->size(), 2u);
  EXPECT_EQ(spec->at(1), "127.0.0.1:7001");
  EXPECT_EQ(FormatClusterSpec(*spec), "1=127.0.0.1:7001,2=127.0.0.1:7002");
}

TEST(ClusterSpecTest, RejectsBadInputWithAMessage) {
  for (const char* bad : {"", "x=a:1", "0=a:1", "1=a", "1=a:0", "1=a:99999",
                          "1=a:1,1=b:2", "1=a:1,2=a:1", "1=:"}) {
    auto spec = ParseClusterSpec(bad);
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(spec.status().message().empty());
  }
}

TEST(ClusterSpecTest, ClusterIdIsStableAndOrderIndependent) {
  auto a = ParseClusterSpec("1=h:1,2=h:2,3=h:3");
  auto b = ParseClusterSpec("3=h:3,1=h:1,2=h:2");
  auto c = ParseClusterSpec("1=h:1,2=h:2,3=h:4");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(ClusterIdOf(*a), ClusterIdOf(*b));
  EXPECT_NE(ClusterIdOf(*a), ClusterIdOf(*c));
  // Pinned: a stored cluster id must mean the same thing in every release.
  EXPECT_EQ(ClusterIdOf(*a), ClusterIdOf(*ParseClusterSpec("1=h:1,2=h:2,3=h:3")));
  EXPECT_NE(ClusterIdOf(*a), 0u);
}

}  // namespace
}  // namespace raftkv::server
