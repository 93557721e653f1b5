#include "server/etcd/auth_store.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/etcd/errors.h"

namespace raftkv::server::etcd {
namespace {

using authpb::Permission;

Permission Perm(Permission::Type t, const std::string& key, const std::string& end) {
  Permission p;
  p.set_permtype(t);
  p.set_key(key);
  p.set_range_end(end);
  return p;
}

const std::string kFromKey("\0", 1);

TEST(PermitsRangeTest, EtcdsRules) {
  const std::vector<Permission> perms = {
      Perm(Permission::READ, "a", ""),          // one key
      Perm(Permission::READWRITE, "b", "d"),    // [b, d)
      Perm(Permission::WRITE, "d", "f"),        // [d, f)
      Perm(Permission::READ, "x", kFromKey),    // from x on
  };
  struct Case {
    Permission::Type type;
    std::string key, end;
    bool want;
  } cases[] = {
      {Permission::READ, "a", "", true},
      {Permission::WRITE, "a", "", false},
      {Permission::READ, "a\x01", "", false},
      {Permission::READ, "a", "a\x01", false},   // a range beyond the one key
      {Permission::READ, "a", std::string("a\0", 2), true},  // exactly the one key
      {Permission::READ, "b", "", true},
      {Permission::READ, "c\xff", "", true},
      {Permission::READ, "d", "", false},
      {Permission::WRITE, "b", "f", true},        // [b,d) + [d,f) contiguous
      {Permission::WRITE, "b", "f\x01", false},
      {Permission::WRITE, "a", "c", false},       // a itself is READ only
      {Permission::READ, "b", "e", false},        // [d,e) is WRITE only
      {Permission::READ, "x", kFromKey, true},
      {Permission::READ, "y", kFromKey, true},
      {Permission::READ, "w", kFromKey, false},
      {Permission::READ, "x", "z", true},
      {Permission::READ, "zzz", "", true},
      {Permission::WRITE, "zzz", "", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(PermitsRange(perms, c.type, c.key, c.end), c.want)
        << Permission::Type_Name(c.type) << " [" << c.key << ", " << c.end << ")";
  }
  EXPECT_FALSE(PermitsRange({}, Permission::READ, "a", ""));
  EXPECT_TRUE(PermitsRange({Perm(Permission::READ, "", kFromKey)}, Permission::READ, "",
                           kFromKey))
      << "every key";
}

// The model: a union of half-open intervals covers [k, e) iff each point
// where a gap could begin -- k, and every interval end inside (k, e) -- lies
// in some interval. A point request: some interval holds it.
struct ModelInterval {
  std::string b, e;
  bool inf;
};
bool In(const ModelInterval& i, const std::string& p) { return i.b <= p && (i.inf || p < i.e); }

bool Model(const std::vector<Permission>& perms, Permission::Type type, const std::string& key,
           const std::string& end) {
  std::vector<ModelInterval> iv;
  for (const Permission& p : perms) {
    if (p.permtype() != Permission::READWRITE && p.permtype() != type) continue;
    if (p.range_end().empty()) {
      iv.push_back({p.key(), p.key() + std::string(1, '\0'), false});
    } else if (p.range_end() == kFromKey) {
      iv.push_back({p.key(), "", true});
    } else if (p.key() < p.range_end()) {
      iv.push_back({p.key(), p.range_end(), false});
    }
  }
  auto covered = [&](const std::string& p) {
    for (const auto& i : iv) {
      if (In(i, p)) return true;
    }
    return false;
  };
  if (end.empty()) return covered(key);
  const bool inf = end == kFromKey;
  if (!inf && end <= key) return false;
  if (!covered(key)) return false;
  for (const auto& i : iv) {
    if (!i.inf && i.e > key && (inf || i.e < end) && !covered(i.e)) return false;
  }
  return true;
}

TEST(PermitsRangeTest, AgreesWithAModelOnRandomPermissions) {
  std::mt19937 rng(20261207);
  const std::string alphabet = std::string("ab\0c", 4);
  auto key = [&](int max_len) {
    std::string k;
    const int n = static_cast<int>(rng() % (max_len + 1));
    for (int i = 0; i < n; ++i) k.push_back(alphabet[rng() % alphabet.size()]);
    return k;
  };
  auto end = [&]() -> std::string {
    switch (rng() % 4) {
      case 0:
        return "";
      case 1:
        return kFromKey;
      default: {
        std::string e = key(3);
        return e.empty() ? "c" : e;
      }
    }
  };
  int allowed = 0;
  for (int round = 0; round < 20000; ++round) {
    std::vector<Permission> perms;
    const int n = static_cast<int>(rng() % 5);
    for (int i = 0; i < n; ++i) {
      perms.push_back(Perm(static_cast<Permission::Type>(rng() % 3), key(3), end()));
    }
    const auto type = rng() % 2 == 0 ? Permission::READ : Permission::WRITE;
    const std::string k = key(3), e = end();
    const bool want = Model(perms, type, k, e);
    allowed += want;
    ASSERT_EQ(PermitsRange(perms, type, k, e), want) << "round " << round;
  }
  EXPECT_GT(allowed, 1000) << "the random cases should allow some requests";
}

class AuthStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::Options o;
    o.dir = std::string(getenv("TEST_TMPDIR")) + "/auth_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    auto s = storage::LogStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    ASSERT_TRUE(a_.Load(*store_).ok());
    a_.set_invalidate_hook([this](const std::string& user) { invalidated_.push_back(user); });
  }
  // Applies `cmd` at the store's revision and writes its batch as entry ++index_.
  absl::Status Apply(kvpb::AuthCommand cmd, AuthStore* a = nullptr) {
    if (a == nullptr) a = &a_;
    if (cmd.auth_revision() == 0) cmd.set_auth_revision(a->revision());
    storage::DataBatch batch;
    auto r = a->Apply(cmd, &batch);
    EXPECT_TRUE(store_->ApplyBatch(batch, ++index_).ok());
    return r.status();
  }
  absl::Status AddUser(const std::string& name, const std::string& hash = "$2b$hash") {
    kvpb::AuthCommand c;
    c.mutable_user_add()->set_name(name);
    c.set_password_hash(hash);
    return Apply(c);
  }
  absl::Status AddRole(const std::string& name) {
    kvpb::AuthCommand c;
    c.mutable_role_add()->set_name(name);
    return Apply(c);
  }
  absl::Status Grant(const std::string& user, const std::string& role) {
    kvpb::AuthCommand c;
    c.mutable_user_grant_role()->set_user(user);
    c.mutable_user_grant_role()->set_role(role);
    return Apply(c);
  }
  absl::Status GrantPerm(const std::string& role, const Permission& p) {
    kvpb::AuthCommand c;
    c.mutable_role_grant_permission()->set_name(role);
    *c.mutable_role_grant_permission()->mutable_perm() = p;
    return Apply(c);
  }
  absl::Status Enable() {
    kvpb::AuthCommand c;
    c.mutable_auth_enable();
    return Apply(c);
  }
  AuthInfo As(const std::string& user) { return AuthInfo{user, a_.revision()}; }

