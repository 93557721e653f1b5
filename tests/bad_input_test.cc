// Bad requests: an empty key, a key over 4 KiB, a value over
// --max_value_bytes, malformed headers. Every node (leader or follower)
// answers INVALID_ARGUMENT with a message saying what is wrong, writes
// nothing, and keeps serving.
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster_harness.h"

namespace raftkv::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kMaxValue = 1024;
constexpr size_t kMaxKey = 4096;

class BadInputTest : public ::testing::Test {
 protected:
  static ClusterOptions Options() {
    ClusterOptions o;
    o.extra_flags = {absl::StrCat("--max_value_bytes=", kMaxValue)};
    return o;
  }

  void SetUp() override {
    ASSERT_TRUE(c_.StartAll().ok());
    auto leader = c_.WaitForLeader();
    ASSERT_TRUE(leader.ok()) << leader.status();
    leader_ = *leader;
    follower_ = leader_ % c_.size() + 1;
  }

  grpc::Status Put(int node, const std::string& key, const std::string& value,
                   uint64_t client_id = 0, uint64_t seq = 0, uint64_t first_incomplete = 0) {
    kvpb::PutRequest req;
    req.mutable_header()->set_client_id(client_id);
    req.mutable_header()->set_seq(seq);
    req.mutable_header()->set_first_incomplete(first_incomplete);
    req.set_key(key);
    req.set_value(value);
    kvpb::PutResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return c_.kv(node)->Put(&ctx, req, &resp);
  }

  Cluster c_{Options()};
  int leader_ = 0;
  int follower_ = 0;
};

#define EXPECT_INVALID(status, text)                                          \
  do {                                                                        \
    grpc::Status s_ = (status);                                               \
    EXPECT_EQ(s_.error_code(), grpc::StatusCode::INVALID_ARGUMENT)            \
        << "got " << s_.error_code() << ": " << s_.error_message();           \
    EXPECT_THAT(s_.error_message(), HasSubstr(text));                         \
  } while (0)

TEST_F(BadInputTest, RejectedOnEveryNodeWithAMessageAndNothingIsWritten) {
  auto before = c_.WaitForConvergence();
  ASSERT_TRUE(before.ok()) << before.status();
  const std::string long_key(kMaxKey + 1, 'k');
  const std::string big_value(kMaxValue + 1, 'v');

  for (int node : {leader_, follower_}) {
    SCOPED_TRACE(absl::StrCat("node ", node, node == leader_ ? " (leader)" : " (follower)"));
    EXPECT_INVALID(Put(node, "", "v"), "key must not be empty");
    EXPECT_INVALID(Put(node, long_key, "v"),
                   absl::StrCat("key of ", kMaxKey + 1, " bytes exceeds the limit of ", kMaxKey));
    EXPECT_INVALID(Put(node, "big", big_value),
                   absl::StrCat("value of ", kMaxValue + 1,
                                " bytes exceeds --max_value_bytes=", kMaxValue));
    // Also with an exactly-once header: the sequence number is not used up.
    EXPECT_INVALID(Put(node, "big", big_value, 42, 1), "exceeds --max_value_bytes");
    EXPECT_INVALID(Put(node, "k", "v", 42, 0), "sequence number");
    EXPECT_INVALID(Put(node, "k", "v", 42, 3, 5), "first_incomplete");

    {
      kvpb::CasRequest req;
      req.set_key("big");
      req.set_expected_version(0);
      req.set_new_value(big_value);
      kvpb::CasResponse resp;
      grpc::ClientContext ctx;
      EXPECT_INVALID(c_.kv(node)->CompareAndSwap(&ctx, req, &resp), "exceeds --max_value_bytes");
    }
    {
      kvpb::CasRequest req;
      req.set_key("cas");
      req.set_new_value("v");
      kvpb::CasResponse resp;
      grpc::ClientContext ctx;
      EXPECT_INVALID(c_.kv(node)->CompareAndSwap(&ctx, req, &resp),
                     "needs expected_value or expected_version");
    }
    {
      kvpb::DeleteRequest req;
      kvpb::DeleteResponse resp;
      grpc::ClientContext ctx;
      EXPECT_INVALID(c_.kv(node)->Delete(&ctx, req, &resp), "key must not be empty");
    }
    for (bool serializable : {false, true}) {
      kvpb::GetRequest req;
      req.set_key(long_key);
      req.set_serializable(serializable);
      kvpb::GetResponse resp;
      grpc::ClientContext ctx;
      EXPECT_INVALID(c_.kv(node)->Get(&ctx, req, &resp), "exceeds the limit");
      req.set_key("");
      grpc::ClientContext ctx2;
      EXPECT_INVALID(c_.kv(node)->Get(&ctx2, req, &resp), "key must not be empty");
    }
    {
      kvpb::ScanRequest req;
      req.set_prefix(long_key);
      kvpb::ScanResponse resp;
      grpc::ClientContext ctx;
      EXPECT_INVALID(c_.kv(node)->Scan(&ctx, req, &resp), "prefix");
    }
  }

  // Nothing reached the log or the data.
  auto after = c_.WaitForConvergence();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->commit_index(), before->commit_index());
  EXPECT_EQ(after->key_count(), 0u);
  EXPECT_EQ(after->data_digest(), before->data_digest());

  // The nodes keep serving, and the limits themselves are allowed. Client
  // 42's sequence 1 was never used by the rejected attempt.
  ASSERT_TRUE(Put(leader_, std::string(kMaxKey, 'k'), "v").ok());
  grpc::Status s = Put(leader_, "big", std::string(kMaxValue, 'v'), 42, 1, 1);
  ASSERT_TRUE(s.ok()) << s.error_message();
  for (int node = 1; node <= c_.size(); ++node) {
    kvpb::GetRequest req;
    req.set_key("big");
    kvpb::GetResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(c_.kv(node)->Get(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.found());
    EXPECT_EQ(resp.kv().value().size(), static_cast<size_t>(kMaxValue));
  }
  auto last = c_.WaitForConvergence();
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->key_count(), 2u);
}

}  // namespace
}  // namespace raftkv::testing
