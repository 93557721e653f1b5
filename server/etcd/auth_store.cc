#include "server/etcd/auth_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/etcd/errors.h"

namespace raftkv::server::etcd {
namespace {

// Records in `data`:
//   "Ae"        -> "\1" while auth is enabled (absent: disabled)
//   "Ar"        -> be64(auth revision)
//   "Au" + name -> authpb::User (password: its hash)
//   "Ao" + name -> authpb::Role
constexpr char kPrefix = 'A';
constexpr char kEnabledKey[] = "Ae";
constexpr char kRevisionKey[] = "Ar";
constexpr char kUserPrefix[] = "Au";
constexpr char kRolePrefix[] = "Ao";

std::string Be64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(v >> (56 - 8 * i));
  return out;
}

// One permission as a half-open interval of keys; `end` empty with
// `to_end`: unbounded.
struct Interval {
  std::string begin;
  std::string end;
  bool unbounded = false;
};

// Whether end `a` (unbounded or not) is at or past end `b`.
bool EndAtLeast(const Interval& a, const Interval& b) {
  if (a.unbounded) return true;
  if (b.unbounded) return false;
  return a.end >= b.end;
}

Interval Of(absl::string_view key, absl::string_view range_end) {
  Interval i;
  i.begin = std::string(key);
  if (range_end.empty()) {
    // A single key: [key, key + "\0").
    i.end = i.begin;
    i.end.push_back('\0');
  } else if (range_end == absl::string_view("\0", 1)) {
    i.unbounded = true;
  } else {
    i.end = std::string(range_end);
  }
  return i;
}

bool Grants(authpb::Permission::Type have, authpb::Permission::Type want) {
  return have == authpb::Permission::READWRITE || have == want;
}

}  // namespace

bool PermitsRange(const std::vector<authpb::Permission>& perms, authpb::Permission::Type type,
                  absl::string_view key, absl::string_view range_end) {
  const Interval want = Of(key, range_end);
  std::vector<Interval> have;
  for (const authpb::Permission& p : perms) {
    if (!Grants(p.permtype(), type)) continue;
    Interval i = Of(p.key(), p.range_end());
    if (!i.unbounded && i.end <= i.begin) continue;  // empty: covers nothing
    have.push_back(std::move(i));
  }
  if (range_end.empty()) {
    // etcd's checkKeyPoint: some permission holds the key.
    for (const Interval& i : have) {
      if (i.begin <= want.begin && (i.unbounded || want.begin < i.end)) return true;
    }
    return false;
  }
  if (!want.unbounded && want.end <= want.begin) {
    // An empty range reads nothing; etcd's interval tree still needs a
    // permission that touches it, which no sane client relies on: refuse.
    return false;
  }
  // etcd's checkKeyInterval: the union of the permissions covers the range.
  std::sort(have.begin(), have.end(),
            [](const Interval& a, const Interval& b) { return a.begin < b.begin; });
  Interval covered;  // [want.begin, covered.end) covered so far
  covered.end = want.begin;
  for (const Interval& i : have) {
    if (i.begin > covered.end) break;  // a gap (covered.end is bounded here)
    if (EndAtLeast(i, covered)) {
      covered.end = i.end;
      covered.unbounded = i.unbounded;
    }
    if (EndAtLeast(covered, want)) return true;
    if (covered.unbounded) break;
  }
  return EndAtLeast(covered, want);
}

bool AuthStore::IsAuthKey(absl::string_view data_key) {
  return !data_key.empty() && data_key[0] == kPrefix;
}

