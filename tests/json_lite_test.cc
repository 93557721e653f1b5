#include "tests/json_lite.h"

#include "gtest/gtest.h"

namespace raftkv::testing {
namespace {

TEST(JsonLiteTest, ReadsEtcdctlOutput) {
  // etcdctl get -w json, as etcd 3.4 prints it: ids past 2^53, base64 keys.
  auto j = Json::Parse(
      R"({"header":{"cluster_id":7266900810802666328,"member_id":18446744073709551615,)"
      R"("revision":4,"raft_term":2},"kvs":[{"key":"YQ==","create_revision":2,)"
      R"("mod_revision":4,"version":3,"value":"Mw=="}],"count":1,"more":false} )");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ((*j)["header"]["cluster_id"].u64(), 7266900810802666328u);
  EXPECT_EQ((*j)["header"]["member_id"].u64(), 18446744073709551615u);
  EXPECT_EQ((*j)["kvs"].size(), 1u);
  EXPECT_EQ((*j)["kvs"][0]["key"].base64(), "a");
  EXPECT_EQ((*j)["kvs"][0]["value"].base64(), "3");
  EXPECT_EQ((*j)["kvs"][0]["version"].i64(), 3);
  EXPECT_FALSE((*j)["more"].boolean(true));
  EXPECT_TRUE((*j)["absent"]["deeper"].is_null());
  EXPECT_EQ((*j)["kvs"][7]["key"].base64(), "");
}

TEST(JsonLiteTest, StringsAndNesting) {
  auto j = Json::Parse(R"([{"a":"x\"y\\z\u00e9\n"},[],{},true,null,-12])");
  ASSERT_TRUE(j.ok()) << j.status();
  ASSERT_EQ(j->size(), 6u);
  EXPECT_EQ((*j)[0]["a"].text(), "x\"y\\z\xc3\xa9\n");
  EXPECT_EQ((*j)[1].type(), Json::Type::kArray);
  EXPECT_EQ((*j)[2].type(), Json::Type::kObject);
  EXPECT_TRUE((*j)[3].boolean());
  EXPECT_TRUE((*j)[4].is_null());
  EXPECT_EQ((*j)[5].i64(), -12);
  EXPECT_EQ((*j)[5].u64(99), 99u);
}

TEST(JsonLiteTest, RejectsBrokenInput) {
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "\"open", "[1] x", "tru", "{1:2}"}) {
    EXPECT_FALSE(Json::Parse(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace raftkv::testing
