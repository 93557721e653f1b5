#include "server/etcd/auth_tokens.h"

#include "gtest/gtest.h"

namespace raftkv::server::etcd {
namespace {

class AuthTokensTest : public ::testing::Test {
 protected:
  // A new token added for `user`.
  static absl::StatusOr<std::string> Issue(AuthTokens* t, const std::string& user) {
    absl::StatusOr<std::string> token = AuthTokens::New();
    if (token.ok()) t->Add(*token, user);
    return token;
  }
  AuthTokenOptions Options(size_t max) {
    AuthTokenOptions o;
    o.ttl = absl::Seconds(300);
    o.max_tokens = max;
    o.now = [this] { return now_; };
    return o;
  }
  absl::Time now_ = absl::FromUnixSeconds(1000000);
};

TEST_F(AuthTokensTest, TokensLiveTtlPastTheirLastUse) {
  AuthTokens t(Options(10));
  auto a = Issue(&t, "alice");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size(), 32u);
  EXPECT_EQ(t.User(*a), "alice");
  EXPECT_EQ(t.User("nope"), std::nullopt);
  now_ += absl::Seconds(299);
  EXPECT_EQ(t.User(*a), "alice") << "a use starts the lifetime again";
  now_ += absl::Seconds(299);
  EXPECT_EQ(t.User(*a), "alice");
  now_ += absl::Seconds(300);
  EXPECT_EQ(t.User(*a), std::nullopt) << "300 s unused: expired";
  EXPECT_EQ(t.size(), 0u);
}

TEST_F(AuthTokensTest, BoundedByEvictingTheLeastRecentlyUsed) {
  AuthTokens t(Options(3));
  auto a = Issue(&t, "a");
  now_ += absl::Seconds(1);
  auto b = Issue(&t, "b");
  now_ += absl::Seconds(1);
  auto c = Issue(&t, "c");
  now_ += absl::Seconds(1);
  EXPECT_EQ(t.User(*a), "a");  // b is now the least recently used
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(Issue(&t, "flood").ok());
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.User(*b), std::nullopt);
  EXPECT_EQ(t.User(*c), std::nullopt);
}

TEST_F(AuthTokensTest, InvalidateOneUserOrAll) {
  AuthTokens t(Options(10));
  auto a1 = Issue(&t, "a");
  auto a2 = Issue(&t, "a");
  auto b = Issue(&t, "b");
  EXPECT_NE(*a1, *a2);
  t.Invalidate("a");
  EXPECT_EQ(t.User(*a1), std::nullopt);
  EXPECT_EQ(t.User(*a2), std::nullopt);
  EXPECT_EQ(t.User(*b), "b");
  t.Invalidate("");
  EXPECT_EQ(t.User(*b), std::nullopt);
}

}  // namespace
}  // namespace raftkv::server::etcd
