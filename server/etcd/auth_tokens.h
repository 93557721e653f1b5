// AuthTokens: etcd's "simple" tokens, as one member keeps them: a random
// opaque string per Authenticate, mapped in memory to the user it was issued
// to. Each Authenticate goes through the log (server/etcd/auth_store.h), and
// every member adds its token, so any member accepts it, as with etcd 3.4. A
// token lives `ttl` (etcd's --auth-token-ttl, 300 s) past its last use on a
// member; a restart forgets them (clientv3 authenticates again on "invalid
// auth token"). At most `max_tokens` are kept: adding one more evicts the
// one unused the longest, so no client can grow the table without bound. Tokens of a deleted user or a changed password, and all of
// them when auth is disabled, go at once (AuthStore's invalidation hook).
//
// Thread safety: thread-safe.
#ifndef RAFTKV_SERVER_ETCD_AUTH_TOKENS_H_
#define RAFTKV_SERVER_ETCD_AUTH_TOKENS_H_

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace raftkv::server::etcd {

struct AuthTokenOptions {
  absl::Duration ttl = absl::Seconds(300);  // --auth_token_ttl
  size_t max_tokens = 100000;               // about 100 bytes each
  std::function<absl::Time()> now = [] { return absl::Now(); };

  absl::Status Validate() const;
};

class AuthTokens {
 public:
  // REQUIRES: options.Validate().ok().
  explicit AuthTokens(AuthTokenOptions options);

  // A new random token (32 letters and digits), not yet added.
  static absl::StatusOr<std::string> New();
  // Takes `token` for `user`.
  void Add(const std::string& token, const std::string& user) ABSL_LOCKS_EXCLUDED(mu_);
  // The user of a live `token` (its lifetime starts again), or none.
  std::optional<std::string> User(const std::string& token) ABSL_LOCKS_EXCLUDED(mu_);
  // Drops `user`'s tokens; "" drops every token.
  void Invalidate(const std::string& user) ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    std::string user;
    absl::Time expires;
  };
  void EraseLocked(std::map<std::string, Entry>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AuthTokenOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> tokens_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<absl::Time, std::string>> by_expiry_ ABSL_GUARDED_BY(mu_);
};

}  // namespace raftkv::server::etcd

#endif  // RAFTKV_SERVER_ETCD_AUTH_TOKENS_H_
