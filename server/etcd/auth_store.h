// AuthStore: etcd's auth state (etcd's auth/store.go) as replicated state:
// users (name, password hash, roles), roles (key permissions), whether auth
// is enabled, and the auth revision, bumped by every change. Only log
// entries (kvpb::Command.auth) change it, so every member holds the same
// state at the same applied index; it lives in `data` ("A" + ...: see
// auth_store.cc), so it survives restarts and travels in snapshots and
// backups (a restore keeps it, as etcd's does).
//
// Passwords are hashed by the member that took the request before it
// proposes (server/etcd/password.h): the store only ever holds hashes.
//
// Permissions follow etcd's rules (auth/range_perm_cache.go): a permission
// covers one key (range_end empty), [key, range_end), or every key from key
// on (range_end "\0"). A single-key request is allowed when some permission
// of the right type covers the key; a range request when the union of the
// user's permissions of that type covers the whole range. READWRITE counts
// as both. A user with the role "root" may do anything.
//
// Thread safety: Load and Apply on the apply thread (one at a time); the
// other methods on any thread. The invalidation hook runs on the apply
// thread, inside Apply/Load, and must not block.
#ifndef RAFTKV_SERVER_ETCD_AUTH_STORE_H_
#define RAFTKV_SERVER_ETCD_AUTH_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "proto/etcd/auth.pb.h"
#include "proto/kv.pb.h"
#include "storage/data_batch.h"
#include "storage/log_store.h"

namespace raftkv::server::etcd {

// Who a request runs as: the user from its token or certificate, and the
// auth revision its rights were read at. An empty user: no credentials.
struct AuthInfo {
  std::string user;
  uint64_t revision = 0;
  bool invalid_token = false;  // a token was given that is not live (user empty)
};

// etcd's permission semantics on plain data (no store): whether `perms`
// allow `type` (READ or WRITE) on key `key` (range_end empty) or the range
// [key, range_end) (range_end "\0": every key from key on).
bool PermitsRange(const std::vector<authpb::Permission>& perms, authpb::Permission::Type type,
                  absl::string_view key, absl::string_view range_end);

class AuthStore {
 public:
  static constexpr char kRootUser[] = "root";
  static constexpr char kRootRole[] = "root";

  // Whether `data_key` is one of the store's records.
  static bool IsAuthKey(absl::string_view data_key);

  // Reads the state from `store`'s data: at open, and after a snapshot
  // replaced the data. DataLoss for an undecodable record.
  absl::Status Load(const storage::LogStore& store) ABSL_LOCKS_EXCLUDED(mu_);

  // Applies `cmd`, adding its records' changes to `batch`; the auth
  // revision after it. etcd's errors (the same on every member: nothing
  // changes) for a refused change, e.g. kAuthOldRevision when auth is on
  // and cmd.auth_revision() is older than the store's.
  absl::StatusOr<uint64_t> Apply(const kvpb::AuthCommand& cmd, storage::DataBatch* batch)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Called with a user whose tokens must go (deleted, password changed), or
  // "" for every token (auth disabled, state reloaded).
  void set_invalidate_hook(std::function<void(const std::string& user)> hook) {
    invalidate_ = std::move(hook);
  }
  // Called with each token an applied Authenticate issued and its user.
  void set_token_hook(std::function<void(const std::string& token, const std::string& user)> hook) {
    token_ = std::move(hook);
  }

  bool enabled() const { return enabled_.load(std::memory_order_acquire); }
  uint64_t revision() const { return revision_.load(std::memory_order_acquire); }

  std::optional<authpb::User> GetUser(const std::string& name) const ABSL_LOCKS_EXCLUDED(mu_);
  std::optional<authpb::Role> GetRole(const std::string& name) const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> UserNames() const ABSL_LOCKS_EXCLUDED(mu_);  // sorted
  std::vector<std::string> RoleNames() const ABSL_LOCKS_EXCLUDED(mu_);  // sorted
  bool HasRole(const std::string& user, const std::string& role) const ABSL_LOCKS_EXCLUDED(mu_);

  // The checks, as etcd's: OK when auth is off. With auth on: kUserEmpty
  // without a user, kAuthOldRevision if `ai` was read before the last
  // change, kPermissionDenied (an unknown user too) when not allowed.
  absl::Status CheckRange(const AuthInfo& ai, absl::string_view key,
                          absl::string_view range_end, authpb::Permission::Type type) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Root only (etcd's IsAdminPermitted): kUserEmpty, kUserNotFound,
  // kPermissionDenied.
  absl::Status CheckAdmin(const AuthInfo& ai) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Invalidate(const std::string& user) {
    if (invalidate_) invalidate_(user);
  }
  absl::Status ApplyLocked(const kvpb::AuthCommand& cmd, storage::DataBatch* batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PutUserLocked(const authpb::User& u, storage::DataBatch* batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PutRoleLocked(const authpb::Role& r, storage::DataBatch* batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, authpb::User> users_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, authpb::Role> roles_ ABSL_GUARDED_BY(mu_);
  // Mirrors of the records, written under mu_ (read lock-free).
  std::atomic<bool> enabled_{false};
  std::atomic<uint64_t> revision_{0};
  std::function<void(const std::string&)> invalidate_;
  std::function<void(const std::string&, const std::string&)> token_;
};

}  // namespace raftkv::server::etcd

#endif  // RAFTKV_SERVER_ETCD_AUTH_STORE_H_