  std::unique_ptr<storage::LogStore> store_;
  uint64_t index_ = 0;
  AuthStore a_;
  std::vector<std::string> invalidated_;
};

TEST_F(AuthStoreTest, EnableNeedsRootWithTheRootRole) {
  EXPECT_TRUE(IsEtcdError(Enable(), Error::kRootUserNotExist));
  ASSERT_TRUE(AddUser("root").ok());
  EXPECT_TRUE(IsEtcdError(Enable(), Error::kRootRoleNotExist));
  ASSERT_TRUE(Grant("root", "root").ok()) << "the root role need not exist";
  const uint64_t before = a_.revision();
  ASSERT_TRUE(Enable().ok());
  EXPECT_TRUE(a_.enabled());
  EXPECT_GT(a_.revision(), before);
  EXPECT_TRUE(Enable().ok()) << "again: ignored";

  kvpb::AuthCommand del;
  del.mutable_user_delete()->set_name("root");
  EXPECT_TRUE(IsEtcdError(Apply(del), Error::kInvalidAuthMgmt));
  kvpb::AuthCommand revoke;
  revoke.mutable_user_revoke_role()->set_name("root");
  revoke.mutable_user_revoke_role()->set_role("root");
  EXPECT_TRUE(IsEtcdError(Apply(revoke), Error::kInvalidAuthMgmt));

  kvpb::AuthCommand disable;
  disable.mutable_auth_disable();
  ASSERT_TRUE(Apply(disable).ok());
  EXPECT_FALSE(a_.enabled());
  EXPECT_EQ(invalidated_.back(), "") << "disable drops every token";
  EXPECT_TRUE(Apply(del).ok()) << "root may go once auth is off";
}

TEST_F(AuthStoreTest, UsersAndRolesFollowEtcdsRules) {
  EXPECT_TRUE(IsEtcdError(AddUser(""), Error::kUserEmpty));
  ASSERT_TRUE(AddUser("alice").ok());
  EXPECT_TRUE(IsEtcdError(AddUser("alice"), Error::kUserAlreadyExist));
  EXPECT_EQ(a_.GetUser("alice")->password(), "$2b$hash");
  EXPECT_TRUE(IsEtcdError(AddRole(""), Error::kRoleEmpty));
  ASSERT_TRUE(AddRole("r1").ok());
  EXPECT_TRUE(IsEtcdError(AddRole("r1"), Error::kRoleAlreadyExist));
  EXPECT_TRUE(IsEtcdError(Grant("bob", "r1"), Error::kUserNotFound));
  EXPECT_TRUE(IsEtcdError(Grant("alice", "r2"), Error::kRoleNotFound));
  ASSERT_TRUE(AddRole("r0").ok());
  ASSERT_TRUE(Grant("alice", "r1").ok());
  ASSERT_TRUE(Grant("alice", "r0").ok());
  const uint64_t rev = a_.revision();
  ASSERT_TRUE(Grant("alice", "r1").ok()) << "granted again: ignored";
  EXPECT_EQ(a_.revision(), rev);
  EXPECT_EQ(a_.GetUser("alice")->roles_size(), 2);
  EXPECT_EQ(a_.GetUser("alice")->roles(0), "r0") << "roles kept sorted";

  kvpb::AuthCommand revoke;
  revoke.mutable_user_revoke_role()->set_name("alice");
  revoke.mutable_user_revoke_role()->set_role("r9");
  EXPECT_TRUE(IsEtcdError(Apply(revoke), Error::kRoleNotGranted));

  EXPECT_TRUE(GrantPerm("r1", Perm(Permission::READ, "k", "")).ok());
  EXPECT_TRUE(GrantPerm("r1", Perm(Permission::WRITE, "k", "")).ok()) << "replaces the type";
  EXPECT_TRUE(GrantPerm("r1", Perm(Permission::READ, "a", "b")).ok());
  ASSERT_EQ(a_.GetRole("r1")->keypermission_size(), 2);
  EXPECT_EQ(a_.GetRole("r1")->keypermission(0).key(), "a") << "sorted by key";
  EXPECT_EQ(a_.GetRole("r1")->keypermission(1).permtype(), Permission::WRITE);
  EXPECT_TRUE(IsEtcdError(GrantPerm("nope", Perm(Permission::READ, "k", "")),
                          Error::kRoleNotFound));
  kvpb::AuthCommand no_perm;
  no_perm.mutable_role_grant_permission()->set_name("r1");
  EXPECT_TRUE(IsEtcdError(Apply(no_perm), Error::kPermissionNotGiven));

  kvpb::AuthCommand rp;
  rp.mutable_role_revoke_permission()->set_role("r1");
  rp.mutable_role_revoke_permission()->set_key("a");
  EXPECT_TRUE(IsEtcdError(Apply(rp), Error::kPermissionNotGranted)) << "range_end must match";
  rp.mutable_role_revoke_permission()->set_range_end("b");
  EXPECT_TRUE(Apply(rp).ok());
  EXPECT_EQ(a_.GetRole("r1")->keypermission_size(), 1);

  kvpb::AuthCommand rd;
  rd.mutable_role_delete()->set_role("r1");
  ASSERT_TRUE(Apply(rd).ok());
  EXPECT_FALSE(a_.HasRole("alice", "r1")) << "deleting a role takes it from its users";
  EXPECT_TRUE(a_.HasRole("alice", "r0"));
  EXPECT_TRUE(IsEtcdError(Apply(rd), Error::kRoleNotFound));

  kvpb::AuthCommand pw;
  pw.mutable_user_change_password()->set_name("alice");
  pw.set_password_hash("$2b$other");
  ASSERT_TRUE(Apply(pw).ok());
  EXPECT_EQ(a_.GetUser("alice")->password(), "$2b$other");
  EXPECT_EQ(invalidated_.back(), "alice");
  kvpb::AuthCommand del;
  del.mutable_user_delete()->set_name("alice");
  ASSERT_TRUE(Apply(del).ok());
  EXPECT_TRUE(IsEtcdError(Apply(del), Error::kUserNotFound));
  EXPECT_EQ(a_.UserNames(), std::vector<std::string>{});
  EXPECT_EQ(a_.RoleNames(), std::vector<std::string>{"r0"});
}

TEST_F(AuthStoreTest, ChecksAndOldRevisions) {
  ASSERT_TRUE(AddUser("root").ok());
  ASSERT_TRUE(Grant("root", "root").ok());
  ASSERT_TRUE(AddUser("u").ok());
  ASSERT_TRUE(AddRole("r").ok());
  ASSERT_TRUE(Grant("u", "r").ok());
  ASSERT_TRUE(GrantPerm("r", Perm(Permission::READWRITE, "p/", "p0")).ok());
  // Off: everything passes, even without a user.
  EXPECT_TRUE(a_.CheckRange(AuthInfo(), "x", "", Permission::WRITE).ok());
  EXPECT_TRUE(a_.CheckAdmin(AuthInfo()).ok());

  ASSERT_TRUE(Enable().ok());
  EXPECT_TRUE(IsEtcdError(a_.CheckRange(AuthInfo(), "p/1", "", Permission::READ),
                          Error::kUserEmpty));
  EXPECT_TRUE(a_.CheckRange(As("u"), "p/1", "", Permission::WRITE).ok());
  EXPECT_TRUE(a_.CheckRange(As("u"), "p/", "p0", Permission::READ).ok());
  EXPECT_TRUE(IsEtcdError(a_.CheckRange(As("u"), "q", "", Permission::READ),
                          Error::kPermissionDenied));
  EXPECT_TRUE(IsEtcdError(a_.CheckRange(As("nobody"), "p/1", "", Permission::READ),
                          Error::kPermissionDenied));
  EXPECT_TRUE(a_.CheckRange(As("root"), "anything", kFromKey, Permission::WRITE).ok());
  EXPECT_TRUE(a_.CheckAdmin(As("root")).ok());
  EXPECT_TRUE(IsEtcdError(a_.CheckAdmin(As("u")), Error::kPermissionDenied));
  EXPECT_TRUE(IsEtcdError(a_.CheckAdmin(As("nobody")), Error::kUserNotFound));

  // Rights read before a change are stale, in checks and at apply.
  const AuthInfo old = As("u");
  ASSERT_TRUE(AddRole("later").ok());
  EXPECT_TRUE(IsEtcdError(a_.CheckRange(old, "p/1", "", Permission::READ),
                          Error::kAuthOldRevision));
  kvpb::AuthCommand stale;
  stale.mutable_role_add()->set_name("stale");
  stale.set_auth_revision(old.revision);
  EXPECT_TRUE(IsEtcdError(Apply(stale), Error::kAuthOldRevision));
  EXPECT_FALSE(a_.GetRole("stale").has_value());
}

TEST_F(AuthStoreTest, AuthenticateHandsEveryMemberTheToken) {
  std::vector<std::pair<std::string, std::string>> tokens;
  a_.set_token_hook([&](const std::string& token, const std::string& user) {
    tokens.emplace_back(token, user);
  });
  kvpb::AuthCommand auth;
  auth.mutable_authenticate()->set_name("root");
  auth.set_token("tok");
  EXPECT_TRUE(IsEtcdError(Apply(auth), Error::kAuthNotEnabled));
  ASSERT_TRUE(AddUser("root").ok());
  ASSERT_TRUE(Grant("root", "root").ok());
  ASSERT_TRUE(Enable().ok());
  const uint64_t rev = a_.revision();
  ASSERT_TRUE(Apply(auth).ok());
  EXPECT_EQ(a_.revision(), rev) << "a token is no change of the auth state";
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0], std::make_pair(std::string("tok"), std::string("root")));
  kvpb::AuthCommand nobody = auth;
  nobody.mutable_authenticate()->set_name("nobody");
  EXPECT_TRUE(IsEtcdError(Apply(nobody), Error::kAuthFailed));
  // The password was checked before a change: checked again.
  auth.set_auth_revision(rev);
  ASSERT_TRUE(AddRole("r").ok());
  EXPECT_TRUE(IsEtcdError(Apply(auth), Error::kAuthOldRevision));
  EXPECT_EQ(tokens.size(), 1u);
}

TEST_F(AuthStoreTest, StateSurvivesReload) {
  ASSERT_TRUE(AddUser("root").ok());
  ASSERT_TRUE(Grant("root", "root").ok());
  ASSERT_TRUE(AddRole("r").ok());
  ASSERT_TRUE(GrantPerm("r", Perm(Permission::READ, "k", kFromKey)).ok());
  ASSERT_TRUE(Enable().ok());
  AuthStore b;
  ASSERT_TRUE(b.Load(*store_).ok());
  EXPECT_TRUE(b.enabled());
  EXPECT_EQ(b.revision(), a_.revision());
  EXPECT_EQ(b.UserNames(), a_.UserNames());
  EXPECT_EQ(b.GetRole("r")->SerializeAsString(), a_.GetRole("r")->SerializeAsString());
  EXPECT_EQ(b.GetUser("root")->SerializeAsString(), a_.GetUser("root")->SerializeAsString());
  EXPECT_TRUE(AuthStore::IsAuthKey("Au" "root"));
  EXPECT_FALSE(AuthStore::IsAuthKey("a1234567890"));
}

}  // namespace
}  // namespace raftkv::server::etcd