absl::Status AuthStore::Load(const storage::LogStore& store) {
  std::map<std::string, authpb::User> users;
  std::map<std::string, authpb::Role> roles;
  bool enabled = false;
  uint64_t revision = 0;
  absl::Status bad;
  absl::Status s = store.ScanData(std::string(1, kPrefix), [&](absl::string_view k,
                                                              absl::string_view v) {
    if (!IsAuthKey(k)) return false;
    if (k == kEnabledKey) {
      enabled = v == "\1";
    } else if (k == kRevisionKey && v.size() == 8) {
      for (unsigned char c : v) revision = (revision << 8) | c;
    } else if (k.size() > 2 && k.substr(0, 2) == kUserPrefix) {
      authpb::User u;
      if (!u.ParseFromArray(v.data(), static_cast<int>(v.size())) || u.name() != k.substr(2)) {
        bad = absl::DataLossError(absl::StrCat("undecodable auth user record in ", store.dir()));
        return false;
      }
      users[u.name()] = std::move(u);
    } else if (k.size() > 2 && k.substr(0, 2) == kRolePrefix) {
      authpb::Role r;
      if (!r.ParseFromArray(v.data(), static_cast<int>(v.size())) || r.name() != k.substr(2)) {
        bad = absl::DataLossError(absl::StrCat("undecodable auth role record in ", store.dir()));
        return false;
      }
      roles[r.name()] = std::move(r);
    } else {
      bad = absl::DataLossError(absl::StrCat("undecodable auth record in ", store.dir()));
      return false;
    }
    return true;
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  {
    absl::MutexLock l(&mu_);
    users_ = std::move(users);
    roles_ = std::move(roles);
    enabled_.store(enabled, std::memory_order_release);
    revision_.store(revision, std::memory_order_release);
  }
  Invalidate("");  // tokens were issued against the state replaced
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> AuthStore::Apply(const kvpb::AuthCommand& cmd,
                                          storage::DataBatch* batch) {
  std::string invalidate;
  bool invalidate_any = false;
  {
    absl::MutexLock l(&mu_);
    if (enabled() && cmd.auth_revision() < revision()) return EtcdError(Error::kAuthOldRevision);
    if (cmd.request_case() == kvpb::AuthCommand::kAuthenticate) {
      // The password was checked at this revision; the user still exists.
      if (!enabled()) return EtcdError(Error::kAuthNotEnabled);
      if (users_.count(cmd.authenticate().name()) == 0 || cmd.token().empty()) {
        return EtcdError(Error::kAuthFailed);
      }
      if (token_) token_(cmd.token(), cmd.authenticate().name());
      return revision();
    }
    const uint64_t before = revision();
    if (absl::Status s = ApplyLocked(cmd, batch); !s.ok()) return s;
    if (revision() == before) return before;  // nothing changed
    batch->Put(kRevisionKey, Be64(revision()));
    switch (cmd.request_case()) {
      case kvpb::AuthCommand::kAuthDisable:
        invalidate_any = true;
        break;
      case kvpb::AuthCommand::kUserDelete:
        invalidate = cmd.user_delete().name();
        invalidate_any = true;
        break;
      case kvpb::AuthCommand::kUserChangePassword:
        invalidate = cmd.user_change_password().name();
        invalidate_any = true;
        break;
      default:
        break;
    }
  }
  if (invalidate_any) Invalidate(invalidate);
  return revision();
}

void AuthStore::PutUserLocked(const authpb::User& u, storage::DataBatch* batch) {
  batch->Put(absl::StrCat(kUserPrefix, u.name()), u.SerializeAsString());
  users_[u.name()] = u;
}

void AuthStore::PutRoleLocked(const authpb::Role& r, storage::DataBatch* batch) {
  batch->Put(absl::StrCat(kRolePrefix, r.name()), r.SerializeAsString());
  roles_[r.name()] = r;
}

absl::Status AuthStore::ApplyLocked(const kvpb::AuthCommand& cmd, storage::DataBatch* batch) {
  const uint64_t next = revision() + 1;
  auto bump = [&] { revision_.store(next, std::memory_order_release); };
  switch (cmd.request_case()) {
    case kvpb::AuthCommand::kAuthEnable: {
      if (enabled()) return absl::OkStatus();  // etcd: ignored
      auto it = users_.find(kRootUser);
      if (it == users_.end()) return EtcdError(Error::kRootUserNotExist);
      const auto& roles = it->second.roles();
      if (std::find(roles.begin(), roles.end(), kRootRole) == roles.end()) {
        return EtcdError(Error::kRootRoleNotExist);
      }
      batch->Put(kEnabledKey, "\1");
      enabled_.store(true, std::memory_order_release);
      // etcd 3.4 leaves the revision as it is here; raftkv bumps it so a
      // write checked while auth was off cannot apply once it is on.
      bump();
      return absl::OkStatus();
    }
    case kvpb::AuthCommand::kAuthDisable:
      if (!enabled()) return absl::OkStatus();
      batch->Delete(kEnabledKey);
      enabled_.store(false, std::memory_order_release);
      bump();
      return absl::OkStatus();
    case kvpb::AuthCommand::kUserAdd: {
      const auto& r = cmd.user_add();
      if (r.name().empty()) return EtcdError(Error::kUserEmpty);
      if (users_.count(r.name()) > 0) return EtcdError(Error::kUserAlreadyExist);
      authpb::User u;
      u.set_name(r.name());
      if (!r.options().no_password()) u.set_password(cmd.password_hash());
      *u.mutable_options() = r.options();
      PutUserLocked(u, batch);
      bump();
      return absl::OkStatus();
    }
    case kvpb::AuthCommand::kUserDelete: {
      const auto& r = cmd.user_delete();
      if (enabled() && r.name() == kRootUser) return EtcdError(Error::kInvalidAuthMgmt);
      if (users_.erase(r.name()) == 0) return EtcdError(Error::kUserNotFound);
      batch->Delete(absl::StrCat(kUserPrefix, r.name()));
      bump();
      return absl::OkStatus();
    }
    case kvpb::AuthCommand::kUserChangePassword: {
      const auto& r = cmd.user_change_password();
      auto it = users_.find(r.name());
      if (it == users_.end()) return EtcdError(Error::kUserNotFound);
      authpb::User u = it->second;
      u.set_password(cmd.password_hash());
      PutUserLocked(u, batch);
      bump();
      return absl::OkStatus();
    }
    case kvpb::AuthCommand::kUserGrantRole: {
      const auto& r = cmd.user_grant_role();
      auto it = users_.find(r.user());
      if (it == users_.end()) return EtcdError(Error::kUserNotFound);
      // etcd grants the role "root" whether or not such a role was added.
      if (r.role() != kRootRole && roles_.count(r.role()) == 0) {
        return EtcdError(Error::kRoleNotFound);
      }
      authpb::User u = it->second;
      std::vector<std::string> roles(u.roles().begin(), u.roles().end());
      auto pos = std::lower_bound(roles.begin(), roles.end(), r.role());
      if (pos != roles.end() && *pos == r.role()) return absl::OkStatus();  // etcd: ignored
      roles.insert(pos, r.role());
      u.mutable_roles()->Assign(roles.begin(), roles.end());
      PutUserLocked(u, batch);
      bump();
      return absl::OkStatus();
    }
    case kvpb::AuthCommand::kUserRevokeRole: {
      const auto& r = cmd.user_revoke_role();
      if (enabled() && r.name() == kRootUser && r.role() == kRootRole) {
        return EtcdError(Error::kInvalidAuthMgmt);
      }
      auto it = users_.find(r.name());
      if (it == users_.end()) return EtcdError(Error::kUserNotFound);
      authpb::User u = it->second;
      u.clear_roles();
      for (const std::string& role : it->second.roles()) {
        if (role != r.role()) u.add_roles(role);
      }
      if (u.roles_size() == it->second.roles_size()) return EtcdError(Error::kRoleNotGranted);
      PutUserLocked(u, batch);
      bump();
      return absl::OkStatus();
    }
    case kvpb::AuthCommand::kRoleAdd: {
      const auto& r = cmd.role_add();
      if (r.name().empty()) return EtcdError(Error::kRoleEmpty);
      if (roles_.count(r.name()) > 0) return EtcdError(Error::kRoleAlreadyExist);
      authpb::Role role;
      role.set_name(r.name());
      PutRoleLocked(role, batch);
      bump();
      return absl::OkStatus();
    }
    case kvpb::AuthCommand::kRoleDelete: {
      const auto& r = cmd.role_delete();
      if (enabled() && r.role() == kRootRole) return EtcdError(Error::kInvalidAuthMgmt);
      if (roles_.erase(r.role()) == 0) return EtcdError(Error::kRoleNotFound);
      batch->Delete(absl::StrCat(kRolePrefix, r.role()));
      // Users lose the role too.
      std::vector<authpb::User> changed;
      for (const auto& [name, u] : users_) {
        if (std::find(u.roles().begin(), u.roles().end(), r.role()) == u.roles().end()) continue;
        authpb::User v = u;
        v.clear_roles();
        for (const std::string& role : u.roles()) {
          if (role != r.role()) v.add_roles(role);
        }
        changed.push_back(std::move(v));
      }
      for (const authpb::User& u : changed) PutUserLocked(u, batch);
      bump();
      return absl::OkStatus();
    }
    case kvpb::AuthCommand::kRoleGrantPermission: {
      const auto& r = cmd.role_grant_permission();
      if (!r.has_perm()) return EtcdError(Error::kPermissionNotGiven);
      auto it = roles_.find(r.name());
      if (it == roles_.end()) return EtcdError(Error::kRoleNotFound);
      authpb::Role role = it->second;
      bool updated = false;
      for (authpb::Permission& p : *role.mutable_keypermission()) {
        if (p.key() == r.perm().key() && p.range_end() == r.perm().range_end()) {
          p.set_permtype(r.perm().permtype());  // etcd: the type is replaced
          updated = true;
        }
      }
      if (!updated) {
        *role.add_keypermission() = r.perm();
        std::stable_sort(role.mutable_keypermission()->begin(),
                         role.mutable_keypermission()->end(),
                         [](const authpb::Permission& a, const authpb::Permission& b) {
                           return a.key() < b.key();
                         });
      }
      PutRoleLocked(role, batch);
      bump();
      return absl::OkStatus();
    }
    case kvpb::AuthCommand::kRoleRevokePermission: {
      const auto& r = cmd.role_revoke_permission();
      auto it = roles_.find(r.role());
      if (it == roles_.end()) return EtcdError(Error::kRoleNotFound);
      authpb::Role role;
      role.set_name(it->second.name());
      for (const authpb::Permission& p : it->second.keypermission()) {
        if (p.key() != r.key() || p.range_end() != r.range_end()) *role.add_keypermission() = p;
      }
      if (role.keypermission_size() == it->second.keypermission_size()) {
        return EtcdError(Error::kPermissionNotGranted);
      }
      PutRoleLocked(role, batch);
      bump();
      return absl::OkStatus();
    }
    case kvpb::AuthCommand::kAuthenticate:  // handled by Apply
    case kvpb::AuthCommand::REQUEST_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("auth command without a request");
}

std::optional<authpb::User> AuthStore::GetUser(const std::string& name) const {
  absl::MutexLock l(&mu_);
  auto it = users_.find(name);
  if (it == users_.end()) return std::nullopt;
  return it->second;
}

std::optional<authpb::Role> AuthStore::GetRole(const std::string& name) const {
  absl::MutexLock l(&mu_);
  auto it = roles_.find(name);
  if (it == roles_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> AuthStore::UserNames() const {
  absl::MutexLock l(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, u] : users_) out.push_back(name);
  return out;
}

std::vector<std::string> AuthStore::RoleNames() const {
  absl::MutexLock l(&mu_);
  std::vector<std::string> out;
  for (const auto& [name, r] : roles_) out.push_back(name);
  return out;
}

bool AuthStore::HasRole(const std::string& user, const std::string& role) const {
  absl::MutexLock l(&mu_);
  auto it = users_.find(user);
  if (it == users_.end()) return false;
  const auto& roles = it->second.roles();
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

absl::Status AuthStore::CheckRange(const AuthInfo& ai, absl::string_view key,
                                   absl::string_view range_end,
                                   authpb::Permission::Type type) const {
  if (!enabled()) return absl::OkStatus();
  if (ai.user.empty()) return EtcdError(Error::kUserEmpty);
  absl::MutexLock l(&mu_);
  if (ai.revision < revision()) return EtcdError(Error::kAuthOldRevision);
  auto it = users_.find(ai.user);
  if (it == users_.end()) return EtcdError(Error::kPermissionDenied);
  std::vector<authpb::Permission> perms;
  for (const std::string& role : it->second.roles()) {
    if (role == kRootRole) return absl::OkStatus();
    auto r = roles_.find(role);
    if (r == roles_.end()) continue;
    perms.insert(perms.end(), r->second.keypermission().begin(), r->second.keypermission().end());
  }
  if (PermitsRange(perms, type, key, range_end)) return absl::OkStatus();
  return EtcdError(Error::kPermissionDenied);
}

absl::Status AuthStore::CheckAdmin(const AuthInfo& ai) const {
  if (!enabled()) return absl::OkStatus();
  if (ai.user.empty()) return EtcdError(Error::kUserEmpty);
  if (!GetUser(ai.user).has_value()) return EtcdError(Error::kUserNotFound);
  if (!HasRole(ai.user, kRootRole)) return EtcdError(Error::kPermissionDenied);
  return absl::OkStatus();
}

}  // namespace raftkv::server::etcd
