#include "server/etcd/password.h"

#include "gtest/gtest.h"

namespace raftkv::server::etcd {
namespace {

TEST(PasswordTest, SaltedBcryptHashes) {
  auto a = HashPassword("secret", 4);  // bcrypt's least cost: a fast test
  auto b = HashPassword("secret", 4);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->substr(0, 7), "$2b$04$");
  EXPECT_NE(*a, *b) << "a fresh salt each time";
  EXPECT_EQ(a->find("secret"), std::string::npos);
  EXPECT_TRUE(PasswordMatches("secret", *a));
  EXPECT_TRUE(PasswordMatches("secret", *b));
  EXPECT_FALSE(PasswordMatches("Secret", *a));
  EXPECT_FALSE(PasswordMatches("", *a));
  EXPECT_FALSE(PasswordMatches("secret", ""));
  EXPECT_FALSE(PasswordMatches("secret", "garbage"));
}

TEST(PasswordTest, EtcdsDefaultCostAndGoBcryptHashes) {
  auto h = HashPassword("pw");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->substr(0, 7), "$2b$10$");
  // Go's bcrypt (etcd's) writes "$2a$": the same hash for such passwords.
  const std::string go = "$2a$" + h->substr(4);
  EXPECT_TRUE(PasswordMatches("pw", go));
  EXPECT_FALSE(PasswordMatches("pX", go));
}

TEST(PasswordTest, NulBytesAreRefused) {
  EXPECT_FALSE(HashPassword(std::string("a\0b", 3), 4).ok());
  auto h = HashPassword("a", 4);
  ASSERT_TRUE(h.ok());
  EXPECT_FALSE(PasswordMatches(std::string("a\0b", 3), *h));
}

}  // namespace
}  // namespace raftkv::server::etcd
